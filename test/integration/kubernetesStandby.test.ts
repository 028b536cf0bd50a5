// Issue 22 on Kubernetes: a PE with handover "standby" replaced by a real `pulumi up` (through the reseat CLI, the
// real @pulumi/kubernetes plugin, the local two-node cluster, the session service on the state library). The
// successor pod starts on the node that holds the claim while the old pod serves, parks (its status endpoint says
// "parked", its readinessProbe keeps it out of Ready), and takes over once the old pod stopped; a release that
// cannot start costs nothing: the old pod is never touched. An independent observer watches the API server.
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ack, PeOutputs, Project, lastAcked, makeProject, mustSucceed, peOutputs, reseatCli, setSpecs } from "../support/harness";
import { pollFor } from "../support/kubernetes";
import { api, claimOf, k8sSessionSpec, loadImages, makeTestNamespace, nodeOfClaim, podUrl, podsOfPe, readPod, useCluster } from "../support/kubernetesPe";
import { KubernetesBackend } from "../../src/backend/kubernetes/kubernetesBackend";
import { ANNOTATIONS, SERVING_CONDITION, recordName } from "../../src/backend/kubernetes/objects";
import { ExecutableDesired, LABELS } from "../../src/backend/backend";

const PE = `kstb-${process.pid}`;
const NAMESPACE = `reseat-it-kstb-${process.pid}`;
const CLAIM = `reseat-${PE}-state`;

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
  return ((await (await fetch(`${url}/sessions`)).json()) as { sessions: Record<string, { n: number }> }).sessions;
}

function expectAllAcked(acks: Ack[], sessions: Record<string, { n: number }>): void {
  expect(acks.length).toBeGreaterThan(0);
  for (const [key, value] of lastAcked(acks)) expect(sessions[key]?.n, key).toBeGreaterThanOrEqual(value);
}

/** One pod event as the API server delivered it, in its order. */
interface PodEvent {
  name: string;
  running: boolean;
  ready: boolean;
  deleting: boolean;
  /** reseat's readiness gate opened (it saw the pod serve). */
  marked: boolean;
  podIP?: string;
  /** When this process received it (for the informational timeline only: never asserted). */
  at: number;
}

/**
 * The API server's own order of the PE's pod events (a watch delivers them in resourceVersion order), and,
 * as soon as a pod of `generation` has an address, the answers of its status endpoint, asked directly and
 * often: whether it ever said "parked" for its generation, and what the watch had seen of `old` by then.
 */
async function observeHandover(
  namespace: string,
  peId: string,
  standbyPod: string,
  generation: number,
): Promise<{ stop: () => Promise<{ events: PodEvent[]; parkedSeen: boolean; eventsBeforeParked: PodEvent[]; servingAt?: number }> }> {
  const events: PodEvent[] = [];
  let parkedSeen = false;
  let eventsBeforeParked: PodEvent[] = [];
  let servingAt: number | undefined;
  let stopped = false;
  let asking: Promise<void> | undefined;
  const askStatus = async (ip: string) => {
    while (!stopped && servingAt === undefined) {
      try {
        const res = await fetch(`http://${ip}:8080/status`, { signal: AbortSignal.timeout(1000) });
        if (res.status === 200) {
          const status = (await res.json()) as { phase?: string; generation?: number };
          if (status.phase === "parked" && status.generation === generation && !parkedSeen) {
            parkedSeen = true;
            eventsBeforeParked = [...events];
          }
          if (status.phase === "serving" || status.phase === undefined) {
            servingAt = Date.now(); // it took over: no parked report any more
            return;
          }
        }
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  const watch = new k8s.Watch(api().config);
  const abort = await watch.watch(
    `/api/v1/namespaces/${namespace}/pods`,
    { labelSelector: `${LABELS.peId}=${peId}` },
    (_phase: string, pod: k8s.V1Pod) => {
      const name = pod.metadata!.name!;
      const event: PodEvent = {
        name,
        running: pod.status?.phase === "Running",
        ready: pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
        deleting: !!pod.metadata?.deletionTimestamp || _phase === "DELETED",
        marked: pod.status?.conditions?.some((c) => c.type === SERVING_CONDITION && c.status === "True") ?? false,
        podIP: pod.status?.podIP,
        at: Date.now(),
      };
      events.push(event);
      if (name === standbyPod && event.podIP && !asking) asking = askStatus(event.podIP);
    },
    () => undefined,
  );
  return {
    stop: async () => {
      stopped = true;
      abort.abort();
      await asking;
      return { events, parkedSeen, eventsBeforeParked, servingAt };
    },
  };
}

/** The index of the first event matching, or -1. */
function firstIndex(events: PodEvent[], match: (e: PodEvent) => boolean): number {
  return events.findIndex(match);
}

describe("a processing element on Kubernetes with handover standby", () => {
  let project: Project;
  let cluster: Awaited<ReturnType<typeof makeTestNamespace>>;
  let first: PeOutputs;
  let acks: Ack[] = [];
  const spec = (overrides: Record<string, unknown> = {}) => k8sSessionSpec(PE, NAMESPACE, cluster.storageClass, { handover: "standby", ...overrides });

  beforeAll(async () => {
    useCluster();
    await loadImages("reseat-session-workload:v1", "reseat-session-workload:v2");
    cluster = await makeTestNamespace(NAMESPACE);
    project = makeProject("k8s-standby", [spec()]);
  });
  afterAll(async () => {
    if (project) await reseatCli(project, "destroy").catch(() => undefined);
    await cluster?.remove();
  });

  it("a ReadWriteOncePod claim is refused for a standby, naming handover; no pod is made", async () => {
    const claim = `${PE}-rwop`;
    await api().core.createNamespacedPersistentVolumeClaim({
      namespace: NAMESPACE,
      body: {
        metadata: { name: claim, labels: { [LABELS.managed]: "true", [LABELS.role]: "state-volume", [LABELS.peId]: `${PE}-rwop` } },
        spec: { accessModes: ["ReadWriteOncePod"], storageClassName: cluster.storageClass, resources: { requests: { storage: "16Mi" } } },
      },
    });
    const backend = new KubernetesBackend({ namespace: NAMESPACE });
    const desired: ExecutableDesired = {
      peId: `${PE}-rwop`,
      imageRef: "reseat-session-workload:v1",
      imageId: "reseat-session-workload:v1",
      env: {},
      ports: [],
      network: "bridge",
      resources: {},
      volumeName: claim,
      mountPath: "/state",
      stop: { signal: "SIGTERM", graceSeconds: 5 },
      commitIntervalMs: 1000,
      store: { kind: "none" },
      handover: "standby",
      engine: { kind: "kubernetes", namespace: NAMESPACE },
      kubernetes: { status: { port: 8080, path: "/status" } },
    };
    await expect(backend.prepare(desired, { name: `reseat-${PE}-rwop-g1`, generation: 1, specHash: "h" })).rejects.toThrow(
      /handover "standby" of PE .*ReadWriteOncePod/,
    );
    expect(await podsOfPe(NAMESPACE, `${PE}-rwop`)).toEqual([]);
    // A staged hand-over has one pod at a time: the claim is fine for it.
    await api().core.deleteNamespacedPersistentVolumeClaim({ name: claim, namespace: NAMESPACE });
  });

  it("handover standby without kubernetes.status fails preview, naming the field", async () => {
    const invalid = makeProject("k8s-standby-invalid", [
      { ...spec(), peId: `${PE}-bad`, kubernetes: { namespace: NAMESPACE, storageClassName: cluster.storageClass } },
    ]);
    const refused = await reseatCli(invalid, "preview");
    expect(refused.code).toBe(1);
    expect(refused.doc.error).toContain("- kubernetes.status: ");
  });

  it("up creates the first pod (a standby with no writer before it takes the volume at once); the workload writes", async () => {
    first = peOutputs(await mustSucceed(project, "up"), PE);
    expect(first.generation).toBe(1);
    expect(first.host).toBe(await nodeOfClaim(NAMESPACE, CLAIM));
    const url = await podUrl(NAMESPACE, first.executableName);
    const status = (await (await fetch(`${url}/status`)).json()) as { generation: number; phase: string };
    expect(status).toMatchObject({ generation: 1, phase: "serving" });
    const writers = startWriters(url, "before");
    await pollFor("some acknowledged writes", 30, async () => (writers.acks.length >= 50 ? true : undefined));
    await writers.stop();
    acks = writers.acks;
    expectAllAcked(acks, await sessionsAt(url));
  });

  it("an image change replaces by standby: the new pod on the old one's node, parked and not Ready while the old one serves; writes survive", async () => {
    const oldPod = first.executableName;
    const newPod = `reseat-${PE}-g2`;
    const oldUid = (await readPod(NAMESPACE, oldPod))?.metadata?.uid;
    setSpecs(project, [spec({ image: "reseat-session-workload:v2" })]);
    const observer = await observeHandover(NAMESPACE, PE, newPod, 2);
    // Writers through the old pod's address until it goes (they stop at the first refused or failed request).
    const writers = startWriters(await podUrl(NAMESPACE, oldPod), "handover");
    const second = peOutputs(await mustSucceed(project, "up"), PE);
    await writers.stop();
    const { events, parkedSeen, eventsBeforeParked, servingAt } = await observer.stop();

    expect(second.generation).toBe(2);
    expect(second.executableName).toBe(newPod);
    expect(second.host).toBe(first.host);
    const standby = await readPod(NAMESPACE, newPod);
    expect(standby?.spec?.nodeName).toBe(first.host);
    // Behind reseat's readiness gate, opened once reseat saw it serve (beside its readinessProbe).
    expect(standby?.spec?.readinessGates).toEqual([{ conditionType: SERVING_CONDITION }]);
    expect(standby?.status?.conditions?.find((c) => c.type === SERVING_CONDITION)?.status).toBe("True");
    expect(await readPod(NAMESPACE, oldPod)).toBeUndefined();
    // The API server's order: the new pod ran while the old one was not yet being deleted, and was Ready only after.
    const newRunning = firstIndex(events, (e) => e.name === newPod && e.running);
    const oldDeleting = firstIndex(events, (e) => e.name === oldPod && e.deleting);
    const newReady = firstIndex(events, (e) => e.name === newPod && e.ready);
    expect(newRunning, JSON.stringify(events)).toBeGreaterThanOrEqual(0);
    expect(oldDeleting, JSON.stringify(events)).toBeGreaterThan(newRunning);
    expect(newReady, JSON.stringify(events)).toBeGreaterThan(oldDeleting);
    // Informational (the benches measure): from the old pod's deletion to the new one's Ready, as this watch saw it.
    const [deletingAt, readyAt] = [events[oldDeleting]!.at, events[newReady]!.at];
    console.log(
      `standby hand-over on Kubernetes (watch-observed): old pod deleting -> new pod Ready ${readyAt - deletingAt} ms` +
        (servingAt
          ? ` (new pod serving after ${servingAt - deletingAt} ms; Ready ${readyAt - servingAt} ms later: its readinessProbe's next success, and reseat's mark after its stop is confirmed)`
          : ""),
    );
    // Its own endpoint said parked for generation 2 (asked directly, not through reseat), and by then the API
    // server had shown no deletion of the old pod.
    expect(parkedSeen).toBe(true);
    expect(eventsBeforeParked.some((e) => e.name === oldPod && e.deleting)).toBe(false);
    expect(oldUid).toBeTruthy();
    acks.push(...writers.acks);

    const url = await podUrl(NAMESPACE, newPod);
    expectAllAcked(acks, await sessionsAt(url));
    expect((await (await fetch(`${url}/status`)).json()) as { generation: number; phase: string }).toMatchObject({ generation: 2, phase: "serving" });
    expect((await claimOf(NAMESPACE, CLAIM))?.metadata?.annotations?.[LABELS.generation]).toBe("2");
    first = second;
  });

  it("a release that exits at start: up fails naming the executable; the old pod is never touched (same uid, Ready, writes acknowledged)", async () => {
    const oldPod = first.executableName;
    const before = await readPod(NAMESPACE, oldPod);
    const url = await podUrl(NAMESPACE, oldPod);
    const writers = startWriters(url, "bad-release");
    setSpecs(project, [
      spec({ image: "reseat-session-workload:v2", command: ["node", "-e", "console.error('bad release: exits at start'); process.exit(3)"] }),
    ]);
    const failed = await reseatCli(project, "up");
    await writers.stop();
    expect(failed.code).not.toBe(0);
    expect(failed.doc.error).toContain(`reseat-${PE}-g3`);

    const after = await readPod(NAMESPACE, oldPod);
    expect(after?.metadata?.uid).toBe(before?.metadata?.uid);
    expect(after?.metadata?.deletionTimestamp).toBeUndefined();
    expect(after?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).toBe(true);
    expect(after?.status?.containerStatuses?.[0]?.restartCount ?? 0).toBe(0);
    // The failed standby is gone; the PE's record wants the pod that still serves (a vanished one is a failure again).
    expect((await podsOfPe(NAMESPACE, PE)).map((p) => p.metadata?.name)).toEqual([oldPod]);
    const record = await api().core.readNamespacedConfigMap({ name: recordName(CLAIM), namespace: NAMESPACE });
    expect(record.metadata?.annotations?.[ANNOTATIONS.pod]).toBe(oldPod);
    // Writes were acknowledged throughout (never refused: the writers stop at the first non-200) and are all there.
    expect(writers.acks.length).toBeGreaterThan(0);
    acks.push(...writers.acks);
    expectAllAcked(acks, await sessionsAt(url));
    expect((await (await fetch(`${url}/status`)).json()) as { generation: number; phase: string }).toMatchObject({ generation: 2, phase: "serving" });
  });

  it("a release whose image no node has: up fails naming the executable and the pull, without waiting out the timeout; the old pod is never touched", async () => {
    const oldPod = first.executableName;
    const before = await readPod(NAMESPACE, oldPod);
    // A registry on a closed local port: the kubelet's pull fails at once, and nothing leaves the machine.
    setSpecs(project, [spec({ image: "127.0.0.1:9/reseat-absent:none" })]);
    const failed = await reseatCli(project, "up");
    expect(failed.code).not.toBe(0);
    expect(failed.doc.error).toMatch(new RegExp(`reseat-${PE}-g\\d+`));
    expect(failed.doc.error).toMatch(/cannot start[\s\S]*(ImagePullBackOff|ErrImagePull)/);
    expect(failed.doc.error).not.toMatch(/not parked within/);
    const after = await readPod(NAMESPACE, oldPod);
    expect(after?.metadata?.uid).toBe(before?.metadata?.uid);
    expect(after?.metadata?.deletionTimestamp).toBeUndefined();
    expect(after?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).toBe(true);
    expect((await podsOfPe(NAMESPACE, PE)).map((p) => p.metadata?.name)).toEqual([oldPod]);
    expectAllAcked(acks, await sessionsAt(await podUrl(NAMESPACE, oldPod)));
  });

  it("without a readinessProbe, reseat's readiness gate alone keeps the parked pod out of Ready; Ready follows its take-over", async () => {
    const peId = `${PE}-np`;
    const noProbe = (image: string) => {
      const { readiness: _readiness, ...rest } = k8sSessionSpec(peId, NAMESPACE, cluster.storageClass, { handover: "standby", image });
      return rest;
    };
    const bare = makeProject("k8s-standby-noprobe", [noProbe("reseat-session-workload:v1")]);
    try {
      const g1 = peOutputs(await mustSucceed(bare, "up"), peId);
      expect((await readPod(NAMESPACE, g1.executableName))?.spec?.containers[0]?.readinessProbe).toBeUndefined();
      const newPod = `reseat-${peId}-g2`;
      setSpecs(bare, [noProbe("reseat-session-workload:v2")]);
      const observer = await observeHandover(NAMESPACE, peId, newPod, 2);
      const g2 = peOutputs(await mustSucceed(bare, "up"), peId);
      const { events, parkedSeen, servingAt } = await observer.stop();
      expect(g2.executableName).toBe(newPod);
      expect(g2.host).toBe(g1.host);
      expect(parkedSeen).toBe(true);
      const newRunning = firstIndex(events, (e) => e.name === newPod && e.running);
      const oldDeleting = firstIndex(events, (e) => e.name === g1.executableName && e.deleting);
      const newReady = firstIndex(events, (e) => e.name === newPod && e.ready);
      expect(newRunning, JSON.stringify(events)).toBeGreaterThanOrEqual(0);
      expect(oldDeleting, JSON.stringify(events)).toBeGreaterThan(newRunning);
      expect(newReady, JSON.stringify(events)).toBeGreaterThan(oldDeleting);
      const [deletingAt, readyAt] = [events[oldDeleting]!.at, events[newReady]!.at];
      const oldGone = events.find((e) => e.name === g1.executableName && !e.running && e.deleting)?.at;
      const markedAt = events.find((e) => e.name === newPod && e.marked)?.at;
      console.log(
        `standby hand-over on Kubernetes without a readinessProbe (watch-observed, ms after the old pod's deletion): ` +
          `new pod serving ${servingAt ? servingAt - deletingAt : "?"}, old pod reported stopped ${oldGone ? oldGone - deletingAt : "?"}, ` +
          `gate opened ${markedAt ? markedAt - deletingAt : "?"}, Ready ${readyAt - deletingAt}`,
      );
    } finally {
      await reseatCli(bare, "destroy").catch(() => undefined);
    }
  });
});
