// Pure: the Kubernetes objects reseat makes for a PE, and how it reads pods back. No API calls here, so
// the manifests and the pod-state rules are unit-tested without a cluster.
import type { V1Lease, V1PersistentVolume, V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import { CONTROL_RECORD, STORE_PASSWORD_KEY } from "@reseat/state/contract";
import {
  ExecutableDesired,
  LABELS,
  LeaseRecord,
  ObservedExecutable,
  STORE_MOUNT,
  VolumeInfo,
  desiredLabel,
  generationFromName,
  secretEnvNames,
  storeEnv,
  workloadEnv,
} from "../backend";

/** Where the PE's record ConfigMap (the control record) is mounted: the contract's controlFile env names it. */
export const CONTROL_MOUNT = "/etc/reseat/control";
/** Where the store password Secret is mounted (never in the claim). */
export const SECRET_MOUNT = "/etc/reseat/secrets";
export const PASSWORD_KEY = STORE_PASSWORD_KEY;
/**
 * A standby hand-over's pods are Ready only once reseat has seen the pod's workload serve (spec.readinessGates):
 * a parked standby is never Ready (so never a Service's endpoint), whatever its readinessProbe answers, and
 * Ready follows the take-over at once instead of at the probe's next period.
 */
export const SERVING_CONDITION = "reseat.io/serving";
/** Holds a prepared pod back from the scheduler until reseat starts it (spec.schedulingGates). */
export const START_GATE = "reseat.io/start";
export const WORKLOAD_CONTAINER = "workload";
/** The control record's key in the PE's record ConfigMap, and its file name where the pod mounts it. */
export const CONTROL_KEY = CONTROL_RECORD.file.slice(CONTROL_RECORD.file.lastIndexOf("/") + 1);
/** Annotations reseat keeps on the claim and the record. */
export const ANNOTATIONS = {
  /** On the claim: the newest generation (the fencing token handed to the next pod). */
  generation: LABELS.generation,
  generationAt: "io.reseat.generation-updated-at",
  /** On the claim: the node its last pod ran on (when the volume has no node affinity of its own). */
  node: "io.reseat.node",
  /** On the record: the pod reseat last created and has not removed; a vanished one is a failure. */
  pod: "io.reseat.pod",
  /** On the record: that pod's spec hash (a vanished pod is still found by the spec it ran). */
  podSpecHash: "io.reseat.pod-spec-hash",
  leaseRenewals: "io.reseat.lease-renewals",
} as const;

/** The PE's record: a ConfigMap beside its claim (control.json mounted in the pod, desired.json, controller.json). */
export function recordName(volumeName: string): string {
  return `${volumeName}-reseat`;
}

export function passwordSecretName(volumeName: string): string {
  return `${volumeName}-store-password`;
}

/**
 * The Secret holding a PE's secret env values, one key per value and spec hash (secretEnvKey): a pod
 * reads exactly the values of its own spec, so a revert or a re-creation of an older spec never gets
 * a newer spec's values, and the values of a spec are written once, whoever re-creates it.
 */
export function envSecretName(volumeName: string): string {
  return `${volumeName}-secret-env`;
}

/** The key of one secret env value of one spec (env names are Secret-key safe: letters, digits, '_'). */
export function secretEnvKey(specHash: string, name: string): string {
  return `${specHash}.${name}`;
}

/** The spec hash a key of the env Secret belongs to. */
export function specHashOfSecretEnvKey(key: string): string {
  return key.slice(0, key.indexOf("."));
}

export function leaseObjectName(name: string): string {
  return `reseat-${name}`;
}

/** Pods are named reseat-<pe>-g<n>: the PE id is read back from the name when the pod is gone. */
export function peIdFromPodName(name: string): string | undefined {
  const match = /^reseat-(.+)-g\d+$/.exec(name);
  return match?.[1];
}

/** The bound volume's node, from its required node affinity on kubernetes.io/hostname. */
export function nodeOfVolume(pv: V1PersistentVolume | undefined): string | undefined {
  for (const term of pv?.spec?.nodeAffinity?.required?.nodeSelectorTerms ?? []) {
    for (const expression of term.matchExpressions ?? []) {
      if (expression.key === "kubernetes.io/hostname" && expression.operator === "In" && expression.values?.length === 1) return expression.values[0];
    }
  }
  return undefined;
}

/**
 * A PE's first pod (its claim not yet on a node) prefers the node with the fewest reseat pods of the
 * namespace, so that a fleet's or group's members spread over the nodes; a soft preference (a node
 * that is full or gone takes nothing from the others). Later pods follow their claim's node.
 */
const FIRST_POD_SPREAD = [
  {
    maxSkew: 1,
    topologyKey: "kubernetes.io/hostname",
    whenUnsatisfiable: "ScheduleAnyway",
    labelSelector: { matchLabels: { [LABELS.role]: "executable" } },
  },
];

export interface PodIdentity {
  name: string;
  generation: number;
  specHash: string;
}

/**
 * The pod of one generation: bound to the kept claim, required on the claim's node when known (the first
 * pod is placed by the scheduler), gated so that creating it does not start it, restartPolicy Never
 * (reseat is the restart policy), the generation as RESEAT_GENERATION, the control file from the record
 * ConfigMap, the store password and secret env values from Secrets — nothing is written into the claim
 * from outside, and neither the pod spec nor its annotations hold a secret.
 */
export function podManifest(desired: ExecutableDesired, identity: PodIdentity, node: string | undefined): V1Pod {
  const store = desired.store;
  const reseatStore = storeEnv(store, desired.mountPath, `${SECRET_MOUNT}/${PASSWORD_KEY}`);
  const env = workloadEnv(desired, identity.generation, reseatStore, {
    controlFile: `${CONTROL_MOUNT}/${CONTROL_KEY}`,
    // Nobody writes meta into the claim from outside: the state library records the generation itself.
    claimGeneration: true,
  });
  const secret = new Set(secretEnvNames(desired));
  const volumes: NonNullable<NonNullable<V1Pod["spec"]>["volumes"]> = [
    { name: "state", persistentVolumeClaim: { claimName: desired.volumeName } },
    // optional: the record may not hold the control record yet; the library falls back to the env's interval.
    { name: "control", configMap: { name: recordName(desired.volumeName), optional: true, items: [{ key: CONTROL_KEY, path: CONTROL_KEY }] } },
  ];
  const mounts: { name: string; mountPath: string; readOnly?: boolean }[] = [
    { name: "state", mountPath: desired.mountPath },
    { name: "control", mountPath: CONTROL_MOUNT, readOnly: true },
  ];
  if (store.kind === "directory" && store.volume) {
    volumes.push({ name: "store", persistentVolumeClaim: { claimName: store.volume } });
    mounts.push({ name: "store", mountPath: STORE_MOUNT });
  }
  if (store.kind === "postgres") {
    volumes.push({
      name: "store-password",
      secret: { secretName: passwordSecretName(desired.volumeName), defaultMode: 0o400, items: [{ key: PASSWORD_KEY, path: PASSWORD_KEY }] },
    });
    mounts.push({ name: "store-password", mountPath: SECRET_MOUNT, readOnly: true });
  }
  const httpGet = desired.readiness?.httpGet;
  const securityContext = podSecurityContext(desired);
  const requiredNode = node
    ? {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: [node] }] }],
          },
        },
      }
    : undefined;
  const limits: Record<string, string> = {};
  if (desired.resources.memoryMiB) limits.memory = `${desired.resources.memoryMiB}Mi`;
  if (desired.resources.cpus) limits.cpu = `${Math.round(desired.resources.cpus * 1000)}m`;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: identity.name,
      labels: {
        [LABELS.managed]: "true",
        [LABELS.role]: "executable",
        [LABELS.peId]: desired.peId,
        [LABELS.generation]: String(identity.generation),
        [LABELS.specHash]: identity.specHash,
      },
      annotations: {
        [LABELS.volume]: desired.volumeName,
        [LABELS.desired]: desiredLabel(desired),
        "io.reseat.image": desired.imageRef,
        ...(desired.owner ? { [LABELS.owner]: desired.owner } : {}),
      },
    },
    spec: {
      schedulingGates: [{ name: START_GATE }],
      ...(desired.handover === "standby" ? { readinessGates: [{ conditionType: SERVING_CONDITION }] } : {}),
      restartPolicy: "Never",
      terminationGracePeriodSeconds: desired.stop.graceSeconds,
      enableServiceLinks: false,
      automountServiceAccountToken: false,
      ...(securityContext ? { securityContext } : {}),
      ...(desired.kubernetes?.nodeSelector ? { nodeSelector: desired.kubernetes.nodeSelector } : {}),
      ...(requiredNode ? { affinity: requiredNode } : { topologySpreadConstraints: FIRST_POD_SPREAD }),
      containers: [
        {
          name: WORKLOAD_CONTAINER,
          image: desired.imageRef,
          imagePullPolicy: "IfNotPresent",
          // Docker's Cmd replaces the image's CMD and keeps its ENTRYPOINT: that is a container's args.
          ...(desired.command ? { args: desired.command } : {}),
          env: Object.entries(env).map(([name, value]) =>
            secret.has(name) && value === desired.env[name]
              ? { name, valueFrom: { secretKeyRef: { name: envSecretName(desired.volumeName), key: secretEnvKey(identity.specHash, name) } } }
              : { name, value },
          ),
          ports: desired.ports.map((p) => ({ containerPort: p.container, protocol: p.protocol.toUpperCase() })),
          ...(Object.keys(limits).length ? { resources: { limits } } : {}),
          volumeMounts: mounts,
          ...(httpGet
            ? {
                readinessProbe: {
                  httpGet: { port: httpGet.port, path: httpGet.path },
                  periodSeconds: 1,
                  timeoutSeconds: 1,
                  failureThreshold: 3,
                  successThreshold: 1,
                },
              }
            : {}),
          terminationMessagePolicy: "FallbackToLogsOnError",
        },
      ],
      volumes,
    },
  };
}

/**
 * The workload's user (spec runAsUser/runAsGroup) as the pod's securityContext: the process runs as it,
 * and the kubelet gives the pod's volumes (the claim, the store claim, the password Secret) to its group
 * at mount (fsGroup; the node-local claims are `local` volumes, which support it). That is how a
 * non-root workload owns its state on Kubernetes, where nothing writes into a claim from outside.
 * Without a spec user: none (the image's USER, as before).
 */
export function podSecurityContext(desired: Pick<ExecutableDesired, "user">): NonNullable<V1Pod["spec"]>["securityContext"] | undefined {
  if (!desired.user) return undefined;
  return { runAsUser: desired.user.uid, runAsGroup: desired.user.gid, fsGroup: desired.user.gid, ...(desired.user.uid !== 0 ? { runAsNonRoot: true } : {}) };
}

/** A pod as the seam's ObservedExecutable. Anything that might still run a process counts as running. */
export function observePod(pod: V1Pod): ObservedExecutable {
  const name = pod.metadata?.name ?? "";
  const labels = pod.metadata?.labels ?? {};
  const annotations = pod.metadata?.annotations ?? {};
  const container = pod.status?.containerStatuses?.find((c) => c.name === WORKLOAD_CONTAINER);
  const terminated = container?.state?.terminated;
  const { state, running } = podState(pod);
  return {
    id: name,
    name,
    peId: labels[LABELS.peId] ?? "",
    owner: annotations[LABELS.owner],
    generation: Number(labels[LABELS.generation] ?? generationFromName(name)),
    specHash: labels[LABELS.specHash] ?? "",
    volumeName: annotations[LABELS.volume] ?? "",
    state,
    running,
    startedAt: container?.state?.running?.startedAt ? new Date(container.state.running.startedAt).toISOString() : undefined,
    exitCode: terminated?.exitCode,
    restartCount: container?.restartCount,
    host: pod.spec?.nodeName,
  };
}

/**
 * created: gated, not started. pending: scheduled or waiting for its node, no process yet. cannot-start: its
 * container waits for what waiting will not bring (HOPELESS_WAITING: a bad image or config). running.
 * terminating: deletion asked, processes may still run. exited/failed: terminal. unknown: the node stopped
 * reporting — its process may still run, so it counts as running (reseat waits for the node, see docs).
 */
export function podState(pod: V1Pod): { state: string; running: boolean } {
  const phase = pod.status?.phase ?? "Pending";
  if (phase === "Succeeded") return { state: "exited", running: false };
  if (phase === "Failed") return { state: "failed", running: false };
  if (pod.metadata?.deletionTimestamp) return { state: "terminating", running: true };
  if (phase === "Unknown") return { state: "unknown", running: true };
  // "created" as on Docker: prepared, never started (the routine treats such an executable as never run).
  if (pod.spec?.schedulingGates?.length) return { state: "created", running: false };
  const container = pod.status?.containerStatuses?.find((c) => c.name === WORKLOAD_CONTAINER);
  if (container?.state?.terminated) return { state: "exited", running: false };
  if (phase === "Running" && container?.state?.running) return { state: "running", running: true };
  // Its container will not start by waiting (a bad image, a bad config): no process ran, none will (HOPELESS_WAITING).
  if (container?.state?.waiting?.reason && HOPELESS_WAITING.has(container.state.waiting.reason)) return { state: "cannot-start", running: false };
  return { state: "pending", running: false };
}

export function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** A standby hand-over's pod that reseat has not yet seen serve (its readiness gate is not True). */
export function awaitsServingMark(pod: V1Pod): boolean {
  if (!pod.spec?.readinessGates?.some((g) => g.conditionType === SERVING_CONDITION)) return false;
  return !pod.status?.conditions?.some((c) => c.type === SERVING_CONDITION && c.status === "True");
}

/**
 * Waiting reasons that will not resolve by waiting: the create fails at once with the reason. A first
 * ErrImagePull is retried by the kubelet; its ImagePullBackOff that follows is final here.
 */
export const HOPELESS_WAITING = new Set([
  "ImagePullBackOff",
  "ErrImageNeverPull",
  "InvalidImageName",
  "CreateContainerConfigError",
  "CreateContainerError",
  "RunContainerError",
]);

/** Why a pod is not ready yet, in the words the API server and kubelet use. */
export function podProblem(pod: V1Pod): string {
  const parts: string[] = [`phase ${pod.status?.phase ?? "Pending"}`];
  if (pod.spec?.schedulingGates?.length) parts.push("held by its scheduling gate");
  const scheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
  if (scheduled?.status === "False") parts.push(`not scheduled: ${scheduled.message ?? scheduled.reason ?? "?"}`);
  if (pod.spec?.nodeName) parts.push(`on node ${pod.spec.nodeName}`);
  const container = pod.status?.containerStatuses?.find((c) => c.name === WORKLOAD_CONTAINER);
  const waiting = container?.state?.waiting;
  if (waiting) parts.push(`container waiting: ${waiting.reason ?? ""}${waiting.message ? ` (${waiting.message})` : ""}`);
  const ready = pod.status?.conditions?.find((c) => c.type === "Ready");
  if (awaitsServingMark(pod) && container?.state?.running) parts.push(`running, not yet seen serving (its readiness gate ${SERVING_CONDITION})`);
  else if (ready?.status === "False" && container?.state?.running) parts.push("running but not ready (readinessProbe failing)");
  return parts.join("; ");
}

/** The claim as the seam's VolumeInfo. */
export function volumeOfClaim(pvc: V1PersistentVolumeClaim): VolumeInfo {
  return {
    name: pvc.metadata?.name ?? "",
    driver: pvc.spec?.storageClassName ?? "",
    peId: pvc.metadata?.labels?.[LABELS.peId],
    owner: pvc.metadata?.annotations?.[LABELS.owner],
    createdAt: pvc.metadata?.creationTimestamp ? new Date(pvc.metadata.creationTimestamp).toISOString() : undefined,
  };
}

/** A coordination.k8s.io Lease as the seam's LeaseRecord: the token is the object's uid. */
export function leaseRecordOf(name: string, lease: V1Lease): LeaseRecord {
  return {
    name,
    holder: lease.spec?.holderIdentity ?? "",
    token: lease.metadata?.uid ?? "",
    leaseMs: Number(lease.metadata?.annotations?.[LABELS.leaseMs] ?? (lease.spec?.leaseDurationSeconds ?? 0) * 1000),
    renewals: Number(lease.metadata?.annotations?.[ANNOTATIONS.leaseRenewals] ?? 0),
    renewedAt: lease.spec?.renewTime ? new Date(lease.spec.renewTime).toISOString() : "",
  };
}
