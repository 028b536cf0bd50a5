// k8s_replacement_gap: on the local two-node cluster, the gap users feel when a PE's image changes —
// old pod told to stop (its deletion requested) → new pod Ready with the state resumed — for reseat
// inside `pulumi up`, side by side in the same run with Kubernetes' own ways of doing the same job, all on the
// session workload (the state library on a ReadWriteOnce claim of the same StorageClass, same image, readiness
// probe and grace period):
//   standby:     reseat with handover "standby" (the successor pod started and parked on the claim's node first);
//   staged:      reseat's staged routine (today's);
//   StatefulSet: a one-replica StatefulSet whose pod is replaced on a template change (deleted, then recreated;
//                maxUnavailable — behind the MaxUnavailableStatefulSet feature gate, off on this cluster —
//                changes nothing for one replica: its one pod still goes before its successor is made);
//   in-place:    the kubelet's in-place image swap of a bare pod: containers[0].image patched on the running pod
//                (same pod, node, IP and volume): from the patch sent → the pod Ready again on the new image.
// All are timed by one observer watching the API server (the times its events arrive here), so all carry the
// same watch latency. Also recorded: create-pod → Ready for a fresh pod on its own (the floor). Runs alternate.
// Goals: standby ≤ 0.25× the StatefulSet, ≤ 0.5× the in-place swap.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { PROJECT_ROOT } from "../src/automation/stack";
import { LABELS } from "../src/backend/backend";
import { SERVING_CONDITION } from "../src/backend/kubernetes/objects";
import { createBareClaim, createBarePod, k8sSessionPeSpec, sessionStatefulSet } from "./k8sSession";
import { type CaseResult, median, percentile, result, round, writeResult } from "./results";
import { standbyAvailable } from "./replacementGap";

const RUNS = Number(process.env.RESEAT_BENCH_RUNS) || 20;
const NAMESPACE = "reseat-bench-k8s";
const STORAGE_CLASS = `${NAMESPACE}-local`;
const PE = "bench-k8s-gap";
const STS = "bench-sts";
const STANDBY_PE = `${PE}-standby`;
const BARE = "bench-inplace";
const PORT = 8080;
const IMAGES = ["reseat-session-workload:v1", "reseat-session-workload:v2"] as const;
const GRACE_SECONDS = 5;
const CLI = path.join(PROJECT_ROOT, "dist", "src", "cli", "main.js");
const CLUSTER_SH = path.join(PROJECT_ROOT, "scripts", "cluster.sh");

/** The floor pod's env: the session workload on a scratch directory (no claim). */
const env = [
  { name: "PORT", value: String(PORT) },
  { name: "LISTEN_HOST", value: "0.0.0.0" },
  { name: "RESEAT_PE_ID", value: "bench-floor" },
  { name: "RESEAT_STATE_DIR", value: "/tmp/state" },
  { name: "RESEAT_GENERATION", value: "1" },
  { name: "RESEAT_CLAIM_GENERATION", value: "1" },
];
const probe = { httpGet: { port: PORT, path: "/healthz" }, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 3, successThreshold: 1 };

interface Phases {
  oldStopped: number | null;
  oldDeleted: number | null;
  newBound: number | null;
  newRunning: number | null;
  /** A standby pod's readiness gate opened (reseat's condition True on the pod: it saw the workload serve). */
  gateOpen: number | null;
  /** The new pod's workload first said it serves (/status, asked on its address every 10 ms): before Ready, the kubelet's and the API server's part. */
  newAnswering: number | null;
  newReady: number | null;
}

/** Per phase, the median over runs (nulls left out). */
function medianPhases(runs: Phases[]): Record<keyof Phases, number | null> {
  const keys = ["oldStopped", "oldDeleted", "newBound", "newRunning", "newAnswering", "gateOpen", "newReady"] as const;
  return Object.fromEntries(
    keys.map((key) => {
      const values = runs.map((r) => r[key]).filter((v): v is number => v !== null);
      return [key, values.length ? round(median(values)) : null];
    }),
  ) as Record<keyof Phases, number | null>;
}

/** One watch on the namespace's pods: when (here) each pod uid was first seen deleting, and Ready. */
class PodTimeline {
  readonly deletingAt = new Map<string, number>();
  readonly readyAt = new Map<string, number>();
  /** The old pod's containers reported stopped (terminal phase), and its API object gone. */
  readonly stoppedAt = new Map<string, number>();
  readonly deletedAt = new Map<string, number>();
  /** The new pod bound to a node (scheduled), and its container running. */
  readonly boundAt = new Map<string, number>();
  readonly runningAt = new Map<string, number>();
  /** When each pod's workload first said it serves (/status phase not "parked", asked directly on the pod's address). */
  readonly answeringAt = new Map<string, number>();
  private readonly asking = new Set<string>();
  /** When reseat's serving condition (a standby's readiness gate) was first seen True on each pod. */
  readonly gateOpenAt = new Map<string, number>();
  readonly podOf = new Map<string, string>();
  /** Every report of a pod Ready with its container ready, and on which image (the in-place swap keeps the pod). */
  readonly readyOnImage: { uid: string; image: string; at: number }[] = [];
  private abort?: AbortController;

  async start(config: k8s.KubeConfig): Promise<void> {
    this.abort = await new k8s.Watch(config).watch(
      `/api/v1/namespaces/${NAMESPACE}/pods`,
      {},
      (_phase: string, pod: k8s.V1Pod) => {
        const uid = pod.metadata!.uid!;
        const now = performance.timeOrigin + performance.now();
        this.podOf.set(uid, pod.metadata!.name!);
        if (pod.metadata?.deletionTimestamp && !this.deletingAt.has(uid)) this.deletingAt.set(uid, now);
        if ((pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") && !this.stoppedAt.has(uid)) this.stoppedAt.set(uid, now);
        if (_phase === "DELETED" && !this.deletedAt.has(uid)) this.deletedAt.set(uid, now);
        if (pod.spec?.nodeName && !pod.spec.schedulingGates?.length && !this.boundAt.has(uid)) this.boundAt.set(uid, now);
        if (pod.status?.containerStatuses?.some((c) => c.state?.running) && !this.runningAt.has(uid)) this.runningAt.set(uid, now);
        const ready = pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
        if (pod.status?.conditions?.some((c) => c.type === SERVING_CONDITION && c.status === "True") && !this.gateOpenAt.has(uid))
          this.gateOpenAt.set(uid, now);
        if (ready && !this.readyAt.has(uid)) this.readyAt.set(uid, now);
        if (pod.status?.podIP && !pod.metadata?.deletionTimestamp && !this.asking.has(uid)) void this.askUntilAnswering(uid, pod.status.podIP);
        const container = pod.status?.containerStatuses?.[0];
        if (ready && container?.ready) this.readyOnImage.push({ uid, image: container.image, at: now });
      },
      () => undefined,
    );
  }

  stop(): void {
    this.abort?.abort();
    this.stopped = true;
  }

  private stopped = false;

  /** Asks the pod's /status every 10 ms until it says it serves, the pod is going, or the timeline stops. */
  private async askUntilAnswering(uid: string, ip: string): Promise<void> {
    this.asking.add(uid);
    while (!this.stopped && !this.deletingAt.has(uid) && !this.deletedAt.has(uid)) {
      try {
        // Its status, not /healthz: a parked standby answers /healthz (reseat's readiness gate keeps it out of Ready).
        const res = await fetch(`http://${ip}:${PORT}/status`, { signal: AbortSignal.timeout(500) });
        const status = (await res.json().catch(() => ({}))) as { phase?: string };
        if (res.status === 200 && status.phase !== "parked") {
          this.answeringAt.set(uid, performance.timeOrigin + performance.now());
          return;
        }
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Where the gap went, from the old pod's deletion request (ms after it). */
  phases(oldUid: string, newUid: string): Phases {
    const t0 = this.deletingAt.get(oldUid)!;
    const at = (map: Map<string, number>, uid: string) => (map.has(uid) ? round(map.get(uid)! - t0) : null);
    return {
      oldStopped: at(this.stoppedAt, oldUid),
      oldDeleted: at(this.deletedAt, oldUid),
      newBound: at(this.boundAt, newUid),
      newRunning: at(this.runningAt, newUid),
      newAnswering: at(this.answeringAt, newUid),
      gateOpen: at(this.gateOpenAt, newUid),
      newReady: at(this.readyAt, newUid),
    };
  }

  /** Waits until pod `uid` is reported Ready on `image` (its container's image ends with the tag) after `after`; returns when. */
  async readyOn(uid: string, image: string, after: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const seen = this.readyOnImage.find((e) => e.uid === uid && e.at > after && e.image.endsWith(image));
      if (seen) return seen.at;
      if (Date.now() > deadline) throw new Error(`pod ${this.podOf.get(uid)} was not Ready on ${image} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Waits until a pod matching `isNew` is Ready; returns its uid. */
  async readyPod(isNew: (uid: string, name: string) => boolean, timeoutMs = 120_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const [uid, name] of this.podOf) if (this.readyAt.has(uid) && isNew(uid, name)) return uid;
      if (Date.now() > deadline) throw new Error("no new pod became Ready");
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

export async function benchK8sReplacementGap(): Promise<string> {
  const config = new k8s.KubeConfig();
  config.loadFromDefault();
  const core = config.makeApiClient(k8s.CoreV1Api);
  const apps = config.makeApiClient(k8s.AppsV1Api);
  const storage = config.makeApiClient(k8s.StorageV1Api);
  const withStandby = standbyAvailable();
  await run("bash", [CLUSTER_SH, "load-image", ...IMAGES]);
  await core.createNamespace({ body: { metadata: { name: NAMESPACE } } }).catch(ignore409);
  await storage
    .createStorageClass({
      body: { metadata: { name: STORAGE_CLASS }, provisioner: "reseat.local/node-local", volumeBindingMode: "WaitForFirstConsumer", reclaimPolicy: "Delete" },
    })
    .catch(ignore409);

  const dir = path.join(PROJECT_ROOT, ".work", "bench-k8s-replacement-gap");
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, "stacks"), { recursive: true });
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), fs.readFileSync(path.join(PROJECT_ROOT, "Pulumi.yaml"), "utf8").replace(/^main:.*\n/m, ""));
  const images = { staged: IMAGES[0] as string, standby: IMAGES[0] as string };
  const up = () => {
    const specs = [
      k8sSessionPeSpec(PE, images.staged, NAMESPACE, STORAGE_CLASS),
      ...(withStandby ? [k8sSessionPeSpec(STANDBY_PE, images.standby, NAMESPACE, STORAGE_CLASS, "standby")] : []),
    ];
    fs.writeFileSync(path.join(dir, "stacks", "Pulumi.bench.yaml"), JSON.stringify({ config: { "reseat:processingElements": specs } }));
    return run(process.execPath, [CLI, "up", "--cwd", dir, "--stack", "bench", "--create", "--json"]);
  };

  const timeline = new PodTimeline();
  await timeline.start(config);
  const gaps = { standby: [] as number[], staged: [] as number[], statefulSet: [] as number[], inPlace: [] as number[] };
  const floors: number[] = [];
  /** Why the in-place swap was left out of later runs, when the kubelet stopped bringing the pod back. */
  let inPlaceStopped: string | undefined;
  const phases: Record<"standby" | "staged" | "statefulSet", Phases[]> = { standby: [], staged: [], statefulSet: [] };
  /** One reseat PE's image change through `pulumi up`: old pod's deletion seen → new pod Ready seen. */
  const reseatGap = async (which: "staged" | "standby", peId: string, image: string) => {
    const isPod = (name: string) => new RegExp(`^reseat-${peId}-g\\d+$`).test(name);
    const before = new Set([...timeline.podOf.keys()]);
    const oldPe = [...timeline.podOf].find(([uid, name]) => isPod(name) && timeline.readyAt.has(uid) && !timeline.deletingAt.has(uid))?.[0];
    images[which] = image;
    await up();
    const newPe = await timeline.readyPod((uid, name) => isPod(name) && !before.has(uid));
    gaps[which].push(round(timeline.readyAt.get(newPe)! - timeline.deletingAt.get(oldPe!)!));
    phases[which].push(timeline.phases(oldPe!, newPe));
  };
  try {
    await up();
    await apps.createNamespacedStatefulSet({ namespace: NAMESPACE, body: sessionStatefulSet(STS, IMAGES[0], NAMESPACE, STORAGE_CLASS) });
    await createBareClaim({ core, apps, storage, config }, `${BARE}-state`, NAMESPACE, STORAGE_CLASS);
    let stsUid = await timeline.readyPod((_uid, name) => name === `${STS}-0`);
    for (let i = 0; i < RUNS; i++) {
      const image = IMAGES[(i + 1) % 2]!;

      // reseat: an image change through `pulumi up`, standby and staged.
      if (withStandby) await reseatGap("standby", STANDBY_PE, image);
      await reseatGap("staged", PE, image);

      // Kubernetes' StatefulSet controller: the same image change in the pod template.
      const seenBefore = new Set([...timeline.podOf.keys()]);
      await apps.patchNamespacedStatefulSet(
        { name: STS, namespace: NAMESPACE, body: { spec: { template: { spec: { containers: [{ name: "workload", image }] } } } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch),
      );
      const oldSts = stsUid;
      stsUid = await timeline.readyPod((uid, name) => name === `${STS}-0` && !seenBefore.has(uid));
      gaps.statefulSet.push(round(timeline.readyAt.get(stsUid)! - timeline.deletingAt.get(oldSts)!));
      phases.statefulSet.push(timeline.phases(oldSts, stsUid));

      // The kubelet's in-place swap: a bare pod's image patched; the same pod Ready again on the new image. A fresh
      // pod each run (on the same claim): the kubelet counts a swap as a container restart and backs off (10 s,
      // 20 s, 40 s: CrashLoopBackOff) from a pod's fourth swap on.
      if (!inPlaceStopped) {
        const bare = `${BARE}-${i}`;
        await createBarePod({ core, apps, storage, config }, bare, `${BARE}-state`, IMAGES[i % 2]!, NAMESPACE);
        const bareUid = await timeline.readyPod((_uid, name) => name === bare);
        const patchedAt = performance.timeOrigin + performance.now();
        await core.patchNamespacedPod(
          { name: bare, namespace: NAMESPACE, body: { spec: { containers: [{ name: "workload", image }] } } },
          k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch),
        );
        try {
          gaps.inPlace.push(round((await timeline.readyOn(bareUid, image, patchedAt, 60_000)) - patchedAt));
        } catch (error) {
          // Kept as a finding, not a crash of the whole bench: what the kubelet said about the container.
          const pod = await core.readNamespacedPod({ name: bare, namespace: NAMESPACE }).catch(() => undefined);
          inPlaceStopped = `run ${i + 1}: ${(error as Error).message}; container status ${JSON.stringify(pod?.status?.containerStatuses?.[0] ?? null)}`;
          process.stderr.write(`in-place swap left out from here: ${inPlaceStopped}\n`);
        }
        await core.deleteNamespacedPod({ name: bare, namespace: NAMESPACE, gracePeriodSeconds: 0 }).catch(() => undefined);
        await podGone(core, bare);
      }

      // The floor: a fresh pod, same image and probe, created → Ready.
      floors.push(await createToReady(core, timeline, image, i));
      process.stderr.write(
        `run ${i + 1}/${RUNS}: standby ${gaps.standby.at(-1) ?? "-"} ms ${JSON.stringify(phases.standby.at(-1) ?? {})}, staged ${gaps.staged.at(-1)} ms, StatefulSet ${gaps.statefulSet.at(-1)} ms ${JSON.stringify(phases.statefulSet.at(-1))}, in-place ${gaps.inPlace.at(-1)} ms, create→Ready ${floors.at(-1)} ms\n`,
      );
    }
  } finally {
    timeline.stop();
    await run(process.execPath, [CLI, "destroy", "--cwd", dir, "--stack", "bench", "--json"]).catch(() => undefined);
    await core.deleteNamespace({ name: NAMESPACE }).catch(() => undefined);
  }
  const p99 = (values: number[]) => round(percentile(values, 99));
  const sts = median(gaps.statefulSet);
  const inPlace = gaps.inPlace.length ? median(gaps.inPlace) : NaN;
  const row = (name: string, values: number[], baseline: number[], extra: Record<string, unknown>): CaseResult => ({
    case: name,
    ...result("k8s_replacement_gap", "ms", values, baseline, { p99: p99(values), baselineP99: p99(baseline), ...extra, samples: values }),
  });
  const cases: CaseResult[] = [];
  if (withStandby) {
    cases.push(
      row("standby vs StatefulSet", gaps.standby, gaps.statefulSet, {
        baselineIs: "one-replica StatefulSet, same workload/probe/grace/StorageClass, pod replaced on a template change",
        goal: "≤ 0.25",
        phases: medianPhases(phases.standby),
      }),
    );
    if (gaps.inPlace.length) {
      cases.push(
        row("standby vs in-place image swap", gaps.standby, gaps.inPlace, {
          baselineIs: "the kubelet's in-place image swap of a bare pod (containers[0].image patched): patch sent → Ready on the new image",
          goal: "≤ 0.5",
        }),
      );
    }
  }
  cases.push(
    row("staged vs StatefulSet", gaps.staged, gaps.statefulSet, { baselineIs: "one-replica StatefulSet", phases: medianPhases(phases.staged) }),
    row("StatefulSet", gaps.statefulSet, gaps.statefulSet, { baselineIs: "itself", phases: medianPhases(phases.statefulSet) }),
    row("create → Ready (fresh pod, the floor)", floors, floors, { baselineIs: "itself" }),
  );
  if (gaps.inPlace.length) {
    cases.push(
      row("in-place image swap", gaps.inPlace, gaps.inPlace, {
        baselineIs: "itself",
        ratioToStatefulSet: round(inPlace / sts, 3),
        leftOut: inPlaceStopped ?? null,
      }),
    );
  }
  for (const c of cases) process.stderr.write(`${c.case}: median ${c.value} ms, p99 ${c.p99} ms, baseline ${c.baseline} ms, ratio ${c.ratio}\n`);
  if (!withStandby) process.stderr.write("k8s_replacement_gap: the spec has no `handover` in this checkout: no standby case\n");
  return writeResult("k8s_replacement_gap", { metric: "k8s_replacement_gap", cases });
}

async function createToReady(core: k8s.CoreV1Api, timeline: PodTimeline, image: string, i: number): Promise<number> {
  const name = `bench-floor-${i}`;
  const sentAt = performance.timeOrigin + performance.now();
  await core.createNamespacedPod({
    namespace: NAMESPACE,
    body: {
      metadata: { name, labels: { [LABELS.managed]: "bench" } },
      spec: {
        terminationGracePeriodSeconds: GRACE_SECONDS,
        enableServiceLinks: false,
        automountServiceAccountToken: false,
        containers: [
          {
            name: "workload",
            image,
            imagePullPolicy: "IfNotPresent",
            env: env.filter((e) => e.name !== "RESEAT_STATE_DIR").concat([{ name: "RESEAT_STATE_DIR", value: "/tmp" }]),
            readinessProbe: probe,
          },
        ],
      },
    },
  });
  const uid = await timeline.readyPod((_uid, podName) => podName === name);
  const took = round(timeline.readyAt.get(uid)! - sentAt);
  await core.deleteNamespacedPod({ name, namespace: NAMESPACE, gracePeriodSeconds: 0 }).catch(() => undefined);
  return took;
}

async function podGone(core: k8s.CoreV1Api, name: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (
    await core.readNamespacedPod({ name, namespace: NAMESPACE }).then(
      () => true,
      () => false,
    )
  ) {
    if (Date.now() > deadline) throw new Error(`pod ${name} not gone within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function ignore409(error: { code?: number }): void {
  if (error.code !== 409) throw error;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${cmd} ${args.slice(0, 3).join(" ")} failed:\n${stderr.slice(-3000)}`))));
  });
}
