// An in-memory engine behind the Backend seam, for engine-free unit tests of the replacement routine,
// the lease and the controller's decisions (seconds, not minutes). It keeps the invariants a real
// engine keeps (unique lease names, first creator's volume labels win) and records what a test
// needs to check the single-writer rule: the most executables that ever ran at once on one volume.
// Never used as proof that reseat works on an engine: the integration tests are.
import {
  Backend,
  EngineIdentity,
  EventStream,
  ExecutableDesired,
  ExecutableEvent,
  FileOwner,
  ImageResolution,
  LeaseRecord,
  ObservedExecutable,
  VolumeClaim,
  VolumeHolder,
  VolumeInfo,
  VolumeMeta,
  ControlRecord,
  ControllerRecord,
  RevertRecord,
  StoreDesired,
  WorkloadStatus,
  assertSecretEnvKnown,
  desiredFromLabel,
  desiredLabel,
  withSecretEnv,
} from "../backend";
import { FileRecords, storeSource } from "../fileRecords";
import { META_RECORD, RESEAT_ENV, STATUS_RECORD, standbyStatusFile, workloadEnv } from "@reseat/state/contract";

interface FakeExecutable {
  id: string;
  name: string;
  /** What the executable runs with: its environment holds the secret env values, as a container's does. */
  desired: ExecutableDesired;
  /** Its record, as a Docker label (desiredLabel: no store password, secret env values blanked). */
  label: string;
  generation: number;
  specHash: string;
  state: "created" | "running" | "exited";
  /**
   * A standby (RESEAT_STANDBY) that runs and waits for the volume's writer lock, as the state library's
   * parking does: it has opened nothing and writes nothing but its parked report.
   */
  parked?: boolean;
  startedAt?: string;
  exitCode?: number;
}

interface FakeVolume {
  info: VolumeInfo;
  files: Map<string, { text: string; mode: number; owner?: FileOwner }>;
}

/** What a test can make the fake do wrong. */
export interface FakeFaults {
  /** Executables of these images exit at start (before ready). */
  crashingImages: Set<string>;
  /** Executables of these images run but never report parked (nor serve) when started as a standby. */
  neverParkingImages?: Set<string>;
  /** Runs before every backend call; may throw (an engine error) or await (a race window). */
  beforeCall?: (operation: string, args: unknown[]) => Promise<void> | void;
}

export class FakeBackend implements Backend {
  readonly kind = "fake" as const;
  readonly executables = new Map<string, FakeExecutable>();
  readonly volumes = new Map<string, FakeVolume>();
  readonly leases = new Map<string, LeaseRecord>();
  readonly faults: FakeFaults = { crashingImages: new Set() };
  /** Most executables seen running at once on each volume (the single-writer rule says 1). */
  readonly maxRunningOnVolume = new Map<string, number>();
  /** Images the engine lacks until pulled (every other reference is present). */
  readonly absentImages = new Set<string>();
  /** What the registry names for a reference; an absent image without one cannot be pulled. */
  readonly registryDigests = new Map<string, string>();
  /** References pulled (ensureImage of an absent image), in order. */
  readonly pulled: string[] = [];
  /** Every call, in order, as "operation arg0": tests read the sequence. */
  readonly calls: string[] = [];
  private reachable = true;
  private nextId = 1;
  private streams = new Set<{ onEvent: (event: ExecutableEvent) => void; end: (error: Error | undefined) => void }>();

  constructor(private readonly hostName = "fake-host") {}

  // --- test controls -------------------------------------------------------------------------

  /** The engine goes away: calls fail, event streams end. */
  disconnect(): void {
    this.reachable = false;
    for (const stream of this.streams) stream.end(new Error("fake engine went away"));
    this.streams.clear();
  }

  reconnect(): void {
    this.reachable = true;
  }

  /**
   * The engine begins to shut down: it takes no new calls, but the event streams already open stay open
   * and still deliver (the engine's own stops of its containers look like failures). `disconnect()` ends it.
   */
  beginShutdown(): void {
    this.reachable = false;
  }

  /** The workload dies (kill -9, crash): the executable exits and watchers hear of it. */
  crash(id: string, exitCode = 137): void {
    const e = this.mustGet(id);
    e.state = "exited";
    e.exitCode = exitCode;
    e.parked = false;
    this.emit({ peId: e.desired.peId, kind: "exited", reason: `exited with code ${exitCode}` });
    this.handOver(e.desired.volumeName);
  }

  /** A person restarts an old container by hand (`docker start`), bypassing reseat. */
  startByHand(id: string): void {
    this.markRunning(this.mustGet(id));
  }

  running(peId?: string): FakeExecutable[] {
    return [...this.executables.values()].filter((e) => e.state === "running" && (!peId || e.desired.peId === peId));
  }

  // --- Backend --------------------------------------------------------------------------------

  async identity(): Promise<EngineIdentity> {
    await this.call("identity");
    return { kind: "fake", id: `fake-${this.hostName}`, address: `fake://${this.hostName}`, name: this.hostName };
  }

  async ping(): Promise<void> {
    await this.call("ping");
  }

  async ensureImage(ref: string): Promise<string> {
    await this.call("ensureImage", ref);
    if (this.absentImages.has(ref)) {
      if (!this.registryDigests.has(ref)) throw new Error(`image "${ref}" is not on the engine (fake) and could not be pulled: manifest unknown`);
      this.absentImages.delete(ref);
      this.pulled.push(ref);
    }
    return fakeImageId(ref);
  }

  async resolveImage(ref: string): Promise<ImageResolution> {
    await this.call("resolveImage", ref);
    if (!this.absentImages.has(ref)) return { kind: "resolved", imageId: fakeImageId(ref) };
    const digest = this.registryDigests.get(ref);
    return digest ? { kind: "registry", digest } : { kind: "unresolved", reason: "the registry did not name its manifest: manifest unknown" };
  }

  async listExecutables(peId?: string): Promise<ObservedExecutable[]> {
    await this.call("listExecutables", peId);
    return [...this.executables.values()].filter((e) => !peId || e.desired.peId === peId).map((e) => this.observe(e));
  }

  async inspectExecutable(id: string): Promise<ObservedExecutable | undefined> {
    await this.call("inspectExecutable", id);
    const e = this.executables.get(id);
    return e ? this.observe(e) : undefined;
  }

  async desiredOf(id: string): Promise<ExecutableDesired | undefined> {
    await this.call("desiredOf", id);
    const e = this.executables.get(id);
    if (!e) return undefined;
    // As Docker: the label, secret env values filled back from the executable's own environment.
    const desired = desiredFromLabel(e.label);
    return desired && withSecretEnv(desired, (name) => e.desired.env[name]);
  }

  async runningOnVolume(volumeName: string): Promise<VolumeHolder[]> {
    await this.call("runningOnVolume", volumeName);
    return this.running()
      .filter((e) => e.desired.volumeName === volumeName)
      .map((e) => ({ id: e.id, name: e.name, peId: e.desired.peId }));
  }

  async inspectVolume(name: string): Promise<VolumeInfo | undefined> {
    await this.call("inspectVolume", name);
    const v = this.volumes.get(name);
    return v ? { ...v.info } : undefined;
  }

  async listStateVolumes(): Promise<VolumeInfo[]> {
    await this.call("listStateVolumes");
    return [...this.volumes.values()].filter((v) => !v.info.name.startsWith("dir:")).map((v) => ({ ...v.info }));
  }

  async claimVolume(claim: VolumeClaim): Promise<VolumeInfo & { created: boolean }> {
    await this.call("claimVolume", claim.name);
    const existing = this.volumes.get(claim.name);
    if (existing) return { ...existing.info, created: false };
    const info: VolumeInfo = { name: claim.name, driver: claim.driver, peId: claim.peId, owner: claim.owner, createdAt: new Date().toISOString() };
    this.volumes.set(claim.name, { info, files: new Map() });
    return { ...info, created: true };
  }

  async removeVolume(name: string): Promise<void> {
    await this.call("removeVolume", name);
    if (this.running().some((e) => e.desired.volumeName === name)) throw new Error(`fake: volume ${name} is in use`);
    this.volumes.delete(name);
  }

  // --- records: as files beside the volume, like Docker (FileRecords), each call logged by its operation.

  async readGeneration(volumeName: string): Promise<VolumeMeta | undefined> {
    await this.call("readGeneration", volumeName);
    return this.records.readGeneration(volumeName);
  }

  async recordGeneration(meta: VolumeMeta, owner?: FileOwner): Promise<void> {
    await this.call("recordGeneration", meta.volume, meta.generation);
    // As every engine does (the fencing token needs it): generations only go up (FileRecords refuses).
    await this.records.recordGeneration(meta, owner);
  }

  async readControl(volumeName: string): Promise<ControlRecord | undefined> {
    await this.call("readControl", volumeName);
    return this.records.readControl(volumeName);
  }

  async writeControl(volumeName: string, control: ControlRecord, owner?: FileOwner): Promise<void> {
    await this.call("writeControl", volumeName);
    await this.records.writeControl(volumeName, control, owner);
  }

  async readRevert(volumeName: string): Promise<RevertRecord | undefined> {
    await this.call("readRevert", volumeName);
    return this.records.readRevert(volumeName);
  }

  async writeRevert(volumeName: string, record: RevertRecord, owner?: FileOwner): Promise<void> {
    await this.call("writeRevert", volumeName);
    await this.records.writeRevert(volumeName, record, owner);
  }

  async readControllerRecord(volumeName: string): Promise<ControllerRecord | undefined> {
    await this.call("readControllerRecord", volumeName);
    return this.records.readControllerRecord(volumeName);
  }

  async writeControllerRecord(volumeName: string, record: ControllerRecord, owner?: FileOwner): Promise<void> {
    await this.call("writeControllerRecord", volumeName);
    await this.records.writeControllerRecord(volumeName, record, owner);
  }

  async readWorkloadStatus(volumeName: string): Promise<WorkloadStatus | undefined> {
    await this.call("readWorkloadStatus", volumeName);
    return this.records.readWorkloadStatus(volumeName);
  }

  async writeStoreSecret(volumeName: string, password: string, owner?: FileOwner): Promise<void> {
    await this.call("writeStoreSecret", volumeName);
    await this.records.writeStoreSecret(volumeName, password, owner);
  }

  async ownState(volumeName: string, owner: FileOwner): Promise<void> {
    await this.call("ownState", volumeName);
    await this.records.ownState(volumeName, owner);
  }

  async prepareStoreFolder(store: Extract<StoreDesired, { kind: "directory" }>, peId: string, owner: FileOwner): Promise<void> {
    await this.call("prepareStoreFolder", storeSource(store), peId);
    await this.records.prepareStoreFolder(store, peId, owner);
  }

  async readStandbyStatus(executableId: string, desired: ExecutableDesired, generation: number): Promise<WorkloadStatus | undefined> {
    await this.call("readStandbyStatus", executableId, generation);
    return this.records.readStandbyStatus(desired.volumeName, generation);
  }

  async readStoreGeneration(store: StoreDesired, peId: string): Promise<number> {
    await this.call("readStoreGeneration", store.kind, peId);
    if (store.kind === "postgres") return this.postgresGenerations.get(peId) ?? 0;
    return this.records.readStoreGeneration(store, peId);
  }

  /** What a PostgreSQL store has accepted, by PE id, as a test sets it (the fake has no store). */
  readonly postgresGenerations = new Map<string, number>();

  /** The fake's files beside volumes (and in directory stores), where FileRecords keeps the records. */
  private readonly records = new FileRecords({
    readFile: async (source, relativePath) => this.filesOf(source).get(relativePath)?.text,
    writeFiles: async (source, files, options = {}) => this.putVolumeFiles(source, files, options),
  });

  /** Writes files beside a volume (or into a directory store) directly, for tests (no call logged). */
  putVolumeFiles(source: string, files: Record<string, string>, options: { mode?: number; owner?: FileOwner; rootMode?: number } = {}): void {
    const target = this.filesOf(source);
    for (const [file, text] of Object.entries(files)) {
      const mode = file === "./" && options.rootMode !== undefined ? options.rootMode : file.endsWith("/") ? 0o755 : (options.mode ?? 0o644);
      target.set(file, { text, mode, owner: options.owner });
    }
  }

  /** A file as written (text, mode, owner), for tests. */
  volumeFile(source: string, relativePath: string): { text: string; mode: number; owner?: FileOwner } | undefined {
    return this.filesOf(source).get(relativePath);
  }

  /** USER of images, by image id, as a test sets it (absent: root). */
  readonly imageUsers = new Map<string, FileOwner>();

  async imageUser(imageId: string): Promise<FileOwner | undefined> {
    await this.call("imageUser", imageId);
    return this.imageUsers.get(imageId);
  }

  async prepare(desired: ExecutableDesired, identity: { name: string; generation: number; specHash: string }): Promise<string> {
    await this.call("prepare", identity.name);
    if (!this.volumes.has(desired.volumeName)) throw new Error(`fake: no such volume: ${desired.volumeName}`);
    if ([...this.executables.values()].some((e) => e.name === identity.name)) throw new Error(`fake: 409 name ${identity.name} in use`);
    assertSecretEnvKnown(desired, identity.name);
    const id = `c${this.nextId++}`;
    this.executables.set(id, {
      id,
      name: identity.name,
      desired: structuredClone(desired),
      label: desiredLabel(desired),
      generation: identity.generation,
      specHash: identity.specHash,
      state: "created",
    });
    return id;
  }

  async start(id: string): Promise<void> {
    await this.call("start", id);
    const e = this.mustGet(id);
    if (this.faults.crashingImages.has(e.desired.imageRef)) {
      // Exits at once; watchers hear of it, as the real engines report it.
      e.state = "exited";
      e.exitCode = 1;
      this.emit({ peId: e.desired.peId, kind: "exited", reason: "exited with code 1" });
      return;
    }
    this.markRunning(e);
    if (isStandby(e)) this.parkOrServe(e);
  }

  async waitReady(id: string, _desired: ExecutableDesired): Promise<void> {
    await this.call("waitReady", id);
    const e = this.mustGet(id);
    if (e.state !== "running") throw new Error(`executable ${e.name} exited with code ${e.exitCode ?? "?"} before it was ready. Last log lines:\nfake crash`);
  }

  async stop(id: string): Promise<void> {
    await this.call("stop", id);
    const e = this.executables.get(id);
    if (e && e.state === "running") {
      e.state = "exited";
      e.exitCode = 0;
      e.parked = false;
      // Watchers hear of it, as of any exit: Docker reports the stop's `die`, Kubernetes the pod's end.
      this.emit({ peId: e.desired.peId, kind: "exited", reason: "exited with code 0" });
      // Its exit frees the volume's writer lock: a parked standby takes over.
      this.handOver(e.desired.volumeName);
    }
  }

  async remove(id: string): Promise<void> {
    await this.call("remove", id);
    this.executables.delete(id);
  }

  async logsTail(id: string): Promise<string> {
    await this.call("logsTail", id);
    return "fake logs";
  }

  async tryAcquireLease(
    name: string,
    holder: string,
    leaseMs: number,
  ): Promise<{ acquired: true; lease: LeaseRecord } | { acquired: false; current: LeaseRecord }> {
    await this.call("tryAcquireLease", name);
    const current = this.leases.get(name);
    if (current) return { acquired: false, current: { ...current } };
    const lease: LeaseRecord = { name, holder, token: `lease${this.nextId++}`, leaseMs, renewals: 0, renewedAt: new Date().toISOString() };
    this.leases.set(name, lease);
    return { acquired: true, lease: { ...lease } };
  }

  async renewLease(lease: LeaseRecord): Promise<boolean> {
    await this.call("renewLease", lease.name);
    const current = this.leases.get(lease.name);
    if (!current || current.token !== lease.token) return false;
    current.renewals += 1;
    current.renewedAt = new Date().toISOString();
    return true;
  }

  async holdsLease(lease: LeaseRecord): Promise<boolean> {
    await this.call("holdsLease", lease.name);
    return this.leases.get(lease.name)?.token === lease.token;
  }

  async releaseLease(lease: LeaseRecord): Promise<void> {
    await this.call("releaseLease", lease.name);
    if (this.leases.get(lease.name)?.token === lease.token) this.leases.delete(lease.name);
  }

  async readLease(name: string): Promise<LeaseRecord | undefined> {
    await this.call("readLease", name);
    const current = this.leases.get(name);
    return current ? { ...current } : undefined;
  }

  async watchExecutables(onEvent: (event: ExecutableEvent) => void): Promise<EventStream> {
    await this.call("watchExecutables");
    let resolveEnded!: (error: Error | undefined) => void;
    const ended = new Promise<Error | undefined>((resolve) => (resolveEnded = resolve));
    const entry = { onEvent, end: resolveEnded };
    this.streams.add(entry);
    return {
      close: () => {
        this.streams.delete(entry);
        resolveEnded(undefined);
      },
      ended,
    };
  }

  // --- internals ------------------------------------------------------------------------------

  private async call(operation: string, ...args: unknown[]): Promise<void> {
    this.calls.push([operation, ...args.filter((a) => a !== undefined)].join(" "));
    if (!this.reachable) throw new Error(`fake engine unreachable (${operation})`);
    await this.faults.beforeCall?.(operation, args);
    if (!this.reachable) throw new Error(`fake engine unreachable (${operation})`);
  }

  /**
   * A standby just started, as the state library does it: parked (its report in its own file) while another
   * executable writes to the volume; otherwise it holds the lock at once and takes over.
   */
  private parkOrServe(e: FakeExecutable): void {
    if (this.faults.neverParkingImages?.has(e.desired.imageRef)) return;
    const writer = this.running().some((other) => other !== e && other.desired.volumeName === e.desired.volumeName && !other.parked);
    if (!writer) return this.takeOver(e);
    e.parked = true;
    this.putVolumeFiles(e.desired.volumeName, { [standbyStatusFile(e.generation)]: STATUS_RECORD.encode(fakeStatus(e, "parked")) });
  }

  /** The writer on a volume exited: the newest parked standby there holds the lock next. */
  private handOver(volumeName: string): void {
    const onVolume = this.running().filter((e) => e.desired.volumeName === volumeName);
    if (onVolume.some((e) => !e.parked)) return;
    const next = onVolume.sort((a, b) => b.generation - a.generation)[0];
    if (next) this.takeOver(next);
  }

  /** Holding the lock: the generation fence, then it records its generation, serves, and removes its report. */
  private takeOver(e: FakeExecutable): void {
    const files = this.filesOf(e.desired.volumeName);
    const meta = files.get(META_RECORD.file);
    const recorded = meta ? META_RECORD.decode(meta.text).generation : 0;
    if (recorded > e.generation) {
      // Fenced: a newer generation owns the volume; the library refuses and the workload exits.
      e.state = "exited";
      e.exitCode = 1;
      e.parked = false;
      this.emit({ peId: e.desired.peId, kind: "exited", reason: "exited with code 1" });
      return;
    }
    e.parked = false;
    this.putVolumeFiles(e.desired.volumeName, {
      [META_RECORD.file]: META_RECORD.encode({
        peId: e.desired.peId,
        generation: e.generation,
        volume: e.desired.volumeName,
        updatedAt: new Date().toISOString(),
      }),
      [STATUS_RECORD.file]: STATUS_RECORD.encode(fakeStatus(e, "serving")),
    });
    files.delete(standbyStatusFile(e.generation));
  }

  private markRunning(e: FakeExecutable): void {
    e.state = "running";
    e.startedAt = new Date().toISOString();
    const count = this.running().filter((other) => other.desired.volumeName === e.desired.volumeName).length;
    this.maxRunningOnVolume.set(e.desired.volumeName, Math.max(count, this.maxRunningOnVolume.get(e.desired.volumeName) ?? 0));
  }

  private emit(event: ExecutableEvent): void {
    for (const stream of this.streams) stream.onEvent(event);
  }

  private filesOf(source: string): Map<string, { text: string; mode: number; owner?: FileOwner }> {
    const volume = this.volumes.get(source);
    if (volume) return volume.files;
    // A directory store (a volume the test did not claim, or a host path): created on first use.
    const key = `dir:${source}`;
    if (!this.volumes.has(key)) this.volumes.set(key, { info: { name: key, driver: "dir" }, files: new Map() });
    return this.volumes.get(key)!.files;
  }

  private mustGet(id: string): FakeExecutable {
    const e = this.executables.get(id);
    if (!e) throw new Error(`fake: 404 no such executable ${id}`);
    return e;
  }

  private observe(e: FakeExecutable): ObservedExecutable {
    return {
      id: e.id,
      name: e.name,
      peId: e.desired.peId,
      owner: e.desired.owner,
      generation: e.generation,
      specHash: e.specHash,
      volumeName: e.desired.volumeName,
      state: e.state,
      running: e.state === "running",
      startedAt: e.startedAt,
      exitCode: e.exitCode,
    };
  }
}

/** Started with RESEAT_STANDBY=1, as its environment on a real engine says. */
function isStandby(e: FakeExecutable): boolean {
  return workloadEnv(e.desired, e.generation, undefined)[RESEAT_ENV.standby] === "1";
}

/** The status a standby-aware workload reports (the fake runs no state library: nothing committed). */
function fakeStatus(e: FakeExecutable, phase: WorkloadStatus["phase"]): WorkloadStatus {
  const now = new Date().toISOString();
  return {
    peId: e.desired.peId,
    generation: e.generation,
    phase,
    resumedFrom: phase === "serving" ? "local" : null,
    resumedSeq: 0,
    seq: 0,
    commitIntervalMs: e.desired.commitIntervalMs,
    lastCommit: null,
    lastCommitError: null,
    lastCommitAttemptAt: null,
    restoreFailed: null,
    updatedAt: now,
  };
}

/** The fake's image id of a reference: deterministic, shaped like Docker's. */
export function fakeImageId(ref: string): string {
  return `sha256:${Buffer.from(ref).toString("hex").padEnd(64, "0").slice(0, 64)}`;
}
