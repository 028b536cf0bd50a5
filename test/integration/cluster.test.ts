// The local two-node Kubernetes cluster (scripts/cluster.sh) and Pulumi's real Kubernetes provider plugin,
// driven by the real Pulumi CLI (the `reseat` CLI's Automation API, in its own Node process) through
// stacks/k8sSmoke.ts: a claim and a pod on each node, the pod replaced, the data still there.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, ROOT, expectOk, makeProject, run, type CliResult, type Project } from "../support/harness";
import { KUBECONFIG, clusterEnv, clusterScript, kubectl, kubectlJson, pollFor, podReady, type PodJson } from "../support/kubernetes";

const IMAGE = "reseat-demo-workload:v1";
const NODES = ["node1", "node2"];
const PROGRAM = path.join(ROOT, "dist", "stacks", "k8sSmoke.js");
const POD_TYPE = "kubernetes:core/v1:Pod";

interface SmokePod {
  name: string;
  uid: string;
  nodeName: string;
  claimName: string;
}

function configure(project: Project, namespace: string, revision: string): void {
  const config = { config: { "reseat:k8sSmoke": { namespace, image: IMAGE, nodes: NODES, revision } } };
  fs.writeFileSync(path.join(project.dir, "stacks", `Pulumi.${project.stack}.yaml`), JSON.stringify(config, null, 2));
}

function smoke(project: Project, command: "up" | "destroy"): Promise<CliResult> {
  // `up --create`: the CLI makes a stack only when asked.
  const create = command === "up" ? ["--create"] : [];
  return run(process.execPath, [CLI, command, "--cwd", project.dir, "--stack", project.stack, "--program", PROGRAM, ...create, "--json"], clusterEnv());
}

function podsOf(result: CliResult): Record<string, SmokePod> {
  const pods = result.doc.outputs?.pods as Record<string, SmokePod> | undefined;
  if (!pods) throw new Error(`no pods in the stack outputs: ${JSON.stringify(result.doc.outputs)}`);
  return pods;
}

async function readOnPod(namespace: string, pod: string, file: string): Promise<string> {
  return kubectl("-n", namespace, "exec", pod, "--", "node", "-e", `process.stdout.write(require('fs').readFileSync('${file}', 'utf8'))`);
}

async function expectReadyOn(namespace: string, pod: SmokePod, node: string): Promise<void> {
  const live = await kubectlJson<PodJson>("-n", namespace, "get", "pod", pod.name);
  expect(live.metadata.uid).toBe(pod.uid);
  expect(live.spec.nodeName).toBe(node);
  expect(podReady(live)).toBe(true);
}

describe("local Kubernetes cluster", () => {
  beforeAll(async () => {
    const loaded = await clusterScript("load-image", IMAGE);
    if (loaded.code !== 0) throw new Error(`cluster.sh load-image ${IMAGE} failed: ${loaded.stderr}`);
  });

  it("status reports both nodes Ready, the kubeconfig and the node-local StorageClass", async () => {
    const status = await clusterScript("status");
    expect(status.code, status.stderr).toBe(0);
    expect(/^kubeconfig: (.+)$/m.exec(status.stdout)?.[1]).toBe(KUBECONFIG);
    for (const node of NODES) expect(status.stdout).toMatch(new RegExp(`^node: ${node} Ready `, "m"));

    // The API server agrees: both kubelets registered, Ready, at the version that was built.
    const nodes = await kubectlJson<{
      items: { metadata: { name: string }; status: { nodeInfo: { kubeletVersion: string }; conditions: { type: string; status: string }[] } }[];
    }>("get", "nodes");
    expect(nodes.items.map((n) => n.metadata.name).sort()).toEqual(NODES);
    for (const node of nodes.items) {
      expect(node.status.conditions.find((c) => c.type === "Ready")?.status).toBe("True");
      expect(node.status.nodeInfo.kubeletVersion).toBe("v1.35.4");
    }
    const storageClass = await kubectlJson<{
      metadata: { annotations?: Record<string, string> };
      provisioner: string;
      volumeBindingMode: string;
      reclaimPolicy: string;
    }>("get", "storageclass", "reseat-node-local");
    expect(storageClass.provisioner).toBe("reseat.local/node-local");
    expect(storageClass.volumeBindingMode).toBe("WaitForFirstConsumer");
    expect(storageClass.reclaimPolicy).toBe("Retain");
    expect(storageClass.metadata.annotations?.["storageclass.kubernetes.io/is-default-class"]).toBe("true");
  });

  describe("through the Pulumi CLI with @pulumi/kubernetes", () => {
    const namespace = `smoke-${process.pid}-${Date.now().toString(36)}`;
    const storageClass = `${namespace}-node-local`;
    let project: Project;
    let destroyed = false;

    afterAll(async () => {
      if (project && !destroyed) await smoke(project, "destroy");
      await kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false").catch(() => undefined);
    });

    it("puts a claim and a Ready pod on each node, keeps the data across a pod replacement, then destroys", async () => {
      project = makeProject("k8s-smoke", []);
      configure(project, namespace, "1");
      const first = expectOk("up", await smoke(project, "up"));
      const before = podsOf(first);
      const tokens: Record<string, string> = {};
      for (const node of NODES) {
        const pod = before[node]!;
        expect(pod.nodeName).toBe(node);
        await expectReadyOn(namespace, pod, node);
        // The claim was provisioned on the pod's node: a local volume pinned there by node affinity.
        const claim = await kubectlJson<{ status: { phase: string }; spec: { volumeName: string } }>("-n", namespace, "get", "pvc", pod.claimName);
        expect(claim.status.phase).toBe("Bound");
        const volume = await kubectlJson<{
          spec: { local?: { path: string }; nodeAffinity: { required: { nodeSelectorTerms: { matchExpressions: { values: string[] }[] }[] } } };
        }>("get", "pv", claim.spec.volumeName);
        expect(volume.spec.local?.path).toBeTruthy();
        expect(volume.spec.nodeAffinity.required.nodeSelectorTerms[0]?.matchExpressions[0]?.values).toEqual([node]);

        tokens[node] = randomBytes(12).toString("hex");
        await kubectl(
          "-n",
          namespace,
          "exec",
          pod.name,
          "--",
          "node",
          "-e",
          `const fs = require('fs'); const fd = fs.openSync('/data/token', 'w'); fs.writeSync(fd, '${tokens[node]}'); fs.fsyncSync(fd); fs.closeSync(fd);`,
        );
        expect(await readOnPod(namespace, pod.name, "/data/token")).toBe(tokens[node]);
      }

      // A new revision: the pods, and nothing else, are replaced.
      configure(project, namespace, "2");
      const second = expectOk("up", await smoke(project, "up"));
      const replaced = new Set((second.doc.steps ?? []).filter((s) => s.op.includes("replace")).map((s) => s.urn));
      const replacedTypes = (second.doc.steps ?? []).filter((s) => replaced.has(s.urn)).map((s) => s.type);
      expect(replaced.size).toBe(NODES.length);
      expect(new Set(replacedTypes)).toEqual(new Set([POD_TYPE]));
      const after = podsOf(second);
      for (const node of NODES) {
        const pod = after[node]!;
        expect(pod.uid).not.toBe(before[node]!.uid);
        expect(pod.claimName).toBe(before[node]!.claimName);
        await expectReadyOn(namespace, pod, node);
        expect(await readOnPod(namespace, pod.name, "/data/.mounted-by-revision")).toBe("2");
        expect(await readOnPod(namespace, pod.name, "/data/token")).toBe(tokens[node]);
      }

      expectOk("destroy", await smoke(project, "destroy"));
      destroyed = true;
      const namespaces = await kubectlJson<{ items: { metadata: { name: string } }[] }>("get", "namespaces");
      expect(namespaces.items.map((n) => n.metadata.name)).not.toContain(namespace);
      // The smoke class reclaims with Delete: the provisioner removes its volumes once the claims are gone.
      await pollFor("the smoke volumes to be deleted", 60, async () => {
        const volumes = await kubectlJson<{ items: { spec: { storageClassName?: string } }[] }>("get", "pv");
        return volumes.items.some((v) => v.spec.storageClassName === storageClass) ? undefined : true;
      });
    });
  });
});
