import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Tests run reseat's TypeScript sources, the state package's included: "@reseat/state" (and its contract)
// resolve to packages/state/src rather than to its compiled dist/, which may not be built or may be stale.
const stateSource = (file: string) => fileURLToPath(new URL(`./packages/state/src/${file}`, import.meta.url));
const resolve = {
  alias: [
    { find: /^@reseat\/state\/contract$/, replacement: stateSource("contract/index.ts") },
    { find: /^@reseat\/state$/, replacement: stateSource("index.ts") },
  ],
};

/** The integration test files that use the local Kubernetes cluster (test/support/kubernetes*.ts). */
const ON_THE_CLUSTER = ["test/integration/kubernetes*.test.ts", "test/integration/cluster.test.ts", "test/integration/readOnlyPreview.test.ts"];
const oneFileAtATime = { testTimeout: 600_000, hookTimeout: 600_000, fileParallelism: false, pool: "forks" as const };

export default defineConfig({
  test: {
    projects: [
      {
        resolve,
        test: { name: "unit", include: ["test/unit/**/*.test.ts"], testTimeout: 60_000 },
      },
      {
        resolve,
        // Integration tests drive the real Pulumi CLI and Docker Engine: one file at a time, since
        // they share the engine, and generous timeouts (no timing is asserted; see bench/).
        test: { name: "integration", include: ["test/integration/**/*.test.ts"], exclude: ON_THE_CLUSTER, ...oneFileAtATime },
      },
      {
        resolve,
        // The files that use the local Kubernetes cluster, one at a time among themselves (one cordons a
        // node, another black-holes the API server): the full run (scripts/test.sh) runs this project in a
        // second vitest process beside the other files, which share only the machine and Docker's images with them.
        test: { name: "kubernetes", include: ON_THE_CLUSTER, ...oneFileAtATime },
      },
    ],
  },
});
