// k8s_replacement_gap: on the local two-node cluster, the gap users feel when a PE's image changes —
// old pod told to stop (its deletion requested) → new pod Ready with the state resumed — for reseat
// inside `pulumi up`, side by side in the same run with Kubernetes' own StatefulSet controller doing the
// same job: a one-replica StatefulSet with the same image, readiness probe, grace period and a claim
// template of the same StorageClass, whose pod is replaced on a template change. Both are timed by one
// observer watching the API server (the times its events arrive here), so both carry the same watch
// latency. Also recorded: create-pod → Ready for a fresh pod on its own (the floor). Runs alternate.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { PROJECT_ROOT } from "../src/automation/stack";
import { LABELS } from "../src/backend/backend";
import { median, result, round, writeResult } from "./results";

const RUNS = Math.max(7, Number(process.env.RESEAT_BENCH_RUNS ?? 7));
const NAMESPACE = "reseat-bench-k8s";
const STORAGE_CLASS = `${NAMESPACE}-local`;
const PE = "bench-k8s-gap";
const STS = "bench-sts";
const PORT = 8080;
const IMAGES = ["reseat-demo-workload:v1", "reseat-demo-workload:v2"] as const;
const GRACE_SECONDS = 5;
const CLI = path.join(PROJECT_ROOT, "dist", "src", "cli", "main.js");
const CLUSTER_SH = path.join(PROJECT_ROOT, "scripts", "cluster.sh");

const probe = { httpGet: { port: PORT, path: "/healthz" }, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 3, successThreshold: 1 };
const env = [
  { name: "PORT", value: String(PORT) },
  { name: "LISTEN_HOST", value: "0.0.0.0" },
  { name: "RESEAT_STATE_DIR", value: "/state" },
];

function peSpec(image: string) {
  return {
    peId: PE,
    image,
    env: { PORT: String(PORT), LISTEN_HOST: "0.0.0.0" },
    ports: [{ container: PORT }],
    persistentStore: { kind: "none" },
    stop: { graceSeconds: GRACE_SECONDS },
    readiness: { httpGet: { port: PORT, path: "/healthz" }, timeout: "60s" },
    kubernetes: { namespace: NAMESPACE, storageClassName: STORAGE_CLASS, size: "64Mi" },
  };
}

function statefulSet(image: string): k8s.V1StatefulSet {
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name: STS, namespace: NAMESPACE },
    spec: {
      replicas: 1,
      serviceName: STS,
      selector: { matchLabels: { app: STS } },
      // The default: the pod is replaced on a template change (old pod terminated, then recreated).
      updateStrategy: { type: "RollingUpdate" },
      template: {
        metadata: { labels: { app: STS } },
        spec: {
          terminationGracePeriodSeconds: GRACE_SECONDS,
          enableServiceLinks: false,
          automountServiceAccountToken: false,
          containers: [
            { name: "workload", image, imagePullPolicy: "IfNotPresent", env, readinessProbe: probe, volumeMounts: [{ name: "state", mountPath: "/state" }] },
          ],
        },
      },
      volumeClaimTemplates: [
        {
          metadata: { name: "state" },
          spec: { accessModes: ["ReadWriteOnce"], storageClassName: STORAGE_CLASS, resources: { requests: { storage: "64Mi" } } },
        },
      ],
    },
  };
}

interface Phases {
  oldStopped: number | null;
  oldDeleted: number | null;
  newBound: number | null;
  newRunning: number | null;
  newReady: number | null;
}

/** Per phase, the median over runs (nulls left out). */
function medianPhases(runs: Phases[]): Record<keyof Phases, number | null> {
  const keys = ["oldStopped", "oldDeleted", "newBound", "newRunning", "newReady"] as const;
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
  readonly podOf = new Map<string, string>();
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
        if (pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") && !this.readyAt.has(uid)) this.readyAt.set(uid, now);
      },
      () => undefined,
    );
  }

  stop(): void {
    this.abort?.abort();
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
      newReady: at(this.readyAt, newUid),
    };
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
  const up = (image: string) => {
    fs.writeFileSync(path.join(dir, "stacks", "Pulumi.bench.yaml"), JSON.stringify({ config: { "reseat:processingElements": [peSpec(image)] } }));
    return run(process.execPath, [CLI, "up", "--cwd", dir, "--stack", "bench", "--create", "--json"]);
  };

  const timeline = new PodTimeline();
  await timeline.start(config);
  const reseatGaps: number[] = [];
  const statefulSetGaps: number[] = [];
  const floors: number[] = [];
  const phases: Record<"reseat" | "statefulSet", Phases[]> = { reseat: [], statefulSet: [] };
  try {
    await up(IMAGES[0]);
    await apps.createNamespacedStatefulSet({ namespace: NAMESPACE, body: statefulSet(IMAGES[0]) });
    const firstSts = await timeline.readyPod((_uid, name) => name === `${STS}-0`);
    let stsUid = firstSts;
    for (let i = 0; i < RUNS; i++) {
      const image = IMAGES[(i + 1) % 2]!;

      // reseat: an image change through `pulumi up`.
      const before = new Set([...timeline.podOf.keys()]);
      const oldPe = [...timeline.podOf].find(
        ([uid, name]) => name.startsWith(`reseat-${PE}-g`) && timeline.readyAt.has(uid) && !timeline.deletingAt.has(uid),
      )?.[0];
      await up(image);
      const newPe = await timeline.readyPod((uid, name) => name.startsWith(`reseat-${PE}-g`) && !before.has(uid));
      reseatGaps.push(round(timeline.readyAt.get(newPe)! - timeline.deletingAt.get(oldPe!)!));
      phases.reseat.push(timeline.phases(oldPe!, newPe));

      // Kubernetes' StatefulSet controller: the same image change in the pod template.
      const seenBefore = new Set([...timeline.podOf.keys()]);
      await apps.patchNamespacedStatefulSet(
        { name: STS, namespace: NAMESPACE, body: { spec: { template: { spec: { containers: [{ name: "workload", image }] } } } } },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch),
      );
      const oldSts = stsUid;
      stsUid = await timeline.readyPod((uid, name) => name === `${STS}-0` && !seenBefore.has(uid));
      statefulSetGaps.push(round(timeline.readyAt.get(stsUid)! - timeline.deletingAt.get(oldSts)!));
      phases.statefulSet.push(timeline.phases(oldSts, stsUid));

      // The floor: a fresh pod, same image and probe, created → Ready.
      floors.push(await createToReady(core, timeline, image, i));
      process.stderr.write(
        `run ${i + 1}/${RUNS}: reseat ${reseatGaps.at(-1)} ms ${JSON.stringify(phases.reseat.at(-1))}, StatefulSet ${statefulSetGaps.at(-1)} ms ${JSON.stringify(phases.statefulSet.at(-1))}, create→Ready ${floors.at(-1)} ms\n`,
      );
    }
  } finally {
    timeline.stop();
    await run(process.execPath, [CLI, "destroy", "--cwd", dir, "--stack", "bench", "--json"]).catch(() => undefined);
    await core.deleteNamespace({ name: NAMESPACE }).catch(() => undefined);
  }
  return writeResult(
    "k8s_replacement_gap",
    result("k8s_replacement_gap", "ms", reseatGaps, statefulSetGaps, {
      baselineIs: "one-replica StatefulSet, same image/probe/grace/StorageClass, pod replaced on a template change",
      createToReadyMs: round(median(floors)),
      // ms after the old pod's deletion request, medians: when its containers were reported stopped and
      // its object removed; when the new pod was bound to a node, running, Ready.
      phases: { reseat: medianPhases(phases.reseat), statefulSet: medianPhases(phases.statefulSet) },
      samples: { reseat: reseatGaps, statefulSet: statefulSetGaps, createToReady: floors },
    }),
  );
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
