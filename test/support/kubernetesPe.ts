// Helpers for tests of PEs on the local Kubernetes cluster: a namespace and a StorageClass per test file
// (made and removed by the test), PE specs, the workload reached at its pod's address, and an
// independent observer of pods that watches the API server itself (not reseat's code).
import * as fs from "node:fs";
import * as k8s from "@kubernetes/client-node";
import { KUBECONFIG, clusterScript, kubectl, pollFor } from "./kubernetes";
import * as path from "node:path";
import { ROOT, runProcess, startController } from "./harness";
import { LABELS } from "../../src/backend/backend";

export const NODES = ["node1", "node2"] as const;
export const SESSION_PORT = 8080;

/** Makes the tests' processes (and the Pulumi CLI they start) reach the local cluster. */
export function useCluster(): void {
  process.env.KUBECONFIG = KUBECONFIG;
}

export function api(): { core: k8s.CoreV1Api; config: k8s.KubeConfig } {
  const config = new k8s.KubeConfig();
  config.loadFromFile(KUBECONFIG);
  return { core: config.makeApiClient(k8s.CoreV1Api), config };
}

/**
 * A namespace and a StorageClass of the cluster's node-local provisioner for one test file. The class
 * deletes its volumes with their claims (reclaimPolicy Delete), so a test leaves no data behind.
 */
export async function makeTestNamespace(name: string): Promise<{ namespace: string; storageClass: string; remove: () => Promise<void> }> {
  if (!fs.existsSync(KUBECONFIG)) throw new Error(`no cluster kubeconfig at ${KUBECONFIG}: run scripts/cluster.sh up`);
  const status = await clusterScript("status");
  if (status.code !== 0) throw new Error(`the local cluster is not up (scripts/cluster.sh status): ${status.stderr}${status.stdout}`);
  const storageClass = `${name}-local`;
  await kubectl("create", "namespace", name);
  const manifest = JSON.stringify({
    apiVersion: "storage.k8s.io/v1",
    kind: "StorageClass",
    metadata: { name: storageClass },
    provisioner: "reseat.local/node-local",
    volumeBindingMode: "WaitForFirstConsumer",
    reclaimPolicy: "Delete",
  });
  const file = `/tmp/${storageClass}.json`;
  fs.writeFileSync(file, manifest);
  await kubectl("apply", "-f", file);
  return {
    namespace: name,
    storageClass,
    remove: async () => {
      await kubectl("delete", "namespace", name, "--wait=true", "--timeout=120s").catch(() => undefined);
      // Claims are gone with the namespace; their volumes go with the class's Delete policy.
      await pollFor(`volumes of ${storageClass} deleted`, 120, async () => {
        const pvs = JSON.parse(await kubectl("get", "pv", "-o", "json")) as { items: { spec: { storageClassName?: string } }[] };
        return pvs.items.some((pv) => pv.spec.storageClassName === storageClass) ? undefined : true;
      }).catch(() => undefined);
      await kubectl("delete", "storageclass", storageClass, "--ignore-not-found").catch(() => undefined);
    },
  };
}

/** The session-context service (state library inside) as a PE on Kubernetes. */
export function k8sSessionSpec(peId: string, namespace: string, storageClass: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const { kubernetes, ...rest } = overrides as { kubernetes?: Record<string, unknown> };
  return {
    peId,
    image: "reseat-session-workload:v1",
    env: { PORT: String(SESSION_PORT), LISTEN_HOST: "0.0.0.0" },
    ports: [{ container: SESSION_PORT }],
    commitInterval: "1s",
    stop: { graceSeconds: 10 },
    readiness: { httpGet: { port: SESSION_PORT, path: "/healthz" }, timeout: "90s" },
    kubernetes: {
      namespace,
      storageClassName: storageClass,
      size: "64Mi",
      status: { port: SESSION_PORT, path: "/status" },
      store: { storageClassName: storageClass, size: "64Mi" },
      ...kubernetes,
    },
    ...rest,
  };
}

/**
 * The checkout's images (scripts/images.sh rebuilds only what changed: another checkout on this machine
 * may have built the same tags from other sources meanwhile), then onto every node.
 */
export async function loadImages(...images: string[]): Promise<void> {
  const built = await runProcess("bash", [path.join(ROOT, "scripts", "images.sh")]);
  if (built.code !== 0) throw new Error(`scripts/images.sh failed: ${built.stderr}`);
  const loaded = await clusterScript("load-image", ...images);
  if (loaded.code !== 0) throw new Error(`cluster.sh load-image ${images.join(" ")} failed: ${loaded.stderr}`);
}

export async function readPod(namespace: string, name: string): Promise<k8s.V1Pod | undefined> {
  try {
    return await api().core.readNamespacedPod({ name, namespace });
  } catch (error) {
    if ((error as { code?: number }).code === 404) return undefined;
    throw error;
  }
}

export async function podsOfPe(namespace: string, peId: string): Promise<k8s.V1Pod[]> {
  return (await api().core.listNamespacedPod({ namespace, labelSelector: `${LABELS.peId}=${peId}` })).items;
}

/** The workload's base URL: its pod's address on the node's pod network (a bridge on this machine). */
export async function podUrl(namespace: string, podName: string): Promise<string> {
  const pod = await pollFor(`pod ${podName} has an address`, 60, async () => {
    const p = await readPod(namespace, podName);
    return p?.status?.podIP ? p : undefined;
  });
  return `http://${pod.status!.podIP}:${SESSION_PORT}`;
}

export async function claimOf(namespace: string, name: string): Promise<k8s.V1PersistentVolumeClaim | undefined> {
  try {
    return await api().core.readNamespacedPersistentVolumeClaim({ name, namespace });
  } catch (error) {
    if ((error as { code?: number }).code === 404) return undefined;
    throw error;
  }
}

/** The node a claim's volume lives on (its PersistentVolume's required node affinity). */
export async function nodeOfClaim(namespace: string, name: string): Promise<string | undefined> {
  const claim = await claimOf(namespace, name);
  if (!claim?.spec?.volumeName) return undefined;
  const pv = await api().core.readPersistentVolume({ name: claim.spec.volumeName });
  return pv.spec?.nodeAffinity?.required?.nodeSelectorTerms?.[0]?.matchExpressions?.[0]?.values?.[0];
}

/**
 * An independent observer on the API server: watches the namespace's pods of one PE and counts a pod
 * as possibly running from its first Running report until it is deleted or ends (a pod being deleted
 * gracefully still counts: its containers may run until the API server removes it). Records the most
 * pods of the PE ever possibly running at once.
 */
export async function observePods(namespace: string, peId: string): Promise<{ stop: () => Promise<{ maxRunning: number; podsSeenRunning: string[] }> }> {
  const live = new Set<string>();
  const seen = new Set<string>();
  let maxRunning = 0;
  const watch = new k8s.Watch(api().config);
  const abort = await watch.watch(
    `/api/v1/namespaces/${namespace}/pods`,
    { labelSelector: `${LABELS.peId}=${peId}` },
    (phase: string, pod: k8s.V1Pod) => {
      const name = pod.metadata!.name!;
      const ended = pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
      if (phase === "DELETED" || ended) live.delete(name);
      else if (pod.status?.phase === "Running") {
        live.add(name);
        seen.add(name);
      }
      maxRunning = Math.max(maxRunning, live.size);
    },
    () => undefined,
  );
  return {
    stop: async () => {
      abort.abort();
      return { maxRunning, podsSeenRunning: [...seen] };
    },
  };
}

/** Processes on this machine whose environment says they are the PE's workload (inside a pod). */
export function workloadPids(peId: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = fs.readFileSync(`/proc/${entry}/environ`, "utf8").split("\0");
      if (environ.includes(`RESEAT_PE_ID=${peId}`) && environ.includes("RESEAT_CLAIM_GENERATION=1")) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** `reseat watch --json --kubernetes NAMESPACE` in its own process; its JSON-line events are collected. */
export function startK8sController(namespace: string): ReturnType<typeof startController> {
  return startController({ ...process.env, KUBECONFIG }, ["--kubernetes", namespace]);
}
