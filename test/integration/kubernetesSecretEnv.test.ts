// Issue 19, "secrets stay secret everywhere", on Kubernetes: a PE whose env holds a secret from
// `config.requireSecret`, plain `pulumi` in a project folder, the local two-node cluster. The pod spec,
// the pod's annotations and reseat's record ConfigMap hold no plaintext (the pod's env references a
// Secret), `pulumi stack export` holds it only encrypted, the workload has the value; a pod
// force-deleted under `reseat watch --kubernetes NS` comes back with it.
import * as fs from "node:fs";
import * as path from "node:path";
import type * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABELS } from "../../src/backend/backend";
import { envSecretName, recordName, secretEnvKey } from "../../src/backend/kubernetes/objects";
import { ROOT } from "../support/harness";
import { kubectl, pollFor } from "../support/kubernetes";
import { api, k8sSessionSpec, loadImages, makeTestNamespace, podsOfPe, readPod, startK8sController, useCluster } from "../support/kubernetesPe";
import { mustPulumi, pulumi, stackExport, stackOutputs, userEnv } from "../support/userProject";

const PE = `kse-${process.pid}`;
const NAMESPACE = `reseat-it-kse-${process.pid}`;
const STACK = "dev";
const TOKEN = `tok-${process.pid}-${Date.now().toString(36)}-never-in-a-pod-spec`;

interface PeSummary {
  generation: number;
  executableName: string;
  volumeName: string;
}

/** The spec comes from the stack config as JSON; the env's API_TOKEN from a secret config value. */
const PROGRAM = `
const pulumi = require("@pulumi/pulumi");
const { ProcessingElement } = require("reseat/components");
const config = new pulumi.Config();
const spec = config.requireObject("spec");
const pe = new ProcessingElement(config.require("peId"), { ...spec, env: { ...spec.env, API_TOKEN: config.requireSecret("apiToken") } });
exports.pe = pe.summary;
`;

/** The environment of the PE's workload process of one generation (the nodes' processes are this machine's). */
function workloadEnvOf(generation: number): Record<string, string> | undefined {
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = fs.readFileSync(`/proc/${entry}/environ`, "utf8").split("\0").filter(Boolean);
      if (environ.includes(`RESEAT_PE_ID=${PE}`) && environ.includes(`RESEAT_GENERATION=${generation}`)) {
        return Object.fromEntries(environ.map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]));
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return undefined;
}

describe("a secret env value on Kubernetes: in a Secret, never in the pod spec, its annotations or the record", () => {
  let cluster: Awaited<ReturnType<typeof makeTestNamespace>>;
  let dir: string;

  const summary = async () => (await stackOutputs(dir, STACK)).pe as PeSummary;

  /** The PE's pod of this generation: ready, the value referenced from the env Secret, nowhere in plain text. */
  async function expectPodWithSecret(generation: number): Promise<k8s.V1Pod> {
    const name = `reseat-${PE}-g${generation}`;
    const pod = await pollFor(`pod ${name} ready`, 120, async () => {
      const p = await readPod(NAMESPACE, name);
      return p?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ? p : undefined;
    });
    expect(JSON.stringify(pod.spec)).not.toContain(TOKEN);
    expect(JSON.stringify(pod.metadata?.annotations)).not.toContain(TOKEN);
    const specHash = pod.metadata!.labels![LABELS.specHash]!;
    const volume = pod.spec!.volumes!.find((v) => v.name === "state")!.persistentVolumeClaim!.claimName;
    const entry = pod.spec!.containers[0]!.env!.find((e) => e.name === "API_TOKEN");
    expect(entry).toEqual({ name: "API_TOKEN", valueFrom: { secretKeyRef: { name: envSecretName(volume), key: secretEnvKey(specHash, "API_TOKEN") } } });
    // The record ConfigMap (desired.json, the controller's source) holds no plaintext either.
    const record = await api().core.readNamespacedConfigMap({ name: recordName(volume), namespace: NAMESPACE });
    expect(JSON.stringify(record)).not.toContain(TOKEN);
    expect(JSON.parse(record.data!["desired.json"]!).secretEnv).toEqual(["API_TOKEN"]);
    // The value is where it belongs: the Secret, and the workload's environment.
    const secret = await api().core.readNamespacedSecret({ name: envSecretName(volume), namespace: NAMESPACE });
    expect(Buffer.from(secret.data![secretEnvKey(specHash, "API_TOKEN")]!, "base64").toString()).toBe(TOKEN);
    const env = await pollFor(`the workload process of generation ${generation}`, 30, async () => workloadEnvOf(generation));
    expect(env.API_TOKEN).toBe(TOKEN);
    return pod;
  }

  beforeAll(async () => {
    useCluster();
    await loadImages("reseat-session-workload:v1");
    cluster = await makeTestNamespace(NAMESPACE);
    // Inside the checkout, so that `reseat/components` and `@pulumi/kubernetes` resolve to this checkout's.
    dir = path.join(ROOT, ".work", `k8s-secret-env-${process.pid}-${Date.now().toString(36)}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: ksecretenv\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: index.js\n");
    fs.writeFileSync(path.join(dir, "index.js"), PROGRAM);
    await mustPulumi(dir, ["stack", "init", STACK], userEnv(dir));
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "peId", PE]);
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "spec", JSON.stringify(k8sSessionSpec(PE, NAMESPACE, cluster.storageClass))]);
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "--secret", "apiToken", TOKEN]);
  });
  afterAll(async () => {
    if (dir) await pulumi(dir, ["destroy", "--yes", "--skip-preview", "--stack", STACK]).catch(() => undefined);
    await cluster?.remove();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("up: the pod's env references the Secret; no plaintext in the pod, its annotations, the record or the state; the workload has it", async () => {
    const up = await mustPulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    expect(up.stdout + up.stderr).not.toContain(TOKEN);
    expect((await summary()).generation).toBe(1);
    await expectPodWithSecret(1);
    expect(await stackExport(dir, STACK)).not.toContain(TOKEN);
  });

  it("a pod force-deleted under reseat watch --kubernetes: the pod it re-creates from the record still has the value", async () => {
    const controller = startK8sController(NAMESPACE);
    try {
      await controller.ready;
      await kubectl("-n", NAMESPACE, "delete", "pod", `reseat-${PE}-g1`, "--force", "--grace-period=0");
      await pollFor("the controller's reseat", 120, async () => (controller.events.some((e) => e.kind === "reseated" && e.peId === PE) ? true : undefined));
    } finally {
      await controller.stop();
    }
    expect(controller.events.filter((e) => e.kind === "reseat-failed" && e.peId === PE)).toEqual([]);
    await expectPodWithSecret(2);
    expect((await podsOfPe(NAMESPACE, PE)).map((p) => p.metadata?.name)).toEqual([`reseat-${PE}-g2`]);
  });
});
