// Promise mistakes the compiler lets through, checked with type information (typescript-eslint's
// project service: each file is linted with the tsconfig that builds it). Run by scripts/lint.sh.
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", ".work/**", "workload/**/*.js", "**/*.d.ts", "bench/results/**"] },
  {
    files: ["src/**/*.ts", "components/**/*.ts", "stacks/**/*.ts", "bench/**/*.ts", "packages/*/src/**/*.ts", "test/**/*.ts", "workload/*.ts"],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "@typescript-eslint": tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      // A promise nobody awaits or catches: its rejection ends the process (or vanishes), its work races the caller.
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          // pulumi.log.* never rejects (an undeliverable message goes to stderr inside @pulumi/pulumi), and
          // Pulumi waits for outstanding log calls itself: fire-and-forget is how it is meant to be used.
          allowForKnownSafeCalls: [{ from: "file", path: "node_modules/@pulumi/pulumi/log/index.d.ts", name: ["debug", "info", "warn", "error"] }],
        },
      ],
      // A promise where a plain value is expected: an async callback to an API that ignores its result, `if (promise)`.
      "@typescript-eslint/no-misused-promises": "error",
    },
  },
);
