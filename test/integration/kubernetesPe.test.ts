// Issue: a PE on Kubernetes replaced by a real `pulumi up`: the claim is kept, only the pod is replaced,
// on the node that holds the claim. Real Pulumi CLI (through the reseat CLI), the real
// @pulumi/kubernetes plugin, the local two-node cluster (scripts/cluster.sh), the session-context
// service writing through the state library. An independent observer watches the API server.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ack, PeOutputs, Project, ROOT, checkpointText, lastAcked, makeProject, mustSucceed, peOutputs, reseatCli, setSpecs } from "../support/harness";
import { kubectl, pollFor } from "../support/kubernetes";
import {
  claimOf,
  k8sSessionSpec,
  loadImages,
  makeTestNamespace,
  nodeOfClaim,
  observePods,
  podUrl,
  podsOfPe,
  readPod,
  startK8sController,
  useCluster,
  workloadPids,
} from "../support/kubernetesPe";
import { LABELS } from "../../src/backend/backend";

const PE = `kpe-${process.pid}`;
const NAMESPACE = `reseat-it-kpe-${process.pid}`;
const CLAIM = `reseat-${PE}-state`;

interface SessionStatus {
  generation: number;
  resumedFrom: string;
}

/** Writers that PUT sessions through the pod's address; only acknowledged (200 + seq) writes count. */
function startWriters(url: string, prefix: string): { acks: Ack[]; stop: () => Promise<void> } {
  const acks: Ack[] = [];
  let stopped = false;
  const loops = [0, 1].map(async (writer) => {
    for (let i = 0; !stopped; i++) {
      const key = `${prefix}-${writer}`;
      try {
        const res = await fetch(`${url}/sessions/${key}`, { method: "PUT", body: JSON.stringify({ n: i }), signal: AbortSignal.timeout(3000) });
        if (res.status !== 200) return;
        acks.push({ key, value: i, seq: ((await res.json()) as { seq: number }).seq, at: Date.now() });
      } catch {
        return;
      }
    }
  });
  return {
    acks,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

async function sessionsAt(url: string): Promise<Record<string, { n: number }>> {
  const res = await fetch(`${url}/sessions`);
  return ((await res.json()) as { sessions: Record<string, { n: number }> }).sessions;
}

function expectAllAcked(acks: Ack[], sessions: Record<string, { n: number }>): void {
  expect(acks.length).toBeGreaterThan(0);
  for (const [key, value] of lastAcked(acks)) expect(sessions[key]?.n, key).toBeGreaterThanOrEqual(value);
}

describe("a processing element on Kubernetes", () => {
  let project: Project;
  let cluster: Awaited<ReturnType<typeof makeTestNamespace>>;
  let first: PeOutputs;
  let acks: Ack[] = [];

  beforeAll(async () => {
    useCluster();
    await loadImages("reseat-session-workload:v1", "reseat-session-workload:v2");
    cluster = await makeTestNamespace(NAMESPACE);
    project = makeProject("k8s-pe", [k8sSessionSpec(PE, NAMESPACE, cluster.storageClass)]);
  });
  afterAll(async () => {
    if (project) await reseatCli(project, "destroy").catch(() => undefined);
    await cluster?.remove();
  });

  it("invalid Kubernetes fields fail preview and up naming each field; nothing is created", async () => {
    const bad = `${PE}-bad`;
    const invalid = makeProject("k8s-invalid", [
      k8sSessionSpec(bad, NAMESPACE, cluster.storageClass, { network: "host", kubernetes: { size: "lots", nodeSelector: { "bad key!": "x" } } }),
    ]);
    for (const command of ["preview", "up"] as const) {
      const refused = await reseatCli(invalid, command);
      expect(refused.code, command).toBe(1);
      expect(refused.doc.error).toContain("- kubernetes.size: ");
      expect(refused.doc.error).toContain("- kubernetes.nodeSelector.bad key!: ");
      expect(refused.doc.error).toMatch(/- network: a Docker-only field, not allowed with kubernetes/);
    }
    // The namespace is the test's own and this is its first test: nothing of any PE in it yet.
    expect((await kubectl("get", "pvc,pods,leases", "-n", NAMESPACE, "-o", "name")).trim()).toBe("");
    expect((await reseatCli(invalid, "outputs")).doc.outputs ?? {}).toEqual({});
  });

  it("up creates the claim and a pod bound to it; the workload writes through the state library", async () => {
    first = peOutputs(await mustSucceed(project, "up"), PE);
    expect(first.generation).toBe(1);
    expect(first.volumeName).toBe(CLAIM);
    expect(first.executableName).toBe(`reseat-${PE}-g1`);
    const claim = await claimOf(NAMESPACE, CLAIM);
    expect(claim?.status?.phase).toBe("Bound");
    expect(claim?.metadata?.labels?.[LABELS.peId]).toBe(PE);
    expect(claim?.metadata?.annotations?.[LABELS.owner]).toMatch(new RegExp(`/test/${PE}$`));
    expect(claim?.metadata?.annotations?.[LABELS.generation]).toBe("1");
    // The first pod was placed by the scheduler; the claim's volume is on that node from now on.
    const node = await nodeOfClaim(NAMESPACE, CLAIM);
    expect(first.host).toBe(node);
    const pod = await readPod(NAMESPACE, first.executableName);
    expect(pod?.spec?.nodeName).toBe(node);
    expect(pod?.spec?.volumes?.find((v) => v.name === "state")?.persistentVolumeClaim?.claimName).toBe(CLAIM);
    // Portable state: no path of this checkout anywhere (the claim check's provider included).
    expect(checkpointText(project)).toContain("pulumi-nodejs:dynamic/reseat:ClaimCheck");
    expect(checkpointText(project)).not.toContain(ROOT);

    const url = await podUrl(NAMESPACE, first.executableName);
    const writers = startWriters(url, "before");
    await pollFor("some acknowledged writes", 30, async () => (writers.acks.length >= 50 ? true : undefined));
    await writers.stop();
    acks = writers.acks;
    expectAllAcked(acks, await sessionsAt(url));
    // Commit status reaches the stack outputs through the API server's pod proxy (no exec).
    const refreshed = peOutputs(await mustSucceed(project, "up"), PE);
    expect(refreshed.generation).toBe(1);
    expect(refreshed.resumedFrom).toBe("empty");
  });

  it("an image change previews as exactly one replace (the executable); nothing for the claim", async () => {
    setSpecs(project, [k8sSessionSpec(PE, NAMESPACE, cluster.storageClass, { image: "reseat-session-workload:v2" })]);
    const preview = await mustSucceed(project, "preview");
    // Provider resources (pulumi:providers:*) are Pulumi's own bookkeeping, not the PE's resources.
    const changed = (preview.doc.steps ?? []).filter((s) => s.op !== "same" && !s.type.startsWith("pulumi:providers:"));
    expect(changed.map((s) => s.type)).toEqual(expect.arrayContaining(["pulumi-nodejs:dynamic/reseat:Executable"]));
    expect(
      changed.every((s) => s.type === "pulumi-nodejs:dynamic/reseat:Executable" && ["replace", "create-replacement", "delete-replaced"].includes(s.op)),
    ).toBe(true);
    const claimSteps = (preview.doc.steps ?? []).filter((s) => s.type === "kubernetes:core/v1:PersistentVolumeClaim");
    expect(claimSteps.length).toBe(2); // the state claim and the directory store's claim
    expect(claimSteps.every((s) => s.op === "same")).toBe(true);
    expect(preview.doc.changeSummary?.replace).toBe(1);
  });

  it("up: a new pod on the same node and claim, every acknowledged write present, generation + 1, never two pods running", async () => {
    const observer = await observePods(NAMESPACE, PE);
    const second = peOutputs(await mustSucceed(project, "up"), PE);
    const observed = await observer.stop();

    expect(second.peId).toBe(PE);
    expect(second.volumeName).toBe(first.volumeName);
    expect(second.generation).toBe(first.generation + 1);
    expect(second.executableName).toBe(`reseat-${PE}-g2`);
    expect(second.host).toBe(first.host);
    const pod = await readPod(NAMESPACE, second.executableName);
    expect(pod?.spec?.nodeName).toBe(first.host);
    expect(pod?.spec?.containers[0]?.image).toBe("reseat-session-workload:v2");
    expect(await readPod(NAMESPACE, first.executableName)).toBeUndefined();
    expect((await claimOf(NAMESPACE, CLAIM))?.metadata?.annotations?.[LABELS.generation]).toBe("2");

    const url = await podUrl(NAMESPACE, second.executableName);
    expectAllAcked(acks, await sessionsAt(url));
    const status = (await (await fetch(`${url}/status`)).json()) as SessionStatus;
    expect(status).toMatchObject({ generation: 2, resumedFrom: "local" });
    expect(second.resumedFrom).toBe("local");
    expect(observed.maxRunning).toBe(1);
    first = second;
  });

  it("reseat watch: a pod force-deleted, then the workload killed with SIGKILL → each time a new pod on the same node, state intact", async () => {
    const controller = startK8sController(NAMESPACE);
    const observer = await observePods(NAMESPACE, PE);
    try {
      await controller.ready;
      let url = await podUrl(NAMESPACE, first.executableName);
      const writers = startWriters(url, "watch");
      await pollFor("writes before the force delete", 30, async () => (writers.acks.length >= 30 ? true : undefined));
      await writers.stop();
      acks.push(...writers.acks);

      // 1. kubectl delete pod --force --grace-period=0
      await kubectl("-n", NAMESPACE, "delete", "pod", first.executableName, "--force", "--grace-period=0");
      const third = await pollFor("a new pod after the force delete", 120, async () => {
        const pods = (await podsOfPe(NAMESPACE, PE)).filter(
          (p) => p.metadata?.name !== first.executableName && p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        );
        return pods[0];
      });
      expect(third.metadata?.name).toBe(`reseat-${PE}-g3`);
      expect(third.spec?.nodeName).toBe(first.host);
      url = await podUrl(NAMESPACE, third.metadata!.name!);
      expectAllAcked(acks, await sessionsAt(url));

      // 2. the workload process killed with SIGKILL (the container ends, the pod fails)
      const more = startWriters(url, "sigkill");
      await pollFor("writes before the SIGKILL", 30, async () => (more.acks.length >= 30 ? true : undefined));
      await more.stop();
      acks.push(...more.acks);
      const pids = workloadPids(PE);
      expect(pids.length).toBe(1);
      process.kill(pids[0]!, "SIGKILL");
      const fourth = await pollFor("a new pod after the SIGKILL", 120, async () => {
        const pods = (await podsOfPe(NAMESPACE, PE)).filter(
          (p) => p.metadata?.name === `reseat-${PE}-g4` && p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        );
        return pods[0];
      });
      expect(fourth.spec?.nodeName).toBe(first.host);
      url = await podUrl(NAMESPACE, fourth.metadata!.name!);
      expectAllAcked(acks, await sessionsAt(url));
      expect((await claimOf(NAMESPACE, CLAIM))?.metadata?.annotations?.[LABELS.generation]).toBe("4");
      // The controller reports each reseat once its new pod is ready (just after the API server shows it Ready).
      await pollFor("the controller's second reseat reported", 30, async () =>
        controller.events.filter((e) => e.kind === "reseated").length >= 2 ? true : undefined,
      );
      expect(controller.events.filter((e) => e.kind === "reseated").map((e) => e.generation)).toEqual([3, 4]);
    } finally {
      await controller.stop();
    }
    const observed = await observer.stop();
    expect(observed.maxRunning).toBe(1);
    // Pulumi learns of the controller's work by refresh; up then adopts the running pod.
    await mustSucceed(project, "refresh");
    first = peOutputs(await mustSucceed(project, "up"), PE);
    expect(first.generation).toBe(4);
  });

  it("destroy keeps the claim and its data; a later up adopts it and resumes", async () => {
    await mustSucceed(project, "destroy");
    expect(await podsOfPe(NAMESPACE, PE)).toEqual([]);
    const kept = await claimOf(NAMESPACE, CLAIM);
    expect(kept?.status?.phase).toBe("Bound");
    const again = peOutputs(await mustSucceed(project, "up"), PE);
    expect(again.volumeName).toBe(CLAIM);
    expect(again.generation).toBe(5);
    expect(again.host).toBe(first.host);
    expect((await claimOf(NAMESPACE, CLAIM))?.metadata?.uid).toBe(kept?.metadata?.uid);
    const url = await podUrl(NAMESPACE, again.executableName);
    expectAllAcked(acks, await sessionsAt(url));
    expect(again.resumedFrom).toBe("local");
  });

  it("a change that needs a new claim is refused at preview, naming the field", async () => {
    setSpecs(project, [k8sSessionSpec(PE, NAMESPACE, cluster.storageClass, { image: "reseat-session-workload:v2", kubernetes: { size: "128Mi" } })]);
    const refused = await reseatCli(project, "preview");
    expect(refused.code).not.toBe(0);
    expect(refused.doc.error).toMatch(/refusing to change kubernetes\.size/);
    setSpecs(project, [k8sSessionSpec(PE, NAMESPACE, cluster.storageClass, { image: "reseat-session-workload:v2" })]);
  });

  it("with retainOnDestroy false, destroy deletes the claims too", async () => {
    setSpecs(project, [k8sSessionSpec(PE, NAMESPACE, cluster.storageClass, { image: "reseat-session-workload:v2", volume: { retainOnDestroy: false } })]);
    await mustSucceed(project, "up");
    await mustSucceed(project, "destroy");
    await pollFor("the claims deleted", 60, async () => ((await claimOf(NAMESPACE, CLAIM)) || (await claimOf(NAMESPACE, `${CLAIM}-store`)) ? undefined : true));
    expect(await podsOfPe(NAMESPACE, PE)).toEqual([]);
  });
});
