// From a validated spec to what the backend runs. Shared by the component, the controller, group
// rollouts and benchmarks, so that all of them run the very same executable for the same spec.
import type { EngineTarget, ExecutableDesired, KubernetesPodDesired, StoreDesired } from "@reseat/state/contract";
import { DEFAULT_STORE_VOLUME, ProcessingElementSpec, volumeNameOf } from "./processingElement";
import type { SpecField } from "./inputs";

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
      return {
        kind: "postgres",
        host: store.host,
        port: store.port,
        database: store.database,
        user: store.user,
        table: store.table,
        keep: store.keep,
        ...allowEmptyStartOf(store),
        password,
      };
  }
}

/** Only when set: the default leaves the desired spec (and its hash) as before the field existed. */
function allowEmptyStartOf(store: { allowEmptyStart: boolean }): { allowEmptyStart?: true } {
  return store.allowEmptyStart ? { allowEmptyStart: true } : {};
}

/**
 * The Executable's inputs that come from the spec alone (everything but the image id, the store, the
 * owner, and which env values are secret: only the program's Outputs say that, see secretEnvOf).
 */
export type ExecutableSpecInputs = Omit<ExecutableDesired, "imageId" | "store" | "owner" | "declaredBy" | "secretEnv">;

/** How one Executable input is computed: from which spec fields (only those are read), and how. */
interface Source<T> {
  from: readonly SpecField[];
  value: (spec: ProcessingElementSpec) => T;
}
const source = <T>(from: readonly SpecField[], value: (spec: ProcessingElementSpec) => T): Source<T> => ({ from, value });

/**
 * Each Executable input by the spec fields it is computed from. A program may give any field as an
 * Output: an input then waits for (and is secret or unknown with) exactly its own fields, so a secret
 * env value makes `env` secret and leaves `imageRef` readable, and an image built by another resource
 * leaves `env` known during a preview.
 */
export const EXECUTABLE_INPUT_SOURCES: { [K in keyof Required<ExecutableSpecInputs>]: Source<ExecutableSpecInputs[K]> } = {
  peId: source(["peId"], (spec) => spec.peId),
  imageRef: source(["image"], (spec) => spec.image),
  command: source(["command"], (spec) => spec.command),
  env: source(["env"], (spec) => spec.env),
  ports: source(["ports"], (spec) => spec.ports),
  network: source(["network"], (spec) => spec.network),
  resources: source(["resources"], (spec) => spec.resources),
  volumeName: source(["peId", "volume"], (spec) => volumeNameOf(spec)),
  mountPath: source(["volume"], (spec) => spec.volume.mountPath),
  stop: source(["stop"], (spec) => spec.stop),
  readiness: source(["readiness"], (spec) => spec.readiness),
  commitIntervalMs: source(["commitInterval"], (spec) => spec.commitInterval),
  failureBackoff: source(["failureBackoff"], (spec) => ({
    initialMs: spec.failureBackoff.initial,
    maxMs: spec.failureBackoff.max,
    resetAfterMs: spec.failureBackoff.resetAfter,
  })),
  onFailedReplacement: source(["onFailedReplacement"], (spec) => spec.onFailedReplacement),
  // "staged" is the routine without the field: left out, so every existing spec hash stays as it was.
  handover: source(["handover"], (spec) => (spec.handover === "standby" ? "standby" : undefined)),
  user: source(["runAsUser", "runAsGroup"], (spec) =>
    spec.runAsUser === undefined ? undefined : { uid: spec.runAsUser, gid: spec.runAsGroup ?? spec.runAsUser },
  ),
  engine: source(["kubernetes", "docker"], (spec) => engineTarget(spec)),
  kubernetes: source(["kubernetes"], (spec) => (spec.kubernetes ? kubernetesPod(spec.kubernetes) : undefined)),
};

/** The store's input reads these fields (and a password, given apart). */
export const STORE_SOURCE_FIELDS: readonly SpecField[] = ["persistentStore", "kubernetes", "peId", "volume"];

/** Inputs left out when absent (as they always were: the spec hash and the recorded inputs stay as before). */
const ABSENT_WHEN_UNSET = new Set<string>(["user", "kubernetes", "handover"]);

/** Everything but the resolved image id and the store (which may carry a secret). */
export function executableFields(spec: ProcessingElementSpec): ExecutableSpecInputs {
  return Object.fromEntries(
    Object.entries(EXECUTABLE_INPUT_SOURCES)
      .map(([input, { value }]) => [input, value(spec)] as const)
      .filter(([input, value]) => value !== undefined || !ABSENT_WHEN_UNSET.has(input)),
  ) as unknown as ExecutableSpecInputs;
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
export function engineTarget(spec: Pick<ProcessingElementSpec, "kubernetes" | "docker">): EngineTarget {
  if (spec.kubernetes)
    return { kind: "kubernetes", namespace: spec.kubernetes.namespace, ...(spec.kubernetes.context ? { context: spec.kubernetes.context } : {}) };
  return spec.docker?.host ? { kind: "docker", host: spec.docker.host } : { kind: "docker" };
}

/** The one owner a PE's state volume is claimed for: no other PE, stack or program may bind it. */
export function volumeOwner(project: string, stack: string, peId: string): string {
  return `${project}/${stack}/${peId}`;
}
