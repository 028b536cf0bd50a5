// The Kubernetes side of the standby hand-over: reading a pod's own status endpoint (through the API server's
// pod proxy, never by exec), telling the serving writer from a parked standby among the pods on a claim, and
// where a standby pod may go (the node that holds the claim: ReadWriteOnce lets two pods on one node mount it).
import type { V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import { STATUS_RECORD, type WorkloadStatus } from "@reseat/state/contract";
import { type ExecutableDesired, LABELS, desiredFromLabel } from "../backend";
import * as k8s from "@kubernetes/client-node";
import { type KubernetesClients, rawGet } from "./client";
import { SERVING_CONDITION, observePod, podState } from "./objects";

/** The API server's proxy path to a pod's status endpoint (desired.kubernetes.status). */
export function statusProxyPath(namespace: string, podName: string, endpoint: { port: number; path: string }): string {
  return `/api/v1/namespaces/${namespace}/pods/${podName}:${endpoint.port}/proxy${endpoint.path}`;
}

/** The status endpoint a pod was created with (its desired-spec annotation); undefined without one. */
export function statusEndpointOf(pod: V1Pod): { port: number; path: string } | undefined {
  return desiredFromLabel(pod.metadata?.annotations?.[LABELS.desired])?.kubernetes?.status;
}

/** The PE's pods on a claim whose workload process runs (a terminating pod no longer counts), newest generation first. */
export function runningPodsOnClaim(pods: V1Pod[], volumeName: string): V1Pod[] {
  return pods
    .filter((pod) => pod.metadata?.annotations?.[LABELS.volume] === volumeName && podState(pod).state === "running")
    .sort((a, b) => observePod(b).generation - observePod(a).generation);
}

/**
 * What one pod's workload reports at its status endpoint: undefined when the pod names no endpoint, or does
 * not answer 200 yet (a standby still starting: the proxy answers 503 until the workload listens).
 */
export async function readPodStatus(
  clients: KubernetesClients,
  namespace: string,
  pod: V1Pod,
  endpoint = statusEndpointOf(pod),
): Promise<WorkloadStatus | undefined> {
  if (!endpoint || !pod.metadata?.name) return undefined;
  const response = await rawGet(clients, statusProxyPath(namespace, pod.metadata.name, endpoint)).catch(() => undefined);
  return response?.status === 200 ? STATUS_RECORD.decode(response.body) : undefined;
}

/**
 * The serving writer's status among the running pods on a claim: the newest generation whose status says
 * "serving" (a status without a phase, from a library before the writer lock, decodes as serving). A parked
 * standby (newer, not yet the writer) is passed over: its report is read by readStandbyStatus instead.
 */
export async function readServingStatus(clients: KubernetesClients, namespace: string, pods: V1Pod[], volumeName: string): Promise<WorkloadStatus | undefined> {
  for (const pod of runningPodsOnClaim(pods, volumeName)) {
    const status = await readPodStatus(clients, namespace, pod);
    if (status?.phase === "serving") return status;
  }
  return undefined;
}

/** A standby's parked report, when its pod runs and its endpoint says parked for exactly this generation. */
export async function readParkedStatus(
  clients: KubernetesClients,
  namespace: string,
  pod: V1Pod | undefined,
  desired: ExecutableDesired,
  generation: number,
): Promise<WorkloadStatus | undefined> {
  if (!pod || podState(pod).state !== "running") return undefined;
  const status = await readPodStatus(clients, namespace, pod, desired.kubernetes?.status ?? statusEndpointOf(pod));
  return status?.phase === "parked" && status.generation === generation ? status : undefined;
}

/**
 * A standby runs beside the serving pod on one claim: a ReadWriteOncePod claim admits one pod only (the
 * scheduler would hold the standby Pending until the old pod is gone, the gap standby is meant to avoid).
 */
export function assertClaimAdmitsStandby(claim: V1PersistentVolumeClaim, desired: Pick<ExecutableDesired, "handover" | "peId">): void {
  if (desired.handover !== "standby" || !claim.spec?.accessModes?.includes("ReadWriteOncePod")) return;
  throw new Error(
    `reseat: handover "standby" of PE "${desired.peId}" needs a second pod on claim ${claim.metadata?.name} while the serving one runs, ` +
      `but the claim's accessModes is ReadWriteOncePod (one pod at a time): use handover "staged", or a ReadWriteOnce claim (reseat makes its claims ReadWriteOnce)`,
  );
}

/**
 * Where a standby pod must go when the claim's volume names no node (no node affinity, no node recorded):
 * the node of the pod already running on the claim, which has it mounted.
 */
export function nodeOfRunningPod(pods: V1Pod[], volumeName: string): string | undefined {
  return pods.find((pod) => pod.spec?.volumes?.some((v) => v.persistentVolumeClaim?.claimName === volumeName) && podState(pod).running && pod.spec?.nodeName)
    ?.spec?.nodeName;
}

/** Patches conditions by their type (a pod's status conditions merge by type; the kubelet keeps ones it does not own). */
const STRATEGIC_MERGE_PATCH = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch);

/**
 * Opens a standby hand-over pod's readiness gate once its own status endpoint says it serves as its generation:
 * the kubelet then reports it Ready (with its readinessProbe passing, if it has one). True once marked.
 */
export async function markServingWhenServing(clients: KubernetesClients, namespace: string, pod: V1Pod, desired: ExecutableDesired): Promise<boolean> {
  const status = await readPodStatus(clients, namespace, pod, desired.kubernetes?.status ?? statusEndpointOf(pod));
  if (status?.phase !== "serving" || status.generation !== observePod(pod).generation) return false;
  await clients.core.patchNamespacedPodStatus(
    {
      name: pod.metadata!.name!,
      namespace,
      body: { status: { conditions: [{ type: SERVING_CONDITION, status: "True", reason: "Serving", lastTransitionTime: new Date() }] } },
    },
    STRATEGIC_MERGE_PATCH,
  );
  return true;
}
