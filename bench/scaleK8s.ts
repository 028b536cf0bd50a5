// k8s_scale — the scale bench's Kubernetes section (`npm run bench -- scale` runs it after the Docker
// section; `npm run bench -- k8s_scale` runs it alone). On the local two-node cluster, with the session
// workload of the Kubernetes benches (bench/k8sSession.ts: reseat-session-workload:v1/:v2, the state
// library on a ReadWriteOnce claim, HTTP readiness on /healthz, 5 s grace), the same job three ways in the
// same run: an image change rolled over N members, at most k at a time.
//
//   fleet:       a reseat ProcessingElementFleet with template.kubernetes (one Pulumi resource, a claim and a
//                pod per member); `reseat up` of the image change minus a no-op `up` of the same stack right
//                after it (as the Docker section);
//   statefulset: a StatefulSet of N replicas, podManagementPolicy Parallel, updateStrategy RollingUpdate with
//                maxUnavailable = k (the cluster runs with the MaxUnavailableStatefulSet gate on); the template
//                patch → every pod Ready on the new image, as one watch on the namespace sees it;
//   floor:       N bare pods on N claims of the same StorageClass, replaced through the API alone, k workers:
//                delete the pod, its deletion seen, create its successor on the same claim, Ready seen. The
//                first deletion → the last Ready. Measured, not extrapolated.
//
// For every system and rollout the watch also records the most members without a Ready pod at once
// (`maxMembersNotReadyAtOnce`), and from the pods' own API timestamps (old pod's deletion request → new
// pod's Ready lastTransitionTime, 1 s resolution) bounds on the most members being replaced at once
// (`replacingAtOnceFromPodTimestamps.atLeast/atMost`): what "k at a time" really was.
//
// Cases (bench/results/k8s_scale.json, {"metric","cases"}; docs/scale.md, "Kubernetes"):
//   rollout_<N>_c<k>             fleet (ms) vs the StatefulSet (baseline); fields floorMs, ratio_floor, samples.
//   statefulset_<N>_c<k>         the StatefulSet vs the floor (baseline).
//   checkpoint_bytes_per_member_<N>   the fleet's checkpoint file / N vs the goal (1024 bytes).
//   preview_<N>, noop_up_<N>     the fleet's preview / no-op up vs the same at the smallest N of the run.
//   per_member_cost_<N>_vs_<M>_c<k>[_statefulset|_floor]   rollout time per member at N vs at the next smaller M.
//
// Env: RESEAT_BENCH_SCALE_K8S_N (default 10,100; the largest N this two-node cluster holds is 200, see
// docs/scale.md), RESEAT_BENCH_SCALE_K8S_C (default 1,10), RESEAT_BENCH_SCALE_K8S_RUNS (rollouts per N, k
// and system, default 3, or per N as "10:3,100:1"; also the fleet's previews and no-op ups), RESEAT_BENCH_SCALE_K8S_SYSTEMS (default
// floor,statefulset,fleet), RESEAT_BENCH_SCALE_K8S_BUDGET_MIN (optional: rollouts that would overrun it are
// recorded as not run, with why), RESEAT_BENCH_SCALE_K8S_ADD=1 (this run's N added to the last run's result
// file, e.g. the largest N on its own; per_member_cost then compares across both). The result file is
// rewritten after every step.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { LABELS } from "../src/backend/backend";
import { GROUPS_PROGRAM, benchProject, runCli, writeStackConfig } from "./groupBench";
import { Cluster, createBareClaim, createBarePod, ignore409, k8sSessionPeSpec, localCluster, run, sessionStatefulSet } from "./k8sSession";
import { CaseResult, RESULTS_DIR, median, round, writeResult } from "./results";
import { checkpointSize, storedBytes } from "./checkpoint";
import { numbers } from "./envNumbers";
import { ScaleSeries, renderScalePlot } from "./scalePlot";
import { PROJECT_ROOT } from "../src/automation/stack";

const METRIC = "k8s_scale";
const IMAGES = ["reseat-session-workload:v1", "reseat-session-workload:v2"] as const;
const NS = "reseat-bench-k8s-scale";
const FLEET = "kscale";
const STS = "kscale-sts";
const FLOOR = "kscale-floor";
const CHECKPOINT_GOAL_BYTES = 1024;
const READY_TIMEOUT_MS = 1_800_000;
const CLUSTER_SH = path.join(PROJECT_ROOT, "scripts", "cluster.sh");
const SYSTEMS = ["floor", "statefulset", "fleet"] as const;
type System = (typeof SYSTEMS)[number];
/** Pods the bench leaves free on the cluster for what else runs on it (other engineers' tests, system pods). */
const HEADROOM_PODS = 20;

type Log = (text: string) => void;

/** RESEAT_BENCH_SCALE_K8S_RUNS: one count for every N ("3"), or per N ("10:3,100:1"; an N not named gets 1). */
function runsPerN(raw: string): (n: number) => number {
  const bad = () => new Error(`RESEAT_BENCH_SCALE_K8S_RUNS: expected a whole number from 1 to 50 ("3") or N:runs pairs ("10:3,100:1"), got "${raw}"`);
  const count = (v: string) => {
    const runs = Number(v.trim());
    if (!Number.isInteger(runs) || runs < 1 || runs > 50) throw bad();
    return runs;
  };
  if (!raw.includes(":")) {
    const runs = count(raw);
    return () => runs;
  }
  const byN = new Map<number, number>();
  for (const pair of raw.split(",")) {
    const [n, runs] = pair.split(":");
    if (runs === undefined || !Number.isInteger(Number(n))) throw bad();
    byN.set(Number(n), count(runs));
  }
  return (n) => byN.get(n) ?? 1;
}

interface PodSeen {
  uid: string;
  member: string;
  image: string;
  ready: boolean;
  readyAt?: number;
  deleting: boolean;
}

/**
 * One informer on a namespace's pods (list, then watch from its resourceVersion; listed again when the
 * API server ends the watch): per member, its pods; how many members have no Ready pod, and the most at once.
 */
class MemberWatch {
  private readonly pods = new Map<string, PodSeen>();
  private abort?: AbortController;
  private stopped = false;
  private counting = false;
  members: string[] = [];
  maxNotReady = 0;
  /** When (performance.now()) the first member pod was seen going since the last reset(). */
  firstGoingAt?: number;

  constructor(
    private readonly cluster: Cluster,
    private readonly namespace: string,
    private readonly memberOf: (pod: k8s.V1Pod) => string | undefined,
  ) {}

  async start(): Promise<void> {
    const list = await this.cluster.core.listNamespacedPod({ namespace: this.namespace });
    const listed = new Set<string>();
    for (const pod of list.items) {
      listed.add(pod.metadata!.uid!);
      this.seen("ADDED", pod);
    }
    for (const [uid] of this.pods) if (!listed.has(uid)) this.pods.delete(uid);
    this.abort = await new k8s.Watch(this.cluster.config).watch(
      `/api/v1/namespaces/${this.namespace}/pods`,
      { resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true },
      (phase: string, pod: k8s.V1Pod) => this.seen(phase, pod),
      () => {
        if (!this.stopped) void this.start().catch(() => undefined);
      },
    );
  }

  private seen(phase: string, pod: k8s.V1Pod): void {
    const uid = pod.metadata?.uid;
    const member = uid ? this.memberOf(pod) : undefined;
    if (!uid || member === undefined) return;
    const now = performance.now();
    if (this.counting && this.firstGoingAt === undefined && (phase === "DELETED" || pod.metadata?.deletionTimestamp)) this.firstGoingAt = now;
    if (phase === "DELETED") this.pods.delete(uid);
    else {
      const known = this.pods.get(uid);
      const deleting = !!pod.metadata?.deletionTimestamp;
      const ready = !deleting && (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
      this.pods.set(uid, {
        uid,
        member,
        image: pod.spec?.containers?.[0]?.image ?? "",
        ready,
        readyAt: ready ? (known?.readyAt ?? now) : undefined,
        deleting,
      });
    }
    if (this.counting) this.maxNotReady = Math.max(this.maxNotReady, this.notReady());
  }

  private notReady(): number {
    const ready = new Set<string>();
    for (const pod of this.pods.values()) if (pod.ready) ready.add(pod.member);
    return this.members.filter((m) => !ready.has(m)).length;
  }

  /** Counts from now on, over these members. */
  reset(members: string[]): void {
    this.members = members;
    this.firstGoingAt = undefined;
    this.maxNotReady = this.notReady();
    this.counting = true;
  }

  /** When the last member became Ready on `image` (performance.now()), or undefined while one is not. */
  allReadyOn(image: string): number | undefined {
    let last = 0;
    for (const member of this.members) {
      const pod = [...this.pods.values()].find((p) => p.member === member && p.ready && p.image === image);
      if (!pod) return undefined;
      last = Math.max(last, pod.readyAt!);
    }
    return last;
  }

  /** The member's current (not deleting) pod, if the watch has seen one. */
  current(member: string): PodSeen | undefined {
    return [...this.pods.values()].find((p) => p.member === member && !p.deleting);
  }

  hasPod(uid: string): boolean {
    return this.pods.has(uid);
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }
}

async function until<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`k8s_scale: no ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * From the pods' own API timestamps: per member, its old pod's deletion request (deletionTimestamp minus
 * the grace period) → its successor's Ready lastTransitionTime, both server-side with 1 s resolution: a
 * stamp t means [t, t + 1 s). Bounds on the most members being replaced at once: `atMost` counts every
 * interval that may overlap ([start, ready + 1 s)), `atLeast` only those that surely do ([start + 1 s, ready)).
 */
async function replacingAtOnceFromTimestamps(
  cluster: Cluster,
  namespace: string,
  memberOf: (pod: k8s.V1Pod) => string | undefined,
  oldDeletion: Map<string, number>,
) {
  // After the rollout every pod left is a successor.
  const pods = (await cluster.core.listNamespacedPod({ namespace })).items;
  const intervals: [number, number][] = [];
  for (const pod of pods) {
    const member = memberOf(pod);
    const start = member === undefined ? undefined : oldDeletion.get(member);
    const ready = (pod.status?.conditions ?? []).find((c) => c.type === "Ready" && c.status === "True")?.lastTransitionTime;
    if (start === undefined || !ready || pod.metadata?.deletionTimestamp) continue;
    intervals.push([start, new Date(ready).getTime()]);
  }
  const most = (spans: [number, number][]) => {
    const points = spans
      .filter(([a, b]) => b > a)
      .flatMap(([a, b]): [number, number][] => [
        [a, 1],
        [b, -1],
      ]);
    points.sort((x, y) => x[0] - y[0] || x[1] - y[1]); // an end before a start at the same instant: half-open
    let open = 0;
    let max = 0;
    for (const [, d] of points) max = Math.max(max, (open += d));
    return max;
  };
  return {
    atLeast: most(intervals.map(([a, b]) => [a + 1000, b])),
    atMost: most(intervals.map(([a, b]) => [a, b + 1000])),
    members: intervals.length,
  };
}

/** Old pods' deletionTimestamp per member, as the watch's API objects carry it (recorded during a rollout). */
class DeletionStamps {
  readonly byMember = new Map<string, number>();
  private abort?: AbortController;
  constructor(private readonly memberOf: (pod: k8s.V1Pod) => string | undefined) {}
  async start(cluster: Cluster, namespace: string, resourceVersion?: string) {
    this.abort = await new k8s.Watch(cluster.config).watch(
      `/api/v1/namespaces/${namespace}/pods`,
      resourceVersion ? { resourceVersion } : {},
      (_phase: string, pod: k8s.V1Pod) => {
        const member = this.memberOf(pod);
        const stamp = pod.metadata?.deletionTimestamp;
        if (member !== undefined && stamp && !this.byMember.has(member)) {
          // deletionTimestamp is the deletion request + the grace period: the request is that minus the grace.
          this.byMember.set(member, new Date(stamp).getTime() - (pod.metadata?.deletionGracePeriodSeconds ?? 0) * 1000);
        }
      },
      () => undefined,
    );
  }
  stop() {
    this.abort?.abort();
  }
}

interface Rollout {
  ms: number;
  detail: Record<string, unknown>;
}

interface SystemRun {
  setUp(): Promise<void>;
  roll(image: string, k: number): Promise<Rollout>;
  tearDown(): Promise<void>;
}

/** A namespace and a StorageClass of the node-local provisioner (reclaimPolicy Delete) for one system. */
async function systemNamespace(cluster: Cluster, namespace: string): Promise<string> {
  await removeNamespace(cluster, namespace);
  const storageClass = `${namespace}-local`;
  await cluster.core.createNamespace({ body: { metadata: { name: namespace } } });
  await cluster.storage
    .createStorageClass({
      body: { metadata: { name: storageClass }, provisioner: "reseat.local/node-local", volumeBindingMode: "WaitForFirstConsumer", reclaimPolicy: "Delete" },
    })
    .catch(ignore409);
  return storageClass;
}

/** The namespace (pods, StatefulSet, claims) gone, its volumes released and deleted, then its StorageClass. */
async function removeNamespace(cluster: Cluster, namespace: string, log?: Log): Promise<void> {
  const storageClass = `${namespace}-local`;
  const gone = (error: { code?: number }) => {
    if (error.code !== 404) throw error;
  };
  await cluster.core.deleteNamespace({ name: namespace }).catch(gone);
  await until(
    () =>
      cluster.core.readNamespace({ name: namespace }).then(
        () => undefined,
        (error: { code?: number }) => (error.code === 404 ? true : undefined),
      ),
    600_000,
    `deletion of namespace ${namespace}`,
  );
  const ours = async () => (await cluster.core.listPersistentVolume()).items.filter((pv) => pv.spec?.storageClassName === storageClass);
  const left = await until(async () => ((await ours()).length === 0 ? 0 : undefined), 300_000, "volume deletion").catch(async () => (await ours()).length);
  if (left) log?.(`${left} volumes of ${storageClass} still there`);
  await cluster.storage.deleteStorageClass({ name: storageClass }).catch(gone);
}

const stsMember = (pod: k8s.V1Pod) => (pod.metadata?.labels?.app === STS ? pod.metadata?.name : undefined);
const floorMember = (pod: k8s.V1Pod) => {
  const app = pod.metadata?.labels?.app;
  return app?.startsWith(`${FLOOR}-`) ? app.replace(/-g\d+$/, "") : undefined;
};
const fleetMember = (pod: k8s.V1Pod) =>
  pod.metadata?.labels?.[LABELS.role] === "executable" && pod.metadata?.labels?.[LABELS.peId]?.startsWith(`${FLEET}-`)
    ? pod.metadata.labels[LABELS.peId]
    : undefined;

/** Concurrency seen during one rollout: from the watch, and from the pods' API timestamps. */
async function concurrency(cluster: Cluster, namespace: string, memberOf: (pod: k8s.V1Pod) => string | undefined, watch: MemberWatch, stamps: DeletionStamps) {
  stamps.stop();
  const lastReady = watch.allReadyOn(watch.members[0] === undefined ? "" : (watch.current(watch.members[0])?.image ?? ""));
  return {
    // The same span for every system, as the watch saw it: the first member pod going → the last member Ready on the new image.
    watchedMs: lastReady !== undefined && watch.firstGoingAt !== undefined ? round(lastReady - watch.firstGoingAt, 0) : null,
    maxMembersNotReadyAtOnce: watch.maxNotReady,
    replacingAtOnceFromPodTimestamps: await replacingAtOnceFromTimestamps(cluster, namespace, memberOf, stamps.byMember),
    membersReplaced: stamps.byMember.size,
  };
}

function statefulSetSystem(cluster: Cluster, n: number, log: Log): SystemRun {
  const namespace = `${NS}-sts`;
  const members = Array.from({ length: n }, (_, i) => `${STS}-${i}`);
  let watch: MemberWatch | undefined;
  let honoured: boolean | undefined;
  return {
    async setUp() {
      const storageClass = await systemNamespace(cluster, namespace);
      watch = new MemberWatch(cluster, namespace, stsMember);
      await watch.start();
      watch.reset(members);
      const body = sessionStatefulSet(STS, IMAGES[0], namespace, storageClass);
      // N replicas, all started at once (Parallel: also what lets maxUnavailable apply), k at a time on updates.
      body.spec!.replicas = n;
      body.spec!.podManagementPolicy = "Parallel";
      body.spec!.updateStrategy = { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } };
      const started = performance.now();
      const created = await cluster.apps.createNamespacedStatefulSet({ namespace, body });
      // Without the MaxUnavailableStatefulSet gate the API server drops the field.
      honoured = created.spec?.updateStrategy?.rollingUpdate?.maxUnavailable !== undefined;
      await until(() => watch!.allReadyOn(IMAGES[0]), READY_TIMEOUT_MS, `${n} StatefulSet pods Ready`);
      log(
        `statefulset N ${n}: ${n} pods Ready in ${Math.round(performance.now() - started)} ms (maxUnavailable ${honoured ? "kept" : "DROPPED"} by the API server)`,
      );
    },
    async roll(image, k) {
      const list = await cluster.core.listNamespacedPod({ namespace });
      const stamps = new DeletionStamps(stsMember);
      await stamps.start(cluster, namespace, list.metadata?.resourceVersion);
      watch!.reset(members);
      const started = performance.now();
      const patched = await cluster.apps.patchNamespacedStatefulSet(
        {
          name: STS,
          namespace,
          body: {
            spec: {
              updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: k } },
              template: { spec: { containers: [{ name: "workload", image }] } },
            },
          },
        },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch),
      );
      const readyAt = await until(() => watch!.allReadyOn(image), READY_TIMEOUT_MS, `${n} StatefulSet pods Ready on ${image}`);
      return {
        ms: round(readyAt - started, 0),
        detail: {
          maxUnavailable: k,
          maxUnavailableKept: patched.spec?.updateStrategy?.rollingUpdate?.maxUnavailable === k,
          ...(await concurrency(cluster, namespace, stsMember, watch!, stamps)),
        },
      };
    },
    async tearDown() {
      watch?.stop();
      await removeNamespace(cluster, namespace, log).catch((error: Error) => log(`statefulset clean-up: ${error.message.slice(0, 300)}`));
    },
  };
}

function floorSystem(cluster: Cluster, n: number, log: Log): SystemRun {
  const namespace = `${NS}-floor`;
  const members = Array.from({ length: n }, (_, i) => `${FLOOR}-${i}`);
  const generation = new Map<string, number>();
  let watch: MemberWatch | undefined;
  return {
    async setUp() {
      const storageClass = await systemNamespace(cluster, namespace);
      watch = new MemberWatch(cluster, namespace, floorMember);
      await watch.start();
      watch.reset(members);
      const started = performance.now();
      await lanes(members, 10, async (member) => {
        await createBareClaim(cluster, member, namespace, storageClass);
        await createBarePod(cluster, `${member}-g1`, member, IMAGES[0], namespace);
        generation.set(member, 1);
      });
      await until(() => watch!.allReadyOn(IMAGES[0]), READY_TIMEOUT_MS, `${n} floor pods Ready`);
      log(`floor N ${n}: ${n} pods Ready in ${Math.round(performance.now() - started)} ms`);
    },
    async roll(image, k) {
      const list = await cluster.core.listNamespacedPod({ namespace });
      const stamps = new DeletionStamps(floorMember);
      await stamps.start(cluster, namespace, list.metadata?.resourceVersion);
      watch!.reset(members);
      const started = performance.now();
      // k workers, each: delete the member's pod, see it gone, create its successor on the same claim, see it Ready.
      await lanes(members, k, async (member) => {
        const old = watch!.current(member);
        if (!old) throw new Error(`floor: no pod of ${member} seen`);
        const gen = generation.get(member)!;
        await cluster.core.deleteNamespacedPod({ name: `${member}-g${gen}`, namespace });
        await until(() => (watch!.hasPod(old.uid) ? undefined : true), READY_TIMEOUT_MS, `deletion of ${member}-g${gen}`);
        await createBarePod(cluster, `${member}-g${gen + 1}`, member, image, namespace);
        generation.set(member, gen + 1);
        await until(() => (watch!.current(member)?.ready && watch!.current(member)?.image === image ? true : undefined), READY_TIMEOUT_MS, `${member} Ready`);
      });
      const readyAt = await until(() => watch!.allReadyOn(image), READY_TIMEOUT_MS, `${n} floor pods Ready on ${image}`);
      return { ms: round(readyAt - started, 0), detail: { workers: k, ...(await concurrency(cluster, namespace, floorMember, watch!, stamps)) } };
    },
    async tearDown() {
      watch?.stop();
      await removeNamespace(cluster, namespace, log).catch((error: Error) => log(`floor clean-up: ${error.message.slice(0, 300)}`));
    },
  };
}

/** Runs `work` over `items`, at most `width` at once; the first failure is thrown once all lanes stop. */
async function lanes<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown;
  const lane = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!;
      await work(item).catch((error: unknown) => {
        failure ??= error;
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
  if (failure !== undefined) throw failure;
}

interface FleetSide {
  checkpoint: Awaited<ReturnType<typeof checkpointSize>>;
  preview: number[];
  noop: number[];
  createMs: number;
}

function fleetSystem(cluster: Cluster, n: number, runs: number, log: Log, side: { value?: FleetSide }): SystemRun {
  const namespace = `${NS}-fleet`;
  const members = Array.from({ length: n }, (_, i) => `${FLEET}-${i}`);
  const dir = benchProject("bench-k8s-scale-fleet");
  let storageClass = "";
  let watch: MemberWatch | undefined;
  const config = (image: string, k: number) => {
    const { peId: _peId, ...template } = k8sSessionPeSpec("unused", image, namespace, storageClass);
    return { "reseat:fleets": [{ name: FLEET, replicas: n, template, rollout: { maxUnavailable: k } }] };
  };
  return {
    async setUp() {
      storageClass = await systemNamespace(cluster, namespace);
      watch = new MemberWatch(cluster, namespace, fleetMember);
      await watch.start();
      writeStackConfig(dir, config(IMAGES[0], 1));
      const create = await runCli(dir, "up", GROUPS_PROGRAM);
      log(`fleet N ${n}: up (create ${n}) ${create.ms} ms`);
      const checkpoint = await checkpointSize(dir, n);
      const preview: number[] = [];
      const noop: number[] = [];
      for (let r = 0; r < runs; r++) {
        preview.push((await runCli(dir, "preview", GROUPS_PROGRAM)).ms);
        noop.push((await runCli(dir, "up", GROUPS_PROGRAM)).ms);
      }
      log(
        `fleet N ${n}: checkpoint ${storedBytes(checkpoint)} bytes (${Math.round(storedBytes(checkpoint) / n)}/member), preview ${median(preview)} ms, no-op up ${median(noop)} ms`,
      );
      side.value = { checkpoint, preview, noop, createMs: create.ms };
    },
    async roll(image, k) {
      writeStackConfig(dir, config(image, k));
      const list = await cluster.core.listNamespacedPod({ namespace });
      const stamps = new DeletionStamps(fleetMember);
      await stamps.start(cluster, namespace, list.metadata?.resourceVersion);
      watch!.reset(members);
      const rollout = await runCli(dir, "up", GROUPS_PROGRAM);
      // reseat up returned: every member is Ready on the new image (the watch sees it a moment later).
      await until(() => watch!.allReadyOn(image), 30_000, `every fleet member Ready on ${image} after reseat up returned`);
      const noop = await runCli(dir, "up", GROUPS_PROGRAM);
      return {
        ms: rollout.ms - noop.ms,
        detail: { rolloutUpMs: rollout.ms, noopUpMs: noop.ms, maxUnavailable: k, ...(await concurrency(cluster, namespace, fleetMember, watch!, stamps)) },
      };
    },
    async tearDown() {
      watch?.stop();
      await runCli(dir, "destroy", GROUPS_PROGRAM).then(
        () => fs.rmSync(dir, { recursive: true, force: true }),
        (error: Error) => log(`fleet destroy: ${error.message.slice(0, 300)}`),
      );
      // The fleet keeps its claims on destroy (as a PE does): the namespace takes them.
      await removeNamespace(cluster, namespace, log).catch((error: Error) => log(`fleet clean-up: ${error.message.slice(0, 300)}`));
    },
  };
}

/** Pods the cluster can still take (kubelet maxPods per node, less every pod on a node not of this bench). */
async function freePods(cluster: Cluster): Promise<{ free: number; allocatable: number; others: number }> {
  const nodes = (await cluster.core.listNode()).items;
  const allocatable = nodes.reduce((sum, node) => sum + Number(node.status?.allocatable?.pods ?? 0), 0);
  const others = (await cluster.core.listPodForAllNamespaces()).items.filter(
    (p) => p.spec?.nodeName && p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed" && !p.metadata?.namespace?.startsWith(NS),
  ).length;
  return { free: allocatable - others, allocatable, others };
}

export async function benchK8sScale(): Promise<string> {
  const ns = numbers("RESEAT_BENCH_SCALE_K8S_N", "10,100", 1, 220);
  const ks = numbers("RESEAT_BENCH_SCALE_K8S_C", "1,10", 1, 220);
  const runsFor = runsPerN(process.env.RESEAT_BENCH_SCALE_K8S_RUNS ?? "3");
  const systems = (process.env.RESEAT_BENCH_SCALE_K8S_SYSTEMS ?? SYSTEMS.join(","))
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean) as System[];
  for (const s of systems)
    if (!(SYSTEMS as readonly string[]).includes(s)) throw new Error(`RESEAT_BENCH_SCALE_K8S_SYSTEMS: expected names from ${SYSTEMS.join(", ")}, got "${s}"`);
  const budgetRaw = process.env.RESEAT_BENCH_SCALE_K8S_BUDGET_MIN;
  if (budgetRaw !== undefined && !(Number(budgetRaw) > 0))
    throw new Error(`RESEAT_BENCH_SCALE_K8S_BUDGET_MIN: expected a number of minutes > 0, got "${budgetRaw}"`);
  const deadline = budgetRaw === undefined ? Infinity : Date.now() + Number(budgetRaw) * 60_000;
  const overBudget = `not run: it would not have ended within RESEAT_BENCH_SCALE_K8S_BUDGET_MIN=${budgetRaw}`;
  const log: Log = (text) => process.stderr.write(`[k8s_scale ${new Date().toISOString().slice(11, 19)}] ${text}\n`);

  let c = await localCluster();
  if (!c) {
    log("scripts/cluster.sh up");
    await run("bash", [CLUSTER_SH, "up"]);
    c = await localCluster();
  }
  if (!c) throw new Error("k8s_scale: the local cluster is not up (scripts/cluster.sh status names no kubeconfig)");
  await run("bash", [CLUSTER_SH, "load-image", ...IMAGES]);

  const cases: CaseResult[] = [];
  const notRun: string[] = [];
  const setup: Record<string, unknown> = {
    workload: {
      images: IMAGES,
      note: "the session workload of the Kubernetes benches (bench/k8sSession.ts): state library on a ReadWriteOnce claim, readiness GET /healthz every 1 s, grace 5 s",
    },
    groupSizes: ns,
    concurrencies: ks,
    runs: Object.fromEntries(ns.map((n) => [n, runsFor(n)])),
    systems,
    cluster: await freePods(c),
    notRun,
  };
  const save = () => {
    writeResult(METRIC, { metric: METRIC, setup, cases });
    fs.writeFileSync(path.join(RESULTS_DIR, `${METRIC}.svg`), k8sScalePlot(cases));
  };
  // per system, N, k: the rollout samples (ms) and their details
  const measured = new Map<string, { samples: number[]; details: Record<string, unknown>[] }>();
  const key = (system: System, n: number, k: number) => `${system}/${n}/${k}`;
  const fleetSides = new Map<number, FleetSide>();
  // RESEAT_BENCH_SCALE_K8S_ADD=1: the N of this run added to the last run's file (e.g. the largest N run on
  // its own); its samples are taken back so that per_member_cost compares across both.
  const allNs = [...ns];
  const allKs = [...ks];
  if (process.env.RESEAT_BENCH_SCALE_K8S_ADD === "1") {
    const earlier = readEarlier(measured, fleetSides);
    for (const n of earlier.ns) if (!allNs.includes(n)) allNs.push(n);
    for (const k of earlier.ks) if (!allKs.includes(k)) allKs.push(k);
    allNs.sort((a, b) => a - b);
    allKs.sort((a, b) => a - b);
    setup.earlierRun = earlier.setup;
  }
  let lastRolloutMs = 0;

  for (const n of ns) {
    const room = await freePods(c);
    if (room.free - HEADROOM_PODS < n) {
      const why = `N = ${n}: not run: the cluster allows ${room.allocatable} pods (kubelet maxPods), ${room.others} run already, ${HEADROOM_PODS} are left for others`;
      log(why);
      notRun.push(why);
      save();
      continue;
    }
    for (const system of systems) {
      const side: { value?: FleetSide } = {};
      const runs = runsFor(n);
      const runner = system === "fleet" ? fleetSystem(c, n, runs, log, side) : system === "statefulset" ? statefulSetSystem(c, n, log) : floorSystem(c, n, log);
      let image: 0 | 1 = 0;
      try {
        await runner.setUp();
        if (side.value) fleetSides.set(n, side.value);
        for (const k of ks) {
          const entry = { samples: [] as number[], details: [] as Record<string, unknown>[] };
          for (let r = 0; r < runs; r++) {
            if (Date.now() + lastRolloutMs > deadline) {
              notRun.push(`${system} N = ${n}, k = ${k}, run ${r + 1}: ${overBudget}`);
              continue;
            }
            image = image === 0 ? 1 : 0;
            const t0 = Date.now();
            const rollout = await runner.roll(IMAGES[image], k);
            lastRolloutMs = Date.now() - t0;
            log(`${system} N ${n} k ${k} run ${r + 1}: ${rollout.ms} ms ${JSON.stringify(rollout.detail)}`);
            entry.samples.push(rollout.ms);
            entry.details.push({ ...rollout.detail, loadAverage: os.loadavg().map((l) => round(l, 2)) });
          }
          if (entry.samples.length) measured.set(key(system, n, k), entry);
          cases.splice(0, cases.length, ...buildCases(allNs, allKs, measured, fleetSides));
          save();
        }
      } catch (error) {
        const why = `${system} N = ${n}: failed: ${(error as Error).message.slice(0, 1500)}`;
        log(why);
        notRun.push(why);
      } finally {
        await runner.tearDown();
      }
      cases.splice(0, cases.length, ...buildCases(allNs, allKs, measured, fleetSides));
      save();
    }
  }
  cases.splice(0, cases.length, ...buildCases(allNs, allKs, measured, fleetSides));
  save();
  process.stderr.write(`\n${k8sScaleTable(cases)}\n`);
  return path.join(RESULTS_DIR, `${METRIC}.json`);
}

/** The last run's k8s_scale.json back into samples (rollout_ cases carry every system's), details and fleet sides. */
export function readEarlier(measured: Map<string, { samples: number[]; details: Record<string, unknown>[] }>, fleetSides: Map<number, FleetSide>) {
  const file = path.join(RESULTS_DIR, `${METRIC}.json`);
  const doc = JSON.parse(fs.readFileSync(file, "utf8")) as { setup: Record<string, unknown>; cases: CaseResult[] };
  const ns = new Set<number>();
  const ks = new Set<number>();
  const runsOf = (o: unknown) => (o as { runs?: Record<string, unknown>[] } | null)?.runs ?? [];
  for (const c of doc.cases) {
    const n = Number(c.groupSize);
    const k = Number(c.concurrency);
    if (c.case?.startsWith("rollout_")) {
      const samples = c.samples as Record<System, number[] | null>;
      const sts = doc.cases.find((s) => s.case === `statefulset_${n}_c${k}`);
      for (const system of SYSTEMS) {
        const values = samples[system];
        if (!values?.length) continue;
        const details = system === "fleet" ? runsOf(c.fleet) : runsOf(sts?.[system]);
        measured.set(`${system}/${n}/${k}`, { samples: values, details });
      }
      ns.add(n);
      ks.add(k);
    } else if (c.case?.startsWith("statefulset_")) {
      // Without a fleet case (the fleet not measured at that N): the StatefulSet's and the floor's own
      // (a file without samples: its medians, each once per run, which keeps the median).
      const samples = (c.samples as Partial<Record<System, number[] | null>> | undefined) ?? {
        statefulset: Array<number>(c.runs).fill(c.value),
        floor: c.floor ? Array<number>(runsOf(c.floor).length).fill(c.baseline) : null,
      };
      for (const system of ["statefulset", "floor"] as const) {
        const values = samples[system];
        if (values?.length && !measured.has(`${system}/${n}/${k}`)) measured.set(`${system}/${n}/${k}`, { samples: values, details: runsOf(c[system]) });
      }
      ns.add(n);
      ks.add(k);
    } else if (c.case?.startsWith("floor_")) {
      measured.set(`floor/${n}/${k}`, { samples: (c.samples as { floor: number[] }).floor, details: runsOf(c.floor) });
      ns.add(n);
      ks.add(k);
    } else if (c.case?.startsWith("checkpoint_bytes_per_member_")) {
      const preview = doc.cases.find((p) => p.case === `preview_${n}`)?.samples as number[] | undefined;
      const noop = doc.cases.find((p) => p.case === `noop_up_${n}`);
      if (!preview || !noop) continue;
      fleetSides.set(n, {
        checkpoint: {
          checkpointFileBytes: round(c.value * n, 0),
          compactBytes: round(c.value * n, 0),
          exportBytes: round(Number(c.exportBytesPerMember) * n, 0),
          resources: 0,
          byType: c.byType as FleetSide["checkpoint"]["byType"],
        },
        preview,
        noop: noop.samples as number[],
        createMs: Number(noop.createUpMs),
      });
    }
  }
  return { ns: [...ns], ks: [...ks], setup: doc.setup };
}

const watched = (details: Record<string, unknown>[]) => {
  const values = details.map((d) => d.watchedMs).filter((v): v is number => typeof v === "number");
  return values.length ? round(median(values), 0) : null;
};

const summary = (details: Record<string, unknown>[]) => ({
  maxMembersNotReadyAtOnce: Math.max(...details.map((d) => Number(d.maxMembersNotReadyAtOnce ?? 0))),
  replacingAtOnceFromPodTimestamps: {
    atLeast: Math.max(...details.map((d) => (d.replacingAtOnceFromPodTimestamps as { atLeast: number } | undefined)?.atLeast ?? 0)),
    atMost: Math.max(...details.map((d) => (d.replacingAtOnceFromPodTimestamps as { atMost: number } | undefined)?.atMost ?? 0)),
  },
  runs: details,
});

function buildCases(
  ns: number[],
  ks: number[],
  measured: Map<string, { samples: number[]; details: Record<string, unknown>[] }>,
  fleetSides: Map<number, FleetSide>,
): CaseResult[] {
  const at = new Date().toISOString();
  const cases: CaseResult[] = [];
  const get = (system: System, n: number, k: number) => measured.get(`${system}/${n}/${k}`);
  const med = (system: System, n: number, k: number) => {
    const m = get(system, n, k);
    return m ? median(m.samples) : undefined;
  };
  for (const n of ns) {
    for (const k of ks) {
      const fleet = get("fleet", n, k);
      const sts = get("statefulset", n, k);
      const floor = get("floor", n, k);
      const floorMs = med("floor", n, k);
      const stsMs = med("statefulset", n, k);
      if (fleet && sts) {
        const value = median(fleet.samples);
        cases.push({
          case: `rollout_${n}_c${k}`,
          metric: METRIC,
          unit: "ms",
          value: round(value),
          baseline: round(stsMs!),
          ratio: round(value / stsMs!, 3),
          runs: fleet.samples.length,
          at,
          groupSize: n,
          concurrency: k,
          baselineIs: `a StatefulSet of ${n} replicas, rollingUpdate.maxUnavailable ${k}: patch → all Ready (goal: fleet ≤ 0.5×)`,
          floorMs: floorMs === undefined ? null : round(floorMs),
          ratio_floor: floorMs === undefined ? null : round(value / floorMs, 3),
          samples: { fleet: fleet.samples, statefulset: sts.samples, floor: floor?.samples ?? null },
          // The first member pod going → the last Ready, as the watch saw it (the same span for all three; not in runs before 2026-12-07 19:25).
          watchedMsMedian: { fleet: watched(fleet.details), statefulset: watched(sts.details), floor: floor ? watched(floor.details) : null },
          fleet: summary(fleet.details),
        });
      }
      if (floor && !sts) {
        // The floor alone (the StatefulSet not measured at this N and k): kept so that nothing measured is lost.
        cases.push({
          case: `floor_${n}_c${k}`,
          metric: METRIC,
          unit: "ms",
          value: round(floorMs!),
          baseline: round(floorMs!),
          ratio: 1,
          runs: floor.samples.length,
          at,
          groupSize: n,
          concurrency: k,
          baselineIs: "itself (the StatefulSet was not measured at this N and k)",
          samples: { floor: floor.samples },
          floor: summary(floor.details),
        });
      }
      if (sts) {
        cases.push({
          case: `statefulset_${n}_c${k}`,
          metric: METRIC,
          unit: "ms",
          value: round(stsMs!),
          baseline: floorMs === undefined ? 0 : round(floorMs),
          ratio: floorMs === undefined ? 0 : round(stsMs! / floorMs, 3),
          runs: sts.samples.length,
          at,
          groupSize: n,
          concurrency: k,
          baselineIs: floorMs === undefined ? "the floor was not measured" : `the floor: ${n} pod replacements through the API alone, ${k} at a time`,
          samples: { statefulset: sts.samples, floor: floor?.samples ?? null },
          statefulset: summary(sts.details),
          floor: floor ? summary(floor.details) : null,
        });
      }
    }
    const side = fleetSides.get(n);
    if (side) {
      const bytes = storedBytes(side.checkpoint) / n;
      cases.push({
        case: `checkpoint_bytes_per_member_${n}`,
        metric: METRIC,
        unit: "bytes",
        value: round(bytes),
        baseline: CHECKPOINT_GOAL_BYTES,
        ratio: round(bytes / CHECKPOINT_GOAL_BYTES, 3),
        runs: 1,
        at,
        groupSize: n,
        baselineIs: "the goal: 1 KB of checkpoint per member (the file backend's checkpoint file / N)",
        exportBytesPerMember: round(side.checkpoint.exportBytes / n),
        byType: side.checkpoint.byType,
      });
    }
  }
  // Preview and no-op up vs N: against the same at the smallest N measured.
  const fleetNs = ns.filter((n) => fleetSides.has(n));
  if (fleetNs.length) {
    const smallest = fleetSides.get(fleetNs[0]!)!;
    for (const n of fleetNs) {
      const side = fleetSides.get(n)!;
      for (const [name, values, base] of [
        ["preview", side.preview, smallest.preview],
        ["noop_up", side.noop, smallest.noop],
      ] as const) {
        cases.push({
          case: `${name}_${n}`,
          metric: METRIC,
          unit: "ms",
          value: round(median(values)),
          baseline: round(median(base)),
          ratio: round(median(values) / median(base), 3),
          runs: values.length,
          at,
          groupSize: n,
          baselineIs: `the fleet's ${name === "preview" ? "preview" : "no-op up"} at N = ${fleetNs[0]}`,
          samples: values,
          ...(name === "noop_up" ? { createUpMs: side.createMs } : {}),
        });
      }
    }
  }
  // Per-member cost at N vs the next smaller N (goal for the fleet: largest vs 100 ≤ 1.2×); the peers beside it.
  for (const [system, suffix] of [
    ["fleet", ""],
    ["statefulset", "_statefulset"],
    ["floor", "_floor"],
  ] as const) {
    for (let i = 1; i < ns.length; i++) {
      for (const k of ks) {
        const big = med(system, ns[i]!, k);
        const small = med(system, ns[i - 1]!, k);
        if (big === undefined || small === undefined) continue;
        cases.push({
          case: `per_member_cost_${ns[i]}_vs_${ns[i - 1]}_c${k}${suffix}`,
          metric: METRIC,
          unit: "ms",
          value: round(big / ns[i]!),
          baseline: round(small / ns[i - 1]!),
          ratio: round(big / ns[i]! / (small / ns[i - 1]!), 3),
          runs: get(system, ns[i]!, k)!.samples.length,
          at,
          concurrency: k,
          baselineIs: `the ${system}'s rollout per member at N = ${ns[i - 1]}`,
        });
      }
    }
  }
  return cases;
}

/** bench/results/k8s_scale.svg: rollout wall time vs N, log-log, fleet / StatefulSet / floor per k (as the Docker section's plot). */
export function k8sScalePlot(cases: CaseResult[]): string {
  const series: ScaleSeries[] = [];
  const ks = [...new Set(cases.filter((c) => c.case?.startsWith("statefulset_")).map((c) => Number(c.concurrency)))].sort((a, b) => a - b);
  for (const k of ks) {
    const points = (prefix: string, pick: (c: CaseResult) => unknown): [number, number][] =>
      cases
        .filter((c) => c.case?.startsWith(prefix) && c.concurrency === k)
        .flatMap((c) => {
          const v = pick(c);
          return typeof v === "number" && v > 0 ? [[Number(c.groupSize), v] as [number, number]] : [];
        });
    series.push({ system: "reseat fleet", k, points: points("rollout_", (c) => c.value) });
    series.push({ system: "statefulset", k, points: points("statefulset_", (c) => c.value) });
    series.push({ system: "floor", k, points: points("statefulset_", (c) => c.baseline) });
  }
  return renderScalePlot(
    `Kubernetes: rolling an image change over N members (session workload, two-node cluster, ${os.cpus().length} CPUs)`,
    series.filter((s) => s.points.length),
  );
}

/** The Kubernetes section's results as Markdown (printed at the end of a run, for docs/scale.md). */
export function k8sScaleTable(cases: CaseResult[]): string {
  const s = (ms: unknown) => (typeof ms === "number" && ms > 0 ? (ms / 1000).toFixed(1) : "—");
  const x = (ratio: unknown) => (typeof ratio === "number" && ratio > 0 ? `${ratio.toFixed(2)}×` : "—");
  const lines = [
    "| N | k | fleet (s) | StatefulSet (s) | floor (s) | fleet ÷ StatefulSet | fleet ÷ floor | StatefulSet ÷ floor | most members not Ready at once: fleet / StatefulSet / floor | runs |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  const byKey = new Map(cases.map((c) => [c.case, c]));
  const keys = new Set(cases.filter((c) => c.case?.startsWith("statefulset_") || c.case?.startsWith("rollout_")).map((c) => `${c.groupSize}/${c.concurrency}`));
  for (const nk of keys) {
    const [n, k] = nk.split("/");
    const fleet = byKey.get(`rollout_${n}_c${k}`);
    const sts = byKey.get(`statefulset_${n}_c${k}`);
    const most = (o: unknown) => (o ? String((o as { maxMembersNotReadyAtOnce: number }).maxMembersNotReadyAtOnce) : "—");
    lines.push(
      `| ${n} | ${k} | ${s(fleet?.value)} | ${s(sts?.value)} | ${s(sts?.baseline)} | ${x(fleet?.ratio)} | ${x(fleet?.ratio_floor)} | ${x(sts?.ratio)} | ${most(fleet?.fleet)} / ${most(sts?.statefulset)} / ${most(sts?.floor)} | ${fleet?.runs ?? sts?.runs} |`,
    );
  }
  lines.push("", "| case | value | baseline | ratio |", "|---|---|---|---|");
  for (const c of cases.filter((c) => !c.case?.startsWith("rollout_") && !c.case?.startsWith("statefulset_"))) {
    lines.push(`| \`${c.case}\` | ${c.value} ${c.unit} | ${c.baseline} ${c.unit} | ${x(c.ratio)} |`);
  }
  return lines.join("\n") + "\n";
}
