// The session workload on the local cluster for the hand-over benches: reseat's PE spec, the same workload as a
// one-replica StatefulSet and as a bare pod (the peers), a Service in front of each (the client goes through the
// cluster's kube-proxy, as a user's traffic does: only Ready pods get requests), and the cluster's kubeconfig.
import { spawn } from "node:child_process";
import * as path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { PROJECT_ROOT } from "../src/automation/stack";
import { LABELS } from "../src/backend/backend";

export const SESSION_PORT = 8080;
export const GRACE_SECONDS = 5;
const CLUSTER_SH = path.join(PROJECT_ROOT, "scripts", "cluster.sh");

export interface Cluster {
  config: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  storage: k8s.StorageV1Api;
}

/** KUBECONFIG as scripts/bench.sh sets it for k8s_* metrics, else the local cluster's (undefined when it is not up). */
export async function localCluster(): Promise<Cluster | undefined> {
  if (!process.env.KUBECONFIG) {
    const status = await run("bash", [CLUSTER_SH, "status"]).catch(() => undefined);
    const kubeconfig = status && /^kubeconfig: (.*)$/m.exec(status)?.[1];
    if (!kubeconfig) return undefined;
    process.env.KUBECONFIG = kubeconfig; // the reseat CLI and the backend read it too
  }
  const config = new k8s.KubeConfig();
  config.loadFromDefault();
  return { config, core: config.makeApiClient(k8s.CoreV1Api), apps: config.makeApiClient(k8s.AppsV1Api), storage: config.makeApiClient(k8s.StorageV1Api) };
}

/** A namespace and a StorageClass of the node-local provisioner (volumes deleted with their claims). */
export async function benchNamespace(cluster: Cluster, namespace: string, images: readonly string[]): Promise<string> {
  await run("bash", [CLUSTER_SH, "load-image", ...images]);
  const storageClass = `${namespace}-local`;
  await cluster.core.createNamespace({ body: { metadata: { name: namespace } } }).catch(ignore409);
  await cluster.storage
    .createStorageClass({
      body: { metadata: { name: storageClass }, provisioner: "reseat.local/node-local", volumeBindingMode: "WaitForFirstConsumer", reclaimPolicy: "Delete" },
    })
    .catch(ignore409);
  return storageClass;
}

/** The session workload as a reseat PE on Kubernetes. */
export function k8sSessionPeSpec(peId: string, image: string, namespace: string, storageClass: string, handover?: "standby" | "staged") {
  return {
    peId,
    image,
    env: { PORT: String(SESSION_PORT), LISTEN_HOST: "0.0.0.0" },
    ports: [{ container: SESSION_PORT }],
    persistentStore: { kind: "none" },
    commitInterval: "1s",
    stop: { graceSeconds: GRACE_SECONDS },
    readiness: { httpGet: { port: SESSION_PORT, path: "/healthz" }, timeout: "60s" },
    kubernetes: { namespace, storageClassName: storageClass, size: "64Mi", status: { port: SESSION_PORT, path: "/status" } },
    ...(handover ? { handover } : {}),
  };
}

/** What reseat gives the workload, given by hand to the peers: the state library on /state, no persistent store, generation 1. */
function sessionEnv(peId: string): k8s.V1EnvVar[] {
  return [
    { name: "PORT", value: String(SESSION_PORT) },
    { name: "LISTEN_HOST", value: "0.0.0.0" },
    { name: "RESEAT_PE_ID", value: peId },
    { name: "RESEAT_STATE_DIR", value: "/state" },
    { name: "RESEAT_GENERATION", value: "1" },
    { name: "RESEAT_CLAIM_GENERATION", value: "1" },
    { name: "RESEAT_COMMIT_INTERVAL_MS", value: "1000" },
  ];
}

export const readinessProbe: k8s.V1Probe = {
  httpGet: { port: SESSION_PORT, path: "/healthz" },
  periodSeconds: 1,
  timeoutSeconds: 1,
  failureThreshold: 3,
  successThreshold: 1,
};

function sessionPodSpec(peId: string, image: string, volumes: k8s.V1Volume[] = []): k8s.V1PodSpec {
  return {
    terminationGracePeriodSeconds: GRACE_SECONDS,
    enableServiceLinks: false,
    automountServiceAccountToken: false,
    // The image's user (1000) owns what it writes on the claim (the node-local claims are `local` volumes: fsGroup applies).
    securityContext: { runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000 },
    containers: [
      {
        name: "workload",
        image,
        imagePullPolicy: "IfNotPresent",
        env: sessionEnv(peId),
        readinessProbe,
        ports: [{ containerPort: SESSION_PORT }],
        volumeMounts: [{ name: "state", mountPath: "/state" }],
      },
    ],
    volumes,
  };
}

/** A one-replica StatefulSet of the session workload: its pod replaced (deleted, then recreated) on a template change. */
export function sessionStatefulSet(name: string, image: string, namespace: string, storageClass: string): k8s.V1StatefulSet {
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name, namespace },
    spec: {
      replicas: 1,
      serviceName: name,
      selector: { matchLabels: { app: name } },
      // The default: the one pod is terminated, then recreated (maxUnavailable does not change that for one replica).
      updateStrategy: { type: "RollingUpdate" },
      template: { metadata: { labels: { app: name } }, spec: sessionPodSpec(name, image) },
      volumeClaimTemplates: [
        {
          metadata: { name: "state" },
          spec: { accessModes: ["ReadWriteOnce"], storageClassName: storageClass, resources: { requests: { storage: "64Mi" } } },
        },
      ],
    },
  };
}

/** A claim for bare pods of the session workload (the in-place swap's volume, kept across its pods). */
export async function createBareClaim(cluster: Cluster, claim: string, namespace: string, storageClass: string): Promise<void> {
  await cluster.core.createNamespacedPersistentVolumeClaim({
    namespace,
    body: {
      metadata: { name: claim },
      spec: { accessModes: ["ReadWriteOnce"], storageClassName: storageClass, resources: { requests: { storage: "64Mi" } } },
    },
  });
}

/** A bare pod of the session workload on `claim`: the kubelet swaps its image in place when containers[0].image is patched. */
export async function createBarePod(cluster: Cluster, name: string, claim: string, image: string, namespace: string): Promise<void> {
  await cluster.core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name, labels: { app: name, [LABELS.managed]: "bench" } },
      spec: sessionPodSpec(name, image, [{ name: "state", persistentVolumeClaim: { claimName: claim } }]),
    },
  });
}

/** A ClusterIP Service in front of the pods `selector` picks (Ready ones only, through kube-proxy); returns its base URL. */
export async function createService(cluster: Cluster, name: string, namespace: string, selector: Record<string, string>): Promise<string> {
  const service = await cluster.core.createNamespacedService({
    namespace,
    body: { metadata: { name }, spec: { selector, ports: [{ port: SESSION_PORT, targetPort: SESSION_PORT }] } },
  });
  return `http://${service.spec!.clusterIP}:${SESSION_PORT}`;
}

export function ignore409(error: { code?: number }): void {
  if (error.code !== 409) throw error;
}

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${cmd} ${args.slice(0, 3).join(" ")} failed:\n${stderr.slice(-3000)}`))));
  });
}
