// From a validated spec to what the backend runs. Shared by the component, the controller, group
// rollouts and benchmarks, so that all of them run the very same executable for the same spec.
import type { EngineTarget, ExecutableDesired, KubernetesPodDesired, StoreDesired } from "../backend/backend";
import { DEFAULT_STORE_VOLUME, ProcessingElementSpec, volumeNameOf } from "./processingElement";

export function storeDesired(spec: ProcessingElementSpec, password?: string): StoreDesired {
  const store = spec.persistentStore;
  switch (store.kind) {
    case "none":
      return { kind: "none" };
    case "directory": {
      // On Kubernetes the directory store is a claim of its own per PE (see storeClaimNameOf).
      const where = spec.kubernetes
        ? { volume: storeClaimNameOf(spec) }
        : store.hostPath
          ? { hostPath: store.hostPath }
          : { volume: store.volume ?? DEFAULT_STORE_VOLUME };
      return { kind: "directory", ...where, keep: store.keep, ...allowEmptyStartOf(store) };
    }
    case "postgres":
      if (password === undefined) throw new Error(`persistentStore.password: the PostgreSQL password of PE "${spec.peId}" is needed here`);
      return { kind: "postgres", host: store.host, port: store.port, database: store.database, user: store.user, table: store.table, keep: store.keep, ...allowEmptyStartOf(store), password };
  }
}

/** Only when set: the default leaves the desired spec (and its hash) as before the field existed. */
function allowEmptyStartOf(store: { allowEmptyStart: boolean }): { allowEmptyStart?: true } {
  return store.allowEmptyStart ? { allowEmptyStart: true } : {};
}

/** Everything but the resolved image id and the store (which may carry a secret). */
export function executableFields(spec: ProcessingElementSpec): Omit<ExecutableDesired, "imageId" | "store"> {
  return {
    peId: spec.peId,
    imageRef: spec.image,
    command: spec.command,
    env: spec.env,
    ports: spec.ports,
    network: spec.network,
    resources: spec.resources,
    volumeName: volumeNameOf(spec),
    mountPath: spec.volume.mountPath,
    stop: spec.stop,
    readiness: spec.readiness,
    commitIntervalMs: spec.commitInterval,
    failureBackoff: { initialMs: spec.failureBackoff.initial, maxMs: spec.failureBackoff.max, resetAfterMs: spec.failureBackoff.resetAfter },
    onFailedReplacement: spec.onFailedReplacement,
    ...(spec.runAsUser === undefined ? {} : { user: { uid: spec.runAsUser, gid: spec.runAsGroup ?? spec.runAsUser } }),
    engine: engineTarget(spec),
    ...(spec.kubernetes ? { kubernetes: kubernetesPod(spec.kubernetes) } : {}),
  };
}

function kubernetesPod(k8s: NonNullable<ProcessingElementSpec["kubernetes"]>): KubernetesPodDesired {
  return { ...(k8s.nodeSelector ? { nodeSelector: k8s.nodeSelector } : {}), ...(k8s.status ? { status: k8s.status } : {}) };
}

/** The directory store's claim of a PE on Kubernetes: one per PE, beside its state claim. */
export function storeClaimNameOf(spec: Pick<ProcessingElementSpec, "peId" | "volume">): string {
  return `${volumeNameOf(spec)}-store`;
}

export function executableDesired(spec: ProcessingElementSpec, imageId: string, storePassword?: string): ExecutableDesired {
  return { ...executableFields(spec), imageId, store: storeDesired(spec, storePassword) };
}

/** Where the PE runs: recorded with its resources, so every later operation reaches the same engine. */
export function engineTarget(spec: ProcessingElementSpec): EngineTarget {
  if (spec.kubernetes) return { kind: "kubernetes", namespace: spec.kubernetes.namespace, ...(spec.kubernetes.context ? { context: spec.kubernetes.context } : {}) };
  return spec.docker?.host ? { kind: "docker", host: spec.docker.host } : { kind: "docker" };
}

/** The one owner a PE's state volume is claimed for: no other PE, stack or program may bind it. */
export function volumeOwner(project: string, stack: string, peId: string): string {
  return `${project}/${stack}/${peId}`;
}
