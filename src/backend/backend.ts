// The engine seam: the shapes every backend speaks (desired and observed executables, volumes,
// leases, events) and the interface the replacement routine, provider and controller use.

// The domain's types live in the workload contract (@reseat/state/contract), which the pure plan reads
// too; re-exported here so the seam's users find them beside the interface.
import type {
  ControlRecord,
  ControllerRecord,
  EngineIdentity,
  ExecutableDesired,
  FileOwner,
  ImageResolution,
  PeId,
  RevertRecord,
  StoreDesired,
  VolumeClaim,
  VolumeMeta,
  WorkloadStatus,
} from "@reseat/state/contract";
export { DEFAULT_FAILURE_BACKOFF, STORE_MOUNT, storeEnv, workloadEnv } from "@reseat/state/contract";
export type {
  ControlRecord,
  ControllerRecord,
  EngineIdentity,
  EngineTarget,
  ExecutableDesired,
  FailureBackoff,
  FileOwner,
  ImageResolution,
  KubernetesPodDesired,
  RevertRecord,
  StoreDesired,
  VolumeClaim,
  VolumeMeta,
  WorkloadStatus,
} from "@reseat/state/contract";

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
  /**
   * The PE's network holder it runs in (Docker: a standby-handover bridge PE's executables share one
   * network namespace, its IP and published ports, across generations); absent: its own network.
   */
  networkHolder?: string;
}

export interface VolumeInfo {
  name: string;
  driver: string;
  peId?: string;
  /** Who claimed the volume ("<project>/<stack>/<peId>"); set once, when it was created. */
  owner?: string;
  createdAt?: string;
}

/**
 * The records `reseat status` shows of one PE, read for many PEs at once (Backend.readStatusRecords).
 * A record that does not decode is named in `corrupt` ("controller record", "revert record": its
 * message) and left out, as the one-by-one reads report a RecordCorruptError.
 */
export interface PeStatusRecords {
  workload?: WorkloadStatus;
  controller?: ControllerRecord;
  revert?: RevertRecord;
  corrupt: Partial<Record<"controller record" | "revert record", string>>;
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
  /**
   * A PE's directory-store claim, made for its owner as claimVolume makes the state volume (Kubernetes: a
   * claim of its own per PE; a fleet makes it through the seam). Absent: the engine's stores need none.
   */
  claimStoreVolume?(claim: VolumeClaim): Promise<VolumeInfo & { created: boolean }>;
  /**
   * Why the host that holds the volume cannot take the PE's next executable now (Kubernetes: the claim's
   * node is gone, not Ready or cordoned), or undefined when it can or the volume is on no host yet. A fleet
   * leaves such a member as it is (it waits for its host) rather than stop it. Absent: one host, always there.
   */
  volumeHostUnavailable?(volumeName: string): Promise<string | undefined>;
  removeVolume(name: string): Promise<void>;

  // --- records: the contract's records of a PE, each kept natively by the engine (Docker: files beside
  // the volume; Kubernetes: the claim's annotations, the PE's record ConfigMap, a Secret, the pod's
  // securityContext; the fake: memory). A record that does not decode is a RecordCorruptError.

  /** The generation last recorded beside the volume; undefined for a new (or lost) volume. */
  readGeneration(volumeName: string): Promise<VolumeMeta | undefined>;
  /** Records the next generation (the fencing token) for the volume; generations only go up. */
  recordGeneration(meta: VolumeMeta, owner?: FileOwner): Promise<void>;
  /** The live settings (commit interval, failure backoff); the workload reads them while it runs. */
  readControl(volumeName: string): Promise<ControlRecord | undefined>;
  writeControl(volumeName: string, control: ControlRecord, owner?: FileOwner): Promise<void>;
  /** The last replacement's revert (status and outputs read it). */
  readRevert(volumeName: string): Promise<RevertRecord | undefined>;
  writeRevert(volumeName: string, record: RevertRecord, owner?: FileOwner): Promise<void>;
  /** What the failure controller did to the PE (restarts, failures). */
  readControllerRecord(volumeName: string): Promise<ControllerRecord | undefined>;
  writeControllerRecord(volumeName: string, record: ControllerRecord, owner?: FileOwner): Promise<void>;
  /** The workload's own status (its state library writes it); undefined when none is readable yet. */
  readWorkloadStatus(volumeName: string): Promise<WorkloadStatus | undefined>;
  /**
   * What `reseat status` shows of many PEs (by state volume), in a number of list calls that does not grow
   * with their count, and at most `lanes` reads in flight (Kubernetes: one pod list and one record list,
   * then each serving pod's status endpoint; without it, each PE's workload status would list every pod).
   * A volume missing from the answer has none of these records. Absent: status reads them PE by PE,
   * `lanes` PEs at a time (Docker and the fake keep them in files beside each volume: no list at all).
   */
  readStatusRecords?(volumeNames: string[], options: { lanes: number }): Promise<Map<string, PeStatusRecords>>;
  /**
   * The parked report of a standby executable of `generation` (phase "parked"): undefined until it parked,
   * and again once it serves (its report is gone; readWorkloadStatus then names it). Docker and the fake: the
   * volume's standby file; Kubernetes: that pod's status endpoint.
   */
  readStandbyStatus(executableId: string, desired: ExecutableDesired, generation: number): Promise<WorkloadStatus | undefined>;
  /** The PostgreSQL store's password, where the workload reads it (RESEAT_STORE's passwordFile); readable by `owner` only. */
  writeStoreSecret(volumeName: string, password: string, owner?: FileOwner): Promise<void>;
  /**
   * The state volume becomes the non-root workload's (its root and reseat's records; when it changed
   * hands, all of it). Called in the gap, with no executable running on the volume. Kubernetes does it
   * at mount instead (the pod's fsGroup), so this is a no-op there.
   */
  ownState(volumeName: string, owner: FileOwner): Promise<void>;
  /**
   * The PE's folder in its directory store, made the workload's (a store is shared by PEs of different
   * users: its root is sticky and world-writable, as /tmp). Kubernetes: the pod's fsGroup.
   */
  prepareStoreFolder(store: Extract<StoreDesired, { kind: "directory" }>, peId: PeId, owner: FileOwner): Promise<void>;
  /** The newest generation the PE's persistent store has accepted (0: none, or no store). */
  readStoreGeneration(store: StoreDesired, peId: PeId): Promise<number>;
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
  /**
   * Why a standby successor for `desired` cannot start beside the running executable `running`, or
   * undefined when it can. Docker: a bridge PE's standby shares its network holder's host ports; an
   * executable that publishes them itself (made before the PE had a holder) keeps them, so that one
   * replacement is staged. Absent: nothing on the engine stands in the way.
   */
  standbyBlockedBy?(running: ObservedExecutable, desired: ExecutableDesired): string | undefined;
  /**
   * Releases what a PE holds on the engine beside its executables and volume (Docker: its network
   * holder), once its last executable is gone (a PE's delete). Absent: there is nothing of the kind.
   */
  releasePeNetwork?(peId: PeId): Promise<void>;
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
