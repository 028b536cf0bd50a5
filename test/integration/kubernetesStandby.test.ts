// Issue 22 on Kubernetes: a PE with handover "standby" replaced by a real `pulumi up` (through the reseat CLI, the
// real @pulumi/kubernetes plugin, the local two-node cluster, the session service on the state library). The
// successor pod starts on the node that holds the claim while the old pod serves, parks (its status endpoint says
// "parked", reseat's readiness gate keeps it out of Ready), and takes over once the old pod stopped; a release that
// cannot start costs nothing: the old pod is never touched. An independent observer watches the API server.
// The parked phase is observed deterministically: the `up` is held at the routine's fault point after-parked
// (the standby parked, the old pod not yet touched), then killed. The recovering `up` is a new Pulumi create (a
// new declaredBy): it does not adopt the killed run's standby but retires it, the old pod still serving, and hands
// over to a standby of its own (the next generation).
import * as k8s from "@kubernetes/client-node";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ack, CLI, CliResult, PeOutputs, Project, lastAcked, makeProject, mustSucceed, peOutputs, reseatCli, setSpecs } from "../support/harness";
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

interface WorkloadStatusAnswer {
  phase?: string;
  generation?: number;
}

async function statusOf(url: string): Promise<WorkloadStatusAnswer> {
  return (await (await fetch(`${url}/status`, { signal: AbortSignal.timeout(3000) })).json()) as WorkloadStatusAnswer;
}

/**
 * The API server's own order of the PE's pod events (a watch delivers them in resourceVersion order); the
 * standby pod's own status answer as soon as the watch showed it Ready; and, once `followTakeOver` is called,
 * when its status endpoint first said it serves (for the informational timeline only).
 */
async function observeHandover(
  namespace: string,
  peId: string,
  standbyPod: string,
): Promise<{
  followTakeOver: () => void;
  stop: () => Promise<{ events: PodEvent[]; statusWhenReady?: WorkloadStatusAnswer; servingAt?: number }>;
}> {
  const events: PodEvent[] = [];
  let standbyIP: string | undefined;
  let statusWhenReady: Promise<WorkloadStatusAnswer | undefined> | undefined;
  let servingAt: number | undefined;
  let stopped = false;
  let following: Promise<void> | undefined;
  const askUntilServing = async () => {
    while (!stopped && servingAt === undefined) {
      try {
        const status = standbyIP ? await statusOf(`http://${standbyIP}:8080`) : undefined;
        if (status && status.phase !== "parked") servingAt = Date.now();
      } catch {
        // not answering yet
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  // The client ends a watch after 30 s without events (the parked standby waits longer than that): each ending
  // resumes it from the last resourceVersion seen, so the API server's order has no gap.
  const watch = new k8s.Watch(api().config);
  let resourceVersion: string | undefined;
  let current: AbortController | undefined;
  let broken: unknown;
  const onEvent = (phase: string, pod: k8s.V1Pod) => {
    if (phase === "ERROR" || !pod.metadata?.name) {
      broken ??= new Error(`the pod watch failed: ${JSON.stringify(pod)}`);
      return;
    }
    resourceVersion = pod.metadata.resourceVersion ?? resourceVersion;
    const name = pod.metadata.name;
    const event: PodEvent = {
      name,
      running: pod.status?.phase === "Running",
      ready: pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
      deleting: !!pod.metadata.deletionTimestamp || phase === "DELETED",
      marked: pod.status?.conditions?.some((c) => c.type === SERVING_CONDITION && c.status === "True") ?? false,
      podIP: pod.status?.podIP,
      at: Date.now(),
    };
    events.push(event);
    if (name !== standbyPod) return;
    standbyIP ??= event.podIP;
    if (event.ready && event.podIP && !statusWhenReady) statusWhenReady = statusOf(`http://${event.podIP}:8080`).catch(() => undefined);
  };
  const startWatch = async (): Promise<void> => {
    current = await watch.watch(
      `/api/v1/namespaces/${namespace}/pods`,
      { labelSelector: `${LABELS.peId}=${peId}`, ...(resourceVersion ? { resourceVersion } : {}) },
      onEvent,
      () => {
        if (!stopped && !broken) startWatch().catch((error: unknown) => (broken ??= error));
      },
    );
  };
  await startWatch();
  return {
    followTakeOver: () => {
      following ??= askUntilServing();
    },
    stop: async () => {
      stopped = true;
      current?.abort();
      await following;
      if (broken) throw broken as Error;
      return { events, statusWhenReady: await statusWhenReady, servingAt };
    },
  };
}

/**
 * `up` held at the routine's fault point after-parked: returns once its standby parked beside the serving pod
 * (the old pod not yet touched), with a way to kill the whole run (the reseat CLI, the Pulumi CLI, its plugins).
 */
async function upHeldParked(project: Project): Promise<{ kill: () => void }> {
  const marker = path.join(project.dir, `fault-after-parked-${process.pid}-${Date.now()}`);
  const child = spawn(process.execPath, [CLI, "up", "--cwd", project.dir, "--stack", project.stack, "--json"], {
    detached: true,
    stdio: "ignore",
    env: { ...process.env, RESEAT_FAULT_POINT: "after-parked", RESEAT_FAULT_MARKER: marker },
  });
  const kill = () => {
    const providerPid = fs.existsSync(marker) ? Number(fs.readFileSync(marker, "utf8").split(" ")[1]) : undefined;
    for (const pid of [-child.pid!, providerPid]) {
      try {
        if (pid) process.kill(pid, "SIGKILL");
      } catch {
        // gone with its process group
      }
    }
  };
  let reached: "parked" | "exited";
  try {
    reached = await pollFor("the standby parked (fault point after-parked)", 180, async () =>
      fs.existsSync(marker) ? "parked" : child.exitCode !== null ? "exited" : undefined,
    );
  } catch (error) {
    kill();
    throw error;
  }
  if (reached === "exited") throw new Error(`up exited (code ${child.exitCode}) before its standby parked (fault point after-parked)`);
  return { kill };
}

/** The documented recovery after a killed run: release its stack lock, then up with refresh. */
async function recoverUp(project: Project): Promise<CliResult> {
  await mustSucceed(project, "cancel");
  return mustSucceed(project, "up", "--clear-pending-creates", "--refresh");
}

/**
 * While the `up` is held after-parked: the standby answers parked for its generation on the claim's node and is
 * not Ready (reseat's readiness gate is not open); the old pod is Ready and not being deleted.
 */
async function expectParkedBesideServing(namespace: string, oldPod: string, standbyPod: string, generation: number, node: string): Promise<k8s.V1Pod> {
  expect(await statusOf(await podUrl(namespace, standbyPod))).toMatchObject({ phase: "parked", generation });
  const standby = (await readPod(namespace, standbyPod))!;
  expect(standby.spec?.nodeName).toBe(node);
  expect(standby.status?.phase).toBe("Running");
  expect(standby.spec?.readinessGates).toEqual([{ conditionType: SERVING_CONDITION }]);
  expect(standby.status?.conditions?.find((c) => c.type === SERVING_CONDITION)?.status).not.toBe("True");
  expect(standby.status?.conditions?.find((c) => c.type === "Ready")?.status).not.toBe("True");
  const old = await readPod(namespace, oldPod);
  expect(old?.metadata?.deletionTimestamp).toBeUndefined();
  expect(old?.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
  return standby;
}

/**
 * After the recovering up: the killed run's parked standby was never Ready and went before its own standby
 * existed; that standby ran before the old pod's deletion, and was Ready only after it, never without reseat's
 * gate; its own status said serving its generation when it was seen Ready.
 */
function expectReadyAfterTakeOver(
  observed: { events: PodEvent[]; statusWhenReady?: WorkloadStatusAnswer },
  oldPod: string,
  parkedPod: string,
  standbyPod: string,
  generation: number,
): { oldDeleting: number; newReady: number } {
  const { events } = observed;
  const parkedDeleting = firstIndex(events, (e) => e.name === parkedPod && e.deleting);
  expect(events.some((e) => e.name === parkedPod && e.ready)).toBe(false);
  expect(parkedDeleting, JSON.stringify(events)).toBeGreaterThanOrEqual(0);
  expect(
    firstIndex(events, (e) => e.name === standbyPod),
    JSON.stringify(events),
  ).toBeGreaterThan(parkedDeleting);
  const newRunning = firstIndex(events, (e) => e.name === standbyPod && e.running);
  const oldDeleting = firstIndex(events, (e) => e.name === oldPod && e.deleting);
  const newReady = firstIndex(events, (e) => e.name === standbyPod && e.ready);
  expect(newRunning, JSON.stringify(events)).toBeGreaterThanOrEqual(0);
  expect(oldDeleting, JSON.stringify(events)).toBeGreaterThan(newRunning);
  expect(newReady, JSON.stringify(events)).toBeGreaterThan(oldDeleting);
  expect(events.filter((e) => e.name === standbyPod && e.ready).every((e) => e.marked)).toBe(true);
  expect(observed.statusWhenReady).toMatchObject({ phase: "serving", generation });
  return { oldDeleting, newReady };
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
    const parkedPod = `reseat-${PE}-g2`;
    const newPod = `reseat-${PE}-g3`;
    const oldUid = (await readPod(NAMESPACE, oldPod))?.metadata?.uid;
    setSpecs(project, [spec({ image: "reseat-session-workload:v2" })]);
    const observer = await observeHandover(NAMESPACE, PE, newPod);
    // Writers through the old pod's address until it goes (they stop at the first refused or failed request).
    const writers = startWriters(await podUrl(NAMESPACE, oldPod), "handover");
    let second: PeOutputs;
    try {
      // Held right after the standby parked: it answers parked for generation 2 (asked directly, not through
      // reseat), is not Ready, and the old pod still serves, Ready and untouched.
      const held = await upHeldParked(project);
      try {
        await expectParkedBesideServing(NAMESPACE, oldPod, parkedPod, 2, first.host!);
        expect((await readPod(NAMESPACE, oldPod))?.metadata?.uid).toBe(oldUid);
      } finally {
        held.kill();
      }
      // The recovering up retires the killed run's standby (not its own resource's) and hands over by a new one.
      observer.followTakeOver();
      second = peOutputs(await recoverUp(project), PE);
    } finally {
      await writers.stop();
    }
    const observed = await observer.stop();

    expect(second.generation).toBe(3);
    expect(second.executableName).toBe(newPod);
    expect(second.host).toBe(first.host);
    const standby = await readPod(NAMESPACE, newPod);
    expect(standby?.spec?.nodeName).toBe(first.host);
    // Behind reseat's readiness gate, opened once reseat saw it serve (beside its readinessProbe).
    expect(standby?.spec?.readinessGates).toEqual([{ conditionType: SERVING_CONDITION }]);
    expect(standby?.status?.conditions?.find((c) => c.type === SERVING_CONDITION)?.status).toBe("True");
    expect(await readPod(NAMESPACE, oldPod)).toBeUndefined();
    expect(await readPod(NAMESPACE, parkedPod)).toBeUndefined();
    // The API server's order: the new pod ran while the old one was not yet being deleted, and was Ready only after.
    const { oldDeleting, newReady } = expectReadyAfterTakeOver(observed, oldPod, parkedPod, newPod, 3);
    // Informational (the benches measure): from the old pod's deletion to the new one's Ready, as this watch saw it.
    const [deletingAt, readyAt] = [observed.events[oldDeleting]!.at, observed.events[newReady]!.at];
    const { servingAt } = observed;
    console.log(
      `standby hand-over on Kubernetes, by the recovering up (watch-observed): old pod deleting -> new pod Ready ${readyAt - deletingAt} ms` +
        (servingAt && servingAt >= deletingAt ? ` (new pod serving after ${servingAt - deletingAt} ms; Ready ${readyAt - servingAt} ms later)` : ""),
    );
    acks.push(...writers.acks);

    const url = await podUrl(NAMESPACE, newPod);
    expectAllAcked(acks, await sessionsAt(url));
    expect(await statusOf(url)).toMatchObject({ generation: 3, phase: "serving" });
    expect((await claimOf(NAMESPACE, CLAIM))?.metadata?.annotations?.[LABELS.generation]).toBe("3");
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
    expect(failed.doc.error).toContain(`reseat-${PE}-g${first.generation + 1}`);

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
    expect((await (await fetch(`${url}/status`)).json()) as { generation: number; phase: string }).toMatchObject({
      generation: first.generation,
      phase: "serving",
    });
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
      const parkedPod = `reseat-${peId}-g2`;
      const newPod = `reseat-${peId}-g3`;
      setSpecs(bare, [noProbe("reseat-session-workload:v2")]);
      const observer = await observeHandover(NAMESPACE, peId, newPod);
      const writers = startWriters(await podUrl(NAMESPACE, g1.executableName), "noprobe");
      let g3: PeOutputs;
      try {
        const held = await upHeldParked(bare);
        try {
          // Parked, with no readinessProbe: only reseat's gate (not open) keeps it out of Ready.
          const standby = await expectParkedBesideServing(NAMESPACE, g1.executableName, parkedPod, 2, g1.host!);
          expect(standby.spec?.containers[0]?.readinessProbe).toBeUndefined();
        } finally {
          held.kill();
        }
        observer.followTakeOver();
        g3 = peOutputs(await recoverUp(bare), peId);
      } finally {
        await writers.stop();
      }
      const observed = await observer.stop();
      expect(g3.generation).toBe(3);
      expect(g3.executableName).toBe(newPod);
      expect(g3.host).toBe(g1.host);
      expect((await readPod(NAMESPACE, newPod))?.spec?.nodeName).toBe(g1.host);
      expect((await readPod(NAMESPACE, newPod))?.spec?.containers[0]?.readinessProbe).toBeUndefined();
      expect(await readPod(NAMESPACE, g1.executableName)).toBeUndefined();
      expect(await readPod(NAMESPACE, parkedPod)).toBeUndefined();
      const { oldDeleting, newReady } = expectReadyAfterTakeOver(observed, g1.executableName, parkedPod, newPod, 3);
      const url = await podUrl(NAMESPACE, newPod);
      expect(await statusOf(url)).toMatchObject({ generation: 3, phase: "serving" });
      expectAllAcked(writers.acks, await sessionsAt(url));
      // Informational only.
      const { events, servingAt } = observed;
      const [deletingAt, readyAt] = [events[oldDeleting]!.at, events[newReady]!.at];
      const oldGone = events.find((e) => e.name === g1.executableName && !e.running && e.deleting)?.at;
      const markedAt = events.find((e) => e.name === newPod && e.marked)?.at;
      console.log(
        `standby hand-over on Kubernetes without a readinessProbe, by the recovering up (watch-observed, ms after the old pod's deletion): ` +
          `new pod serving ${servingAt ? servingAt - deletingAt : "?"}, old pod reported stopped ${oldGone ? oldGone - deletingAt : "?"}, ` +
          `gate opened ${markedAt ? markedAt - deletingAt : "?"}, Ready ${readyAt - deletingAt}`,
      );
    } finally {
      await reseatCli(bare, "destroy").catch(() => undefined);
    }
  });
});
