// The layer rules of docs/design.md bite: dependency-cruiser with the repository's own configuration
// (.dependency-cruiser.cjs, as scripts/lint.sh runs it) passes on the tree as it is, and on a copy of the
// checked folders with deliberate violations added it fails, naming the rule each one breaks. The
// violations are only ever written into the copy, never into the working tree. The promise rules
// (eslint.config.mjs) are shown the same way, on a file in a folder of its own.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { ESLint } from "eslint";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "../..");
const CHECKED = ["src", "components", "stacks", "bench", "packages/state/src"];
const KNOWN = ".dependency-cruiser-known-violations.json";
const run = promisify(execFile);

interface Violation {
  rule: string;
  from: string;
}

/** dependency-cruiser over the checked folders of `dir`, exactly as scripts/lint.sh runs it: whether it
 *  failed, and the violations it printed ("error <rule>: <from> → <to>"). */
async function cruise(dir: string): Promise<{ failed: boolean; violations: Violation[] }> {
  const known = fs.existsSync(path.join(dir, KNOWN)) ? ["--ignore-known", KNOWN] : [];
  const bin = path.join(ROOT, "node_modules/dependency-cruiser/bin/dependency-cruiser.mjs");
  const args = [bin, ...CHECKED, "--config", ".dependency-cruiser.cjs", "--output-type", "err", ...known];
  const result = await run(process.execPath, args, { cwd: dir, maxBuffer: 64 * 1024 * 1024 }).then(
    (done) => ({ failed: false, output: done.stdout }),
    (error: { stdout?: string; stderr?: string; code?: number }) => {
      // It exits with the number of errors it found; anything else (no output, a crash) is not a verdict.
      if (typeof error.code !== "number" || !/dependency violations/.test(error.stdout ?? "")) throw error;
      return { failed: true, output: error.stdout ?? "" };
    },
  );
  const violations = [...result.output.matchAll(/^\s*error ([\w-]+): (\S+)/gm)].map(([, rule, from]) => ({ rule: rule!, from: from! }));
  return { failed: result.failed, violations };
}

/** Each deliberate violation: a file added to the copy, and the rules it must be caught by. */
const PROBES: { file: string; text: string; rules: string[] }[] = [
  {
    file: "src/plan/zzProbeEngine.ts",
    text: 'import { DockerBackend } from "../backend/docker/dockerBackend";\nexport const probe = DockerBackend;\n',
    rules: ["plan-imports-only-schema-and-contract", "engine-chosen-only-in-open-ts"],
  },
  {
    file: "src/plan/zzProbeRoutine.ts",
    text: 'import { reseat } from "../replacement/reseat";\nexport const probe = reseat;\n',
    rules: ["plan-imports-only-schema-and-contract"],
  },
  {
    file: "src/schema/zzProbe.ts",
    text: 'import { planExecutable } from "../plan/executablePlan";\nexport const probe = planExecutable;\n',
    rules: ["schema-imports-only-the-contract"],
  },
  {
    file: "src/replacement/zzProbe.ts",
    text: 'import { openState } from "@reseat/state";\nexport const probe = openState;\n',
    rules: ["routine-imports-no-workload-code"],
  },
  {
    file: "src/provider/zzProbe.ts",
    text: 'import { KubernetesBackend } from "../backend/kubernetes/kubernetesBackend";\nexport const probe = KubernetesBackend;\n',
    rules: ["engine-chosen-only-in-open-ts", "kubernetes-client-loads-on-demand"],
  },
  {
    file: "src/controller/zzProbe.ts",
    text: 'import Docker from "dockerode";\nexport const probe = Docker;\n',
    rules: ["engine-chosen-only-in-open-ts"],
  },
  {
    file: "src/backend/zzProbe.ts",
    text: 'import { DockerBackend } from "./docker/dockerBackend";\nexport const probe = DockerBackend;\n',
    rules: ["seam-is-engine-neutral"],
  },
  {
    file: "src/backend/kubernetes/zzProbe.ts",
    text: 'import { resolveConnection } from "../docker/connection";\nexport const probe = resolveConnection;\n',
    rules: ["engines-are-independent"],
  },
  {
    file: "src/backend/fake/zzProbe.ts",
    text: 'import { reseat } from "../../replacement/reseat";\nexport const probe = reseat;\n',
    rules: ["backend-imports-nothing-above"],
  },
  {
    file: "src/lease/zzProbeUp.ts",
    text: 'import { openBackend } from "../backend/open";\nimport { watch } from "../controller/watch";\nexport const probe = [openBackend, watch];\n',
    rules: ["lease-imports-nothing-above"],
  },
  {
    file: "src/replacement/zzProbeUp.ts",
    text: 'import * as runtime from "../provider/runtime";\nexport const probe = runtime;\n',
    rules: ["routine-imports-nothing-above"],
  },
  {
    file: "src/provider/zzProbeUp.ts",
    text: 'import * as components from "../../components";\nexport const probe = components;\n',
    rules: ["provider-and-controller-imports-nothing-above"],
  },
  {
    file: "components/zzProbe.ts",
    text: 'import { resolveConnection } from "../src/backend/docker/connection";\nexport const probe = resolveConnection;\n',
    rules: ["components-import-no-engine"],
  },
  {
    file: "packages/state/src/zzProbe.ts",
    text: 'import * as pulumi from "@pulumi/pulumi";\nexport const probe = pulumi;\n',
    rules: ["state-library-stands-alone"],
  },
  {
    file: "packages/state/src/contract/zzProbe.ts",
    text: 'import * as fs from "node:fs";\nexport const probe = fs;\n',
    rules: ["contract-is-a-leaf"],
  },
  {
    file: "src/lease/zzCycleA.ts",
    text: 'import { b } from "./zzCycleB";\nexport const a = () => b;\n',
    rules: ["no-circular"],
  },
  // A cycle is reported once, from the first of its files the cruise meets.
  { file: "src/lease/zzCycleB.ts", text: 'import { a } from "./zzCycleA";\nexport const b = () => a;\n', rules: [] },
  {
    file: "src/cli/zzProbe.ts",
    text: 'import { probe as helper } from "../../test/zzHelper";\nexport const probe = helper;\n',
    rules: ["not-to-tests"],
  },
  { file: "src/lease/zzProbeTypo.ts", text: 'import { x } from "./noSuchModule";\nexport const probe = x;\n', rules: ["not-to-unresolvable"] },
];

/** A copy of what dependency-cruiser reads: the checked folders, the configuration, and a node_modules
 *  whose @reseat/state link points at the copy's own packages/state (as npm's workspace link does). */
function copyTree(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-layers-"));
  for (const item of [
    ...CHECKED,
    "packages/state/dist",
    "packages/state/package.json",
    "tsconfig.json",
    "packages/state/tsconfig.json",
    "package.json",
    ".dependency-cruiser.cjs",
    KNOWN,
  ]) {
    if (fs.existsSync(path.join(ROOT, item))) fs.cpSync(path.join(ROOT, item), path.join(dir, item), { recursive: true });
  }
  fs.mkdirSync(path.join(dir, "node_modules/@reseat"), { recursive: true });
  for (const entry of fs.readdirSync(path.join(ROOT, "node_modules"))) {
    if (entry !== "@reseat") fs.symlinkSync(path.join(ROOT, "node_modules", entry), path.join(dir, "node_modules", entry));
  }
  fs.symlinkSync(path.join(dir, "packages/state"), path.join(dir, "node_modules/@reseat/state"));
  return dir;
}

describe("layer rules (.dependency-cruiser.cjs)", () => {
  let copy = "";

  beforeAll(async () => {
    // @reseat/state resolves through its exports to its build, as scripts/lint.sh expects.
    if (!fs.existsSync(path.join(ROOT, "packages/state/dist")))
      await run(process.execPath, [path.join(ROOT, "node_modules/typescript/bin/tsc"), "-b", "packages/state"], { cwd: ROOT });
    copy = copyTree();
  });
  afterAll(() => {
    if (copy) fs.rmSync(copy, { recursive: true, force: true });
  });

  it("the tree as it is passes", async () => {
    const result = await cruise(ROOT);
    expect(result.violations).toEqual([]);
    expect(result.failed).toBe(false);
  });

  it("a copy with deliberate violations fails, each named by the rule it breaks", async () => {
    const clean = await cruise(copy);
    expect(clean).toEqual({ failed: false, violations: [] });

    fs.mkdirSync(path.join(copy, "test"), { recursive: true });
    fs.writeFileSync(path.join(copy, "test/zzHelper.ts"), "export const probe = 1;\n");
    for (const probe of PROBES) fs.writeFileSync(path.join(copy, probe.file), probe.text);
    const broken = await cruise(copy);

    expect(broken.failed).toBe(true);
    for (const probe of PROBES) {
      const caught = new Set(broken.violations.filter((v) => v.from === probe.file).map((v) => v.rule));
      expect([...caught].sort(), probe.file).toEqual([...probe.rules].sort());
    }
    // Nothing else was flagged: the rules catch the probes, not the tree around them.
    const probeFiles = new Set(PROBES.map((p) => p.file));
    expect(broken.violations.filter((v) => !probeFiles.has(v.from))).toEqual([]);

    // Removed again, the copy passes.
    for (const probe of PROBES) fs.rmSync(path.join(copy, probe.file));
    expect(await cruise(copy)).toEqual({ failed: false, violations: [] });
  });
});

describe("promise rules (eslint.config.mjs)", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-promises-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** The repository's ESLint configuration on one file of `src/` in a project of its own. */
  async function lint(text: string): Promise<string[]> {
    fs.mkdirSync(path.join(dir, "src"), { recursive: true });
    fs.writeFileSync(
      path.join(dir, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { strict: true, target: "ES2022", lib: ["ES2023"], types: [], noEmit: true }, include: ["src"] }),
    );
    fs.writeFileSync(path.join(dir, "src/probe.ts"), text);
    const eslint = new ESLint({ cwd: dir, overrideConfigFile: path.join(ROOT, "eslint.config.mjs") });
    const [result] = await eslint.lintFiles(["src/probe.ts"]);
    return result!.messages.map((m) => `${m.line}: ${m.ruleId ?? m.message}`);
  }

  const later = "async function later(): Promise<number> {\n  return 1;\n}\n";

  it("flag a promise nobody awaits and promises where plain values are expected", async () => {
    const text = `${later}export function caller(): void {\n  later();\n  [1].forEach(async () => {\n    await later();\n  });\n  if (later()) return;\n}\n`;
    expect(await lint(text)).toEqual([
      "5: @typescript-eslint/no-floating-promises",
      "6: @typescript-eslint/no-misused-promises",
      "9: @typescript-eslint/no-misused-promises",
    ]);
  });

  it("pass the same code awaited, caught or explicitly detached", async () => {
    const text = `${later}export async function caller(): Promise<void> {\n  await later();\n  later().catch(() => undefined);\n  void later();\n  for (const _ of [1]) await later();\n}\n`;
    expect(await lint(text)).toEqual([]);
  });
});
