// Issue 19 on Kubernetes: `pulumi up --replace <the Executable's URN>`, a `replacementTrigger` change
// and a `--target` run each leave the PE with exactly one pod, one generation newer, on the claim's
// node, every acknowledged write kept, and a refresh that finds nothing to change. Plain `pulumi` in a
// project folder whose program declares the PE; the local two-node cluster; an independent pod watch.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../support/harness";
import { pollFor } from "../support/kubernetes";
import { k8sSessionSpec, loadImages, makeTestNamespace, observePods, podUrl, podsOfPe, useCluster } from "../support/kubernetesPe";
import { mustPulumi, pulumi, stackExport, stackOutputs, userEnv } from "../support/userProject";

const PE = `kfr-${process.pid}`;
const NAMESPACE = `reseat-it-kfr-${process.pid}`;
const STACK = "dev";

interface PeSummary {
  generation: number;
  executableId: string;
  executableName: string;
  volumeName: string;
  host: string;
}

/** The PE's spec comes from the stack config as JSON; its replacementTrigger from the key `trigger`. */
const PROGRAM = `
const pulumi = require("@pulumi/pulumi");
const { ProcessingElement } = require("reseat/components");
const config = new pulumi.Config();
const pe = new ProcessingElement(config.require("peId"), config.requireObject("spec"), { replacementTrigger: config.get("trigger") || "t0" });
exports.pe = pe.summary;
`;

async function putSessions(url: string, prefix: string, count: number): Promise<Record<string, number>> {
  const written: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const key = `${prefix}-${i % 3}`;
    const res = await fetch(`${url}/sessions/${key}`, { method: "PUT", body: JSON.stringify({ n: i }) });
    expect(res.status).toBe(200);
    written[key] = i;
  }
  return written;
}

async function sessionsAt(url: string): Promise<Record<string, { n: number }>> {
  return ((await (await fetch(`${url}/sessions`)).json()) as { sessions: Record<string, { n: number }> }).sessions;
}

describe("forced replacements never leave a PE without its pod (Kubernetes)", () => {
  let cluster: Awaited<ReturnType<typeof makeTestNamespace>>;
  let dir: string;
  let current: PeSummary;
  const acknowledged: Record<string, number> = {};
  let observer: Awaited<ReturnType<typeof observePods>>;

  const summary = async () => (await stackOutputs(dir, STACK)).pe as PeSummary;
  const up = (...extra: string[]) => mustPulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK, ...extra]);
  const executableUrn = async () => {
    const doc = JSON.parse(await stackExport(dir, STACK)) as { deployment: { resources: { urn: string; type: string }[] } };
    return doc.deployment.resources.find((r) => r.type === "pulumi-nodejs:dynamic/reseat:Executable")!.urn;
  };

  /** One pod, generation + 1, same claim and node, every acknowledged write there, a clean refresh; then more writes. */
  async function expectReplacedOnce(label: string): Promise<void> {
    const after = await summary();
    expect(after.generation).toBe(current.generation + 1);
    expect(after.volumeName).toBe(current.volumeName);
    expect(after.host).toBe(current.host);
    const pods = (await podsOfPe(NAMESPACE, PE)).filter((p) => !p.metadata?.deletionTimestamp);
    expect(pods.map((p) => p.metadata?.name)).toEqual([after.executableName]);
    const url = await podUrl(NAMESPACE, after.executableName);
    const sessions = await sessionsAt(url);
    for (const [key, n] of Object.entries(acknowledged)) expect(sessions[key]?.n, key).toBe(n);
    const gate = await pulumi(dir, ["preview", "--refresh", "--expect-no-changes", "--stack", STACK]);
    expect(gate.code, gate.stdout.slice(-3000) + gate.stderr.slice(-2000)).toBe(0);
    Object.assign(acknowledged, await putSessions(url, label, 6));
    current = after;
  }

  beforeAll(async () => {
    useCluster();
    await loadImages("reseat-session-workload:v1", "reseat-session-workload:v2");
    cluster = await makeTestNamespace(NAMESPACE);
    // Inside the checkout, so that `reseat/components` and `@pulumi/kubernetes` resolve to this checkout's.
    dir = path.join(ROOT, ".work", `k8s-forced-${process.pid}-${Date.now().toString(36)}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: kforced\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: index.js\n");
    fs.writeFileSync(path.join(dir, "index.js"), PROGRAM);
    await mustPulumi(dir, ["stack", "init", STACK], userEnv(dir));
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "peId", PE]);
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "spec", JSON.stringify(k8sSessionSpec(PE, NAMESPACE, cluster.storageClass))]);
  });
  afterAll(async () => {
    await observer?.stop();
    if (dir) await pulumi(dir, ["destroy", "--yes", "--skip-preview", "--stack", STACK]).catch(() => undefined);
    await cluster?.remove();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("up creates the claim and the pod; writes are acknowledged", async () => {
    await up();
    current = await summary();
    expect(current.generation).toBe(1);
    const url = await podUrl(NAMESPACE, current.executableName);
    Object.assign(acknowledged, await putSessions(url, "first", 6));
    observer = await observePods(NAMESPACE, PE);
  });

  it("pulumi up --replace <the Executable's URN>: a new pod, generation + 1, nothing lost", async () => {
    await up("--replace", await executableUrn());
    await expectReplacedOnce("after-replace");
  });

  it("a replacementTrigger change: the same", async () => {
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "trigger", "t1"]);
    await up();
    await expectReplacedOnce("after-trigger");
  });

  it("a --target run of the Executable with an image change: the same, on the new image", async () => {
    const spec = k8sSessionSpec(PE, NAMESPACE, cluster.storageClass, { image: "reseat-session-workload:v2" });
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "spec", JSON.stringify(spec)]);
    await up("--target", await executableUrn());
    await expectReplacedOnce("after-target");
    const pods = await podsOfPe(NAMESPACE, PE);
    expect(pods[0]?.spec?.containers[0]?.image).toBe("reseat-session-workload:v2");
  });

  it("never two pods of the PE running at once, by the API server's own watch", async () => {
    const observed = await pollFor("the watch to settle", 10, async () => observer.stop());
    expect(observed.maxRunning).toBe(1);
    expect(observed.podsSeenRunning.length).toBeGreaterThanOrEqual(3);
  });
});
