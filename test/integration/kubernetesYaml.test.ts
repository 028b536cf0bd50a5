// Issue 20: one PE on the local Kubernetes cluster from a YAML program, through reseat's plugin package
// (the claim and each generation's pod made by the plugin, @pulumi/kubernetes among its dependencies).
// A fresh folder with nothing of this checkout but the package: up → 100 acknowledged writes → image
// change → preview shows one replace (the executable) and no claim step → up keeps every write,
// generation + 1 → destroy keeps the claim.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mustPulumi, previewJson, stackOutputs } from "../support/userProject";
import { KUBECONFIG } from "../support/kubernetes";
import { claimOf, loadImages, makeTestNamespace, podUrl, podsOfPe } from "../support/kubernetesPe";
import { buildPluginPackage, expectedSessions, languageEnv, projectWithPackage, putSessions, sessionsOf, workloadVersion } from "../support/pluginPackage";

const PE = `it-k8y-${process.pid}`;
const STACK = "dev";

const program = (peId: string, namespace: string, storageClass: string) => `name: yaml-k8s-user
runtime: yaml
config:
  image: { type: string }
resources:
  orders:
    type: reseat:index:ProcessingElement
    properties:
      peId: ${peId}
      image: \${image}
      env: { PORT: "8080", LISTEN_HOST: 0.0.0.0 }
      ports: [{ container: 8080 }]
      commitInterval: 1s
      readiness: { httpGet: { port: 8080, path: /healthz }, timeout: 90s }
      kubernetes:
        namespace: ${namespace}
        storageClassName: ${storageClass}
        size: 64Mi
        status: { port: 8080, path: /status }
        store: { storageClassName: ${storageClass}, size: 64Mi }
outputs:
  orders:
    generation: \${orders.generation}
    executableName: \${orders.executableName}
    volumeName: \${orders.volumeName}
    lastCommit: \${orders.lastCommit}
`;

type Outputs = { generation: number; executableName: string; volumeName: string; lastCommit: { seq: number } | null };

describe("a YAML program: one PE on the local Kubernetes cluster through reseat's plugin package", () => {
  let pkg: string;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let ns: Awaited<ReturnType<typeof makeTestNamespace>>;
  let first: Outputs;

  beforeAll(async () => {
    let built: string;
    [built, ns] = await Promise.all([
      buildPluginPackage(),
      makeTestNamespace(`it-k8y-${process.pid}`),
      loadImages("reseat-session-workload:v1", "reseat-session-workload:v2"),
    ]).then(([p, n]) => [p, n] as const);
    pkg = built;
    dir = await projectWithPackage(pkg, "yaml", { "Pulumi.yaml": program(PE, ns.namespace, ns.storageClass) });
    env = languageEnv(dir, "yaml", { KUBECONFIG });
  });
  afterAll(async () => {
    await ns?.remove();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (pkg) fs.rmSync(path.dirname(pkg), { recursive: true, force: true });
  });

  it("up: a claim and one pod on its node; 100 writes are acknowledged", async () => {
    await mustPulumi(dir, ["stack", "init", STACK], env);
    await mustPulumi(dir, ["config", "set", "image", "reseat-session-workload:v1"], env);
    await mustPulumi(dir, ["up", "--yes", "--skip-preview"], env);
    first = (await stackOutputs(dir, STACK, env)).orders as Outputs;
    expect(first.generation).toBe(1);
    expect(await claimOf(ns.namespace, first.volumeName)).toBeDefined();
    expect((await podsOfPe(ns.namespace, PE)).map((p) => p.metadata?.name)).toEqual([first.executableName]);
    expect(await putSessions(await podUrl(ns.namespace, first.executableName), 100)).toBe(100);
  });

  it("an image change: preview shows exactly one replace, the executable, and no claim step", async () => {
    await mustPulumi(dir, ["config", "set", "image", "reseat-session-workload:v2"], env);
    const preview = await previewJson(dir, STACK, env);
    expect(preview.changeSummary.replace).toBe(1);
    expect(preview.steps.filter((s) => s.op !== "same").map((s) => s.type)).toEqual(["reseat:index:Executable"]);
    expect(preview.steps.filter((s) => s.type === "kubernetes:core/v1:PersistentVolumeClaim")).toEqual([]);
  });

  it("up replaces the pod on the kept claim: every write kept, generation + 1", async () => {
    await mustPulumi(dir, ["up", "--yes", "--skip-preview"], env);
    const after = (await stackOutputs(dir, STACK, env)).orders as Outputs;
    expect(after.generation).toBe(first.generation + 1);
    expect(after.volumeName).toBe(first.volumeName);
    expect(after.executableName).not.toBe(first.executableName);
    const url = await podUrl(ns.namespace, after.executableName);
    expect(await workloadVersion(url)).toBe("v2");
    expect(await sessionsOf(url)).toEqual(expectedSessions(100));
    expect(after.lastCommit?.seq).toBeGreaterThanOrEqual(100);
  });

  it("destroy removes the pod and keeps the claim", async () => {
    await mustPulumi(dir, ["destroy", "--yes", "--skip-preview"], env);
    expect(await podsOfPe(ns.namespace, PE)).toEqual([]);
    expect(await claimOf(ns.namespace, first.volumeName)).toBeDefined();
  });
});
