// The engine seam: the shapes every backend speaks (desired and observed executables, volumes,
// leases, events) and the interface the replacement routine, provider and controller use.

/** The desired executable, fully resolved (image id known), as the provider and controller pass it. */
export interface ExecutableDesired {
  peId: string;
  /** Who owns the PE's state volume: "<project>/<stack>/<peId>" (absent in state written before claims). */
  owner?: string;
  imageRef: string;
  imageId: string;
  command?: string[];
  env: Record<string, string>;
  ports: { container: number; host?: number; hostIp: string; protocol: "tcp" | "udp" }[];
  network: "bridge" | "host" | "none";
  resources: { memoryMiB?: number; cpus?: number };
  volumeName: string;
  mountPath: string;
  stop: { signal: string; graceSeconds: number };
  readiness?: { httpGet?: { port: number; path: string }; logLine?: string; timeout: number };
  commitIntervalMs: number;
  /** Where the workload commits its state; never the state volume. */
  store: StoreDesired;
  /** How the failure controller paces re-creation after repeated failures. */
  failureBackoff?: FailureBackoff;
  /** When a new executable does not become ready: serve the previous spec again (default) or leave the PE stopped. */
  onFailedReplacement?: "revert" | "leave-stopped";
  /** Which engine runs the PE (absent: the local Docker Engine, or DOCKER_HOST). */
  engine?: EngineTarget;
  /** Pod-level settings of a PE on Kubernetes (absent on Docker). */
  kubernetes?: KubernetesPodDesired;
  /** The workload's user (spec runAsUser/runAsGroup); absent: the image's USER. */
  user?: FileOwner;
  /**
   * The Pulumi resource (an Executable or a Fleet) this executable serves: a token that resource's
   * `create` mints, carried by every executable made on its behalf (controller re-creations, reverts).
   * A replaced resource's `delete` removes only executables of its own token, so a forced replacement
   * never takes down what its successor runs. Absent on executables made before 0.4. Not part of the
   * spec hash: it says who declared an executable, not what runs.
   */
  declaredBy?: string;
  /**
   * Env names whose values the program gave as Pulumi secrets (sorted). The engine's records of the
   * spec (labels, annotations, the Kubernetes record) carry those values blanked (SECRET_ENV_MARKER);
   * the workload still gets them (Docker: the container's environment; Kubernetes: a Secret). Absent
   * when no env value is secret, as on executables made before the field existed.
   */
  secretEnv?: string[];
}

/** Numeric owner of what reseat writes into a volume (and the user a workload runs as). */
export interface FileOwner {
  uid: number;
  gid: number;
}

export interface KubernetesPodDesired {
  /** Node labels every pod requires, beside the node that holds the claim. */
  nodeSelector?: Record<string, string>;
  /** The workload's status endpoint, read through the API server's pod proxy (commit outputs). */
  status?: { port: number; path: string };
}

/**
 * Where a PE runs, as its spec says. Connection secrets never travel in here: a Kubernetes PE names a
 * namespace and (optionally) a context of the ambient kubeconfig, never the kubeconfig itself.
 */
export type EngineTarget = { kind: "docker"; host?: string } | { kind: "kubernetes"; namespace: string; context?: string };

export interface FailureBackoff {
  /** Delay before the 2nd consecutive re-creation (the 1st is immediate); doubles each time. */
  initialMs: number;
  maxMs: number;
  /** Running this long without failing resets the count. */
  resetAfterMs: number;
}

export const DEFAULT_FAILURE_BACKOFF: FailureBackoff = { initialMs: 1000, maxMs: 60_000, resetAfterMs: 120_000 };

/** What a secret env value reads as wherever the engine records the desired spec (labels, annotations, records). */
export const SECRET_ENV_MARKER = "(secret: not recorded here)";

/** The secret env names that the env actually has (a record never blanks a name it does not carry). */
export function secretEnvNames(desired: Pick<ExecutableDesired, "env" | "secretEnv">): string[] {
  return (desired.secretEnv ?? []).filter((name) => Object.prototype.hasOwnProperty.call(desired.env, name));
}

/** The desired spec as stored in a container label: everything but the store password and secret env values. */
export function desiredLabel(desired: ExecutableDesired): string {
  const store = desired.store.kind === "postgres" ? { ...desired.store, password: "" } : desired.store;
  const secret = new Set(secretEnvNames(desired));
  const env = Object.fromEntries(Object.entries(desired.env).map(([name, value]) => [name, secret.has(name) ? SECRET_ENV_MARKER : value]));
  return JSON.stringify({ ...desired, store, env });
}

/**
 * A desired spec read back from a record, its secret env values filled in from where the engine keeps
 * them (`valueOf`: the executable's own environment, a Kubernetes Secret). A value not found stays
 * the marker, which `prepare` refuses (assertSecretEnvKnown): a workload never runs with it.
 */
export function withSecretEnv(desired: ExecutableDesired, valueOf: (name: string) => string | undefined): ExecutableDesired {
  const names = secretEnvNames(desired);
  if (!names.length) return desired;
  const env = { ...desired.env };
  for (const name of names) {
    const value = valueOf(name);
    if (value !== undefined) env[name] = value;
  }
  return { ...desired, env };
}

/**
 * Refuses to create an executable whose secret env value is the record's marker (read back from a
 * record whose engine no longer has the value): that would start the workload with a wrong secret.
 */
export function assertSecretEnvKnown(desired: ExecutableDesired, executable: string): void {
  const missing = secretEnvNames(desired).filter((name) => desired.env[name] === SECRET_ENV_MARKER);
  if (missing.length) {
    throw new Error(
      `reseat: ${missing.map((name) => `env.${name}`).join(", ")} of PE "${desired.peId}": the secret value could not be read back from the engine for ${executable} ` +
        `(its records never hold it); \`pulumi up --refresh\` gives it again`,
    );
  }
}

export function desiredFromLabel(label: string | undefined): ExecutableDesired | undefined {
  if (!label) return undefined;
  try {
    return JSON.parse(label) as ExecutableDesired;
  } catch {
    return undefined;
  }
}

/** The persistent store as the executable sees it. The password only ever travels as a file. */
export type StoreDesired =
  | { kind: "none" }
  | { kind: "directory"; volume?: string; hostPath?: string; keep: number; allowEmptyStart?: boolean }
  | { kind: "postgres"; host: string; port: number; database: string; user: string; table: string; keep: number; allowEmptyStart?: boolean; password: string };

/** Where the store is mounted in the executable, and where the store password file lives in the volume. */
export const STORE_MOUNT = "/reseat-store";
export const STORE_PASSWORD_FILE = ".reseat/secrets/store-password";

/**
 * The RESEAT_STORE value the workload's state library reads (no secret in it: a file path instead).
 * The password file is in the state volume unless the engine mounts it elsewhere (Kubernetes: a Secret).
 */
export function storeEnv(store: StoreDesired, mountPath: string, passwordFile = `${mountPath}/${STORE_PASSWORD_FILE}`): string | undefined {
  switch (store.kind) {
    case "none":
      return undefined;
    case "directory":
      return JSON.stringify({ kind: "directory", path: STORE_MOUNT, keep: store.keep, ...(store.allowEmptyStart ? { allowEmptyStart: true } : {}) });
    case "postgres": {
      const { password: _secret, ...visible } = store;
      return JSON.stringify({ ...visible, passwordFile });
    }
  }
}

/**
 * The environment every engine gives the workload: its spec's env plus what the state library reads.
 * The generation is the fencing token, fixed at creation: an executable restarted by hand later keeps
 * its own (older) generation and is refused by the state library once a newer one exists.
 */
export function workloadEnv(desired: ExecutableDesired, generation: number, reseatStore: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...desired.env,
    RESEAT_PE_ID: desired.peId,
    RESEAT_STATE_DIR: desired.mountPath,
    RESEAT_COMMIT_INTERVAL_MS: String(desired.commitIntervalMs),
    RESEAT_GENERATION: String(generation),
    ...extra,
    ...(reseatStore ? { RESEAT_STORE: reseatStore } : {}),
  };
}

/** An image reference, resolved read-only (Backend.resolveImage). */
export type ImageResolution =
  /** The id executables are created from: an image the engine has (Kubernetes: the reference itself). */
  | { kind: "resolved"; imageId: string }
  /** Not on the engine; the registry's manifest digest for it (not an image id: only a pull gives that). */
  | { kind: "registry"; digest: string }
  /** Not on the engine, and the registry did not say (unreachable, unauthorized, no such tag): why. */
  | { kind: "unresolved"; reason: string };

/** An executable as the engine reports it right now. */
export interface ObservedExecutable {
  id: string;
  name: string;
  peId: string;
  /** The owner it was created for ("<project>/<stack>/<peId>"), when recorded. */
  owner?: string;
  generation: number;
  specHash: string;
  volumeName: string;
  /** created, running, exited, dead, … (engine words) */
  state: string;
  running: boolean;
  startedAt?: string;
  exitCode?: number;
  restartCount?: number;
  /** The host it runs on, when the engine has several (Kubernetes: the pod's node). */
  host?: string;
}

/** Written beside the state volume before each executable starts; the durable home of the generation. */
export interface VolumeMeta {
  peId: string;
  generation: number;
  volume: string;
  updatedAt: string;
}

export interface VolumeInfo {
  name: string;
  driver: string;
  peId?: string;
  /** Who claimed the volume ("<project>/<stack>/<peId>"); set once, when it was created. */
  owner?: string;
  createdAt?: string;
}

/** What a state volume is claimed for: exactly one owner, ever. */
export interface VolumeClaim {
  name: string;
  /** Docker: the volume driver; Kubernetes: the StorageClass ("" for the cluster's default). */
  driver: string;
  peId: string;
  owner: string;
  /** Kubernetes: the requested size ("1Gi"). */
  size?: string;
}

/** Which engine a PE lives on: recorded in state and compared on every operation. */
export interface EngineIdentity {
  kind: "docker" | "kubernetes" | "fake";
  /** Stable id of the engine itself (Docker: /info ID), not of the path used to reach it. */
  id: string;
  /** How it was reached, as the user wrote it (unix:///var/run/docker.sock, tcp://…, ssh://…). */
  address: string;
  /** The host executables run on (Docker: the engine's host name). */
  name: string;
}

/** A running container on a volume, whoever owns it. */
export interface VolumeHolder {
  id: string;
  name: string;
  peId?: string;
}

/**
 * A lease as the engine stores it. Liveness is judged by whether `renewals` moves, measured on the
 * observer's own clock: valid across hosts, clocks and PID namespaces.
 */
export interface LeaseRecord {
  name: string;
  holder: string;
  /** Engine-unique id of this holding (Docker: the lease container's id); changes when re-taken. */
  token: string;
  leaseMs: number;
  renewals: number;
  /** The holder's wall clock at the last renewal (informational: never compared across hosts). */
  renewedAt: string;
}

/** What changed on the engine, as a hint for the level-triggered controller (it re-reads anyway). */
export interface ExecutableEvent {
  peId: string;
  kind: "exited" | "oom" | "unhealthy" | "removed";
  reason: string;
}

export interface EventStream {
  close(): void;
  /** Resolves when the stream ends for any reason (engine gone, connection lost, closed). */
  readonly ended: Promise<Error | undefined>;
}

/**
 * The engine seam: everything reseat needs from a container engine, and nothing more. The replacement
 * routine, the lease, the provider, the controller and status only ever talk to this interface.
 * Docker (`docker/`), the in-memory fake (`fake/`), and Kubernetes implement it.
 */
export interface Backend {
  readonly kind: EngineIdentity["kind"];
  identity(): Promise<EngineIdentity>;
  /** Throws when the engine does not accept new calls (down, or going down: asked on a new connection). */
  ping(): Promise<void>;

  /** Resolves an image reference to its id, pulling it if absent: `up` only (create, update). */
  ensureImage(ref: string): Promise<string>;
  /**
   * What an image reference names, without changing the engine (no pull, no create): what `check`
   * (run by `pulumi preview` as well as `up`) and a fleet's preview lines use.
   */
  resolveImage(ref: string): Promise<ImageResolution>;

  /** All executables of one PE (any state), or of all PEs when peId is omitted. */
  listExecutables(peId?: string): Promise<ObservedExecutable[]>;
  inspectExecutable(id: string): Promise<ObservedExecutable | undefined>;
  /**
   * The desired spec an executable was created with, for the controller and a revert: read from the
   * engine's record (no store password), secret env values filled back from where the engine keeps
   * them for that executable (withSecretEnv).
   */
  desiredOf(id: string): Promise<ExecutableDesired | undefined>;
  /** Running executables that mount the volume, whoever owns them. */
  runningOnVolume(volumeName: string): Promise<VolumeHolder[]>;

  inspectVolume(name: string): Promise<VolumeInfo | undefined>;
  listStateVolumes(): Promise<VolumeInfo[]>;
  /**
   * Creates the volume for its owner, atomically: when a racing or earlier call created it, the
   * engine's record says who owns it. Returns what the engine holds; the caller compares owners.
   */
  claimVolume(claim: VolumeClaim): Promise<VolumeInfo & { created: boolean }>;
  removeVolume(name: string): Promise<void>;

  /** The generation last recorded beside the volume; undefined for a new (or lost) volume. */
  readGeneration(volumeName: string): Promise<VolumeMeta | undefined>;
  recordGeneration(meta: VolumeMeta, owner?: FileOwner): Promise<void>;
  /**
   * Small files on a state volume, or on a directory store (`source` = a volume name, or an
   * absolute host path). Written atomically; secrets with mode 0600.
   */
  readVolumeFile(source: string, relativePath: string): Promise<string | undefined>;
  /**
   * A key ending in "/" is a directory (created if absent); "./" is the volume's (or store's) root. With
   * `owner`, the files and directories named, and the directories on their paths, belong to it; `rootMode`
   * sets the root's mode (with "./").
   */
  writeVolumeFiles(source: string, files: Record<string, string>, options?: { mode?: number; owner?: FileOwner; rootMode?: number }): Promise<void>;
  /** The user an image runs as when the spec names none (its USER, names resolved in the image); undefined: root. */
  imageUser?(imageId: string): Promise<FileOwner | undefined>;

  /** Creates (does not start) the executable, bound to the kept volume, carrying its generation. */
  prepare(desired: ExecutableDesired, identity: { name: string; generation: number; specHash: string }): Promise<string>;
  start(executableId: string): Promise<void>;
  /** Waits until running, and ready when a readiness check is given; throws with the logs' tail otherwise. */
  waitReady(executableId: string, desired: ExecutableDesired): Promise<void>;
  /** Graceful stop (configured signal, grace, then kill); the executable stays until removed. */
  stop(executableId: string, stop: { graceSeconds: number }): Promise<void>;
  remove(executableId: string): Promise<void>;
  logsTail(executableId: string, lines?: number): Promise<string>;

  /** Takes the named lease if free; otherwise returns who holds it. Atomic on the engine. */
  tryAcquireLease(name: string, holder: string, leaseMs: number): Promise<{ acquired: true; lease: LeaseRecord } | { acquired: false; current: LeaseRecord }>;
  /** Bumps the renewal count; false when the lease is no longer this holding (broken, pruned). */
  renewLease(lease: LeaseRecord): Promise<boolean>;
  /** Whether this holding is still the current one (cheap: checked right before starting anything). */
  holdsLease(lease: LeaseRecord): Promise<boolean>;
  /** Removes exactly this holding (by token), if it is still there. */
  releaseLease(lease: LeaseRecord): Promise<void>;
  readLease(name: string): Promise<LeaseRecord | undefined>;

  /** Follows executable failures; the stream ends when the engine goes away. */
  watchExecutables(onEvent: (event: ExecutableEvent) => void): Promise<EventStream>;
}

/** Labels that carry a PE's identity on its containers and volume. */
export const LABELS = {
  managed: "io.reseat.managed",
  peId: "io.reseat.pe-id",
  specHash: "io.reseat.spec-hash",
  volume: "io.reseat.volume",
  role: "io.reseat.role",
  /** The executable's desired spec (JSON, no secrets: see desiredLabel): what the controller re-creates after a failure. */
  desired: "io.reseat.desired",
  owner: "io.reseat.owner",
  generation: "io.reseat.generation",
  leaseHolder: "io.reseat.lease-holder",
  leaseMs: "io.reseat.lease-ms",
} as const;

/** Container names carry the generation so that `docker ps` reads naturally: reseat-<pe>-g<n>. */
export function executableName(peId: string, generation: number): string {
  return `reseat-${peId}-g${generation}`;
}

export function generationFromName(name: string): number {
  const match = /-g(\d+)$/.exec(name.replace(/^\//, ""));
  return match ? Number(match[1]) : 0;
}
