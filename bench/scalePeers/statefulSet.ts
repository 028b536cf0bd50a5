// The Kubernetes peer: a StatefulSet on the local two-node cluster (scripts/cluster.sh), N replicas of
// the workload, each with a claim from volumeClaimTemplates (a StorageClass of the bench's own on the
// cluster's node-local provisioner, reclaimPolicy Delete, so that its volumes go with the namespace)
// and an HTTP readiness probe. podManagementPolicy Parallel (immutable; it also lets maxUnavailable
// apply), updateStrategy RollingUpdate with maxUnavailable = k (beta in Kubernetes 1.35 behind the
// MaxUnavailableStatefulSet gate: when the API server drops the field, the rollout goes one pod at a
// time, and the result says so). Timed from the template patch to all N pods Ready on the new revision,
// as one watch on the namespace's pods sees it. Everything lives in a namespace of its own.
import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { PROJECT_ROOT } from "../../src/automation/stack";
import { round } from "../results";
import { Peer, PeerContext, PeerRollout } from "./peer";

const run = promisify(execFile);
const NAMESPACE = "reseat-bench-scale";
const STORAGE_CLASS = "reseat-bench-scale-local";
const STS = "member";
const PORT = 8080;
const CLUSTER_SH = path.join(PROJECT_ROOT, "scripts", "cluster.sh");
const READY_TIMEOUT_MS = 900_000;
const GONE_TIMEOUT_MS = 300_000;

/** One watch on the namespace's pods: per pod name, its current pod (uid, revision, Ready and when). */
class PodWatch {
  private readonly pods = new Map<string, { uid: string; revision: string; ready: boolean; readyAt?: number }>();
  private abort?: AbortController;
  private stopped = false;
  /** The most members without a Ready pod at once since the last reset(). */
  maxNotReady = 0;
  private counting = false;

  constructor(private readonly n: number) {}

  async start(config: k8s.KubeConfig): Promise<void> {
    this.abort = await new k8s.Watch(config).watch(
      `/api/v1/namespaces/${NAMESPACE}/pods`,
      {},
      (phase: string, pod: k8s.V1Pod) => {
        const name = pod.metadata!.name!;
        const uid = pod.metadata!.uid!;
        const now = performance.now();
        const known = this.pods.get(name);
        if (phase === "DELETED") {
          if (known?.uid === uid) this.pods.set(name, { ...known, ready: false });
        } else {
          const ready = !pod.metadata?.deletionTimestamp && (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
          const revision = pod.metadata?.labels?.["controller-revision-hash"] ?? "";
          const readyAt = ready ? (known?.uid === uid && known.readyAt !== undefined ? known.readyAt : now) : undefined;
          this.pods.set(name, { uid, revision, ready, readyAt });
        }
        if (this.counting) this.maxNotReady = Math.max(this.maxNotReady, this.notReady());
      },
      // The API server ends a watch after a while: watch again (the new list re-reports every pod;
      // a pod already seen Ready keeps its first Ready time).
      () => {
        if (!this.stopped) void this.start(config).catch(() => undefined);
      },
    );
  }

  private notReady(): number {
    let count = 0;
    for (let i = 0; i < this.n; i++) if (!this.pods.get(`${STS}-${i}`)?.ready) count++;
    return count;
  }

  reset(): void {
    this.maxNotReady = this.notReady();
    this.counting = true;
  }

  /** When the last of the N members became Ready on `revision` (performance.now()), or undefined while one is not. */
  allReadyOn(revision: string): number | undefined {
    let last = 0;
    for (let i = 0; i < this.n; i++) {
      const pod = this.pods.get(`${STS}-${i}`);
      if (!pod?.ready || pod.revision !== revision || pod.readyAt === undefined) return undefined;
      last = Math.max(last, pod.readyAt);
    }
    return last;
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }
}

export function statefulSetPeer(context: PeerContext): Peer {
  let config: k8s.KubeConfig | undefined;
  let watch: PodWatch | undefined;
  let maxUnavailableHonoured: boolean | undefined;
  const clients = () => ({
    core: config!.makeApiClient(k8s.CoreV1Api),
    apps: config!.makeApiClient(k8s.AppsV1Api),
    storage: config!.makeApiClient(k8s.StorageV1Api),
  });

  return {
    name: "statefulset",
    async unavailable() {
      try {
        config = await clusterConfig(context.log);
      } catch (error) {
        return `the local cluster is not available: ${(error as Error).message.split("\n").slice(0, 3).join(" ")}`;
      }
      // kubelet maxPods (110 per node here) bounds how many members fit, next to what already runs.
      const { core } = clients();
      const nodes = (await core.listNode()).items;
      const capacity = nodes.reduce((sum, node) => sum + Number(node.status?.allocatable?.pods ?? 0), 0);
      const pods = (await core.listPodForAllNamespaces()).items.filter(
        (p) => p.spec?.nodeName && p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed" && p.metadata?.namespace !== NAMESPACE,
      );
      if (pods.length + context.n > capacity) {
        return `${context.n} pods do not fit the cluster: its ${nodes.length} nodes allow ${capacity} pods (kubelet maxPods), ${pods.length} run already`;
      }
      return undefined;
    },
    async setUp() {
      const { core, apps, storage } = clients();
      await removeEverything(config!, context.log);
      await run("bash", [CLUSTER_SH, "load-image", ...context.workload.images], { maxBuffer: 1 << 24 });
      await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
      await storage.createStorageClass({
        body: { metadata: { name: STORAGE_CLASS }, provisioner: "reseat.local/node-local", volumeBindingMode: "WaitForFirstConsumer", reclaimPolicy: "Delete" },
      });
      watch = new PodWatch(context.n);
      await watch.start(config!);
      const started = performance.now();
      const created = await apps.createNamespacedStatefulSet({ namespace: NAMESPACE, body: statefulSet(context, context.workload.images[0], 1) });
      // Without the MaxUnavailableStatefulSet gate, the API server drops the field.
      maxUnavailableHonoured = created.spec?.updateStrategy?.rollingUpdate?.maxUnavailable !== undefined;
      const revision = await settledRevision(apps, READY_TIMEOUT_MS);
      await until(() => watch!.allReadyOn(revision), READY_TIMEOUT_MS, `${context.n} pods Ready`);
      context.log(
        `statefulset: ${context.n} pods Ready in ${Math.round(performance.now() - started)} ms (maxUnavailable ${maxUnavailableHonoured ? "accepted" : "dropped by the API server"})`,
      );
    },
    async roll(image, k): Promise<PeerRollout> {
      const { apps } = clients();
      const before = (await apps.readNamespacedStatefulSet({ name: STS, namespace: NAMESPACE })).metadata!.generation!;
      watch!.reset();
      const started = performance.now();
      await apps.patchNamespacedStatefulSet(
        {
          name: STS,
          namespace: NAMESPACE,
          body: {
            spec: {
              updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: k } },
              template: { spec: { containers: [{ name: "workload", image }] } },
            },
          },
        },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch),
      );
      const revision = await settledRevision(apps, READY_TIMEOUT_MS, before);
      const readyAt = await until(() => watch!.allReadyOn(revision), READY_TIMEOUT_MS, `${context.n} pods Ready on revision ${revision}`);
      return {
        ms: round(readyAt - started, 0),
        detail: {
          maxUnavailable: k,
          maxUnavailableHonoured,
          ...(maxUnavailableHonoured
            ? {}
            : { note: "the API server dropped rollingUpdate.maxUnavailable (feature gate MaxUnavailableStatefulSet off): one pod at a time" }),
          maxMembersNotReadyAtOnce: watch!.maxNotReady,
        },
      };
    },
    async tearDown() {
      watch?.stop();
      watch = undefined;
      if (config) await removeEverything(config, context.log).catch((error: Error) => context.log(`statefulset clean-up: ${error.message.slice(0, 300)}`));
    },
  };
}

function statefulSet(context: PeerContext, image: string, maxUnavailable: number): k8s.V1StatefulSet {
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name: STS, namespace: NAMESPACE },
    spec: {
      replicas: context.n,
      serviceName: STS,
      podManagementPolicy: "Parallel",
      selector: { matchLabels: { app: STS } },
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable } },
      template: {
        metadata: { labels: { app: STS } },
        spec: {
          terminationGracePeriodSeconds: 5,
          enableServiceLinks: false,
          automountServiceAccountToken: false,
          containers: [
            {
              name: "workload",
              image,
              imagePullPolicy: "IfNotPresent",
              env: [
                { name: "PORT", value: String(PORT) },
                { name: "LISTEN_HOST", value: "0.0.0.0" },
                { name: "RESEAT_STATE_DIR", value: "/state" },
              ],
              resources: { limits: { memory: `${context.workload.memoryMiB}Mi` } },
              readinessProbe: { httpGet: { port: PORT, path: "/healthz" }, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 3, successThreshold: 1 },
              volumeMounts: [{ name: "state", mountPath: "/state" }],
            },
          ],
        },
      },
      volumeClaimTemplates: [
        {
          metadata: { name: "state" },
          spec: { accessModes: ["ReadWriteOnce"], storageClassName: STORAGE_CLASS, resources: { requests: { storage: "16Mi" } } },
        },
      ],
    },
  };
}

/** The StatefulSet's update revision once the controller has seen generation > `after`. */
async function settledRevision(apps: k8s.AppsV1Api, timeoutMs: number, after = 0): Promise<string> {
  return until(
    async () => {
      const sts = await apps.readNamespacedStatefulSet({ name: STS, namespace: NAMESPACE });
      const generation = sts.metadata?.generation ?? 0;
      return generation > after && (sts.status?.observedGeneration ?? 0) >= generation && sts.status?.updateRevision ? sts.status.updateRevision : undefined;
    },
    timeoutMs,
    "the StatefulSet's update revision",
  );
}

async function until<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`statefulset: no ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The local cluster's kubeconfig (KUBECONFIG when set; else scripts/cluster.sh up, quick when it runs). */
async function clusterConfig(log: (text: string) => void): Promise<k8s.KubeConfig> {
  if (!process.env.KUBECONFIG) {
    log("statefulset: scripts/cluster.sh up (quick when the cluster runs)");
    await run("bash", [CLUSTER_SH, "up"], { maxBuffer: 1 << 24 });
    const status = (await run("bash", [CLUSTER_SH, "status"])).stdout;
    const kubeconfig = /^kubeconfig: (.+)$/m.exec(status)?.[1];
    if (!kubeconfig) throw new Error(`scripts/cluster.sh status named no kubeconfig:\n${status}`);
    process.env.KUBECONFIG = kubeconfig;
  }
  const config = new k8s.KubeConfig();
  config.loadFromDefault();
  return config;
}

/** Deletes the namespace (and so the StatefulSet, pods and claims), waits until it and its volumes are gone, then the StorageClass. */
async function removeEverything(config: k8s.KubeConfig, log: (text: string) => void): Promise<void> {
  const core = config.makeApiClient(k8s.CoreV1Api);
  const storage = config.makeApiClient(k8s.StorageV1Api);
  const gone = (error: { code?: number }) => {
    if (error.code !== 404) throw error;
  };
  await core.deleteNamespace({ name: NAMESPACE }).catch(gone);
  await until(
    () =>
      core.readNamespace({ name: NAMESPACE }).then(
        () => undefined,
        (error: { code?: number }) => (error.code === 404 ? true : undefined),
      ),
    GONE_TIMEOUT_MS,
    "namespace deletion",
  );
  // reclaimPolicy Delete: the provisioner removes each released volume (and its directory on the node).
  const ours = async () => (await core.listPersistentVolume()).items.filter((pv) => pv.spec?.storageClassName === STORAGE_CLASS);
  const leftover = await until(async () => ((await ours()).length === 0 ? 0 : undefined), GONE_TIMEOUT_MS, "volume deletion").catch(
    async () => (await ours()).length,
  );
  if (leftover) log(`statefulset: ${leftover} volumes of ${STORAGE_CLASS} still there after ${GONE_TIMEOUT_MS} ms`);
  await storage.deleteStorageClass({ name: STORAGE_CLASS }).catch(gone);
}
