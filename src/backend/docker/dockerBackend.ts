// Docker Engine implementation of the backend seam, through dockerode (docker-modem): unix://, tcp://
// with TLS and ssh:// engines alike (see connection.ts), each call with a time budget. Every call
// reads the engine fresh: the provider and the controller must never act on a stale picture of which
// executable is live. The work is split along its jobs; this class composes them:
//
//   engine.ts       the client, the call budget, the container calls every part uses
//   images.ts       resolve (read-only), pull (with credentials and progress), an image's user
//   executables.ts  list, inspect, prepare, start, wait ready, logs, stop
//   volumes.ts      state volumes, and the small files beside them (the records, via ../fileRecords.ts)
//   leases.ts       a lease as a never-started container
//   events.ts       the engine's event stream
//   networkHolder.ts a standby-handover bridge PE's network namespace and ports, held across generations
import Dockerode from "dockerode";
import type {
  Backend,
  ControlRecord,
  ControllerRecord,
  EngineIdentity,
  EventStream,
  ExecutableDesired,
  ExecutableEvent,
  FileOwner,
  ImageResolution,
  LeaseRecord,
  ObservedExecutable,
  RevertRecord,
  StoreDesired,
  VolumeClaim,
  VolumeHolder,
  VolumeInfo,
  VolumeMeta,
  WorkloadStatus,
} from "../backend";
import { LABELS } from "../backend";
import { FileRecords } from "../fileRecords";
import { dockerClient } from "./client";
import { EngineConnection, resolveConnection } from "./connection";
import { DockerBackendOptions, DockerEngine } from "./engine";
import { followEvents } from "./events";
import { DockerExecutables } from "./executables";
import { DockerImages } from "./images";
import { DockerLeases } from "./leases";
import { standbyNetworkBlocker } from "./networkHolder";
import { DockerVolumes } from "./volumes";

export { HELPER_IMAGE } from "./engine";
export type { DockerBackendOptions } from "./engine";

export class DockerBackend implements Backend {
  readonly kind = "docker" as const;
  /** The dockerode client, for the few callers (tests, benchmarks) that need the raw Engine API. */
  readonly docker: Dockerode;
  private pingClient?: Dockerode;
  private identityCache?: EngineIdentity;
  private readonly engine: DockerEngine;
  private readonly images: DockerImages;
  private readonly executables: DockerExecutables;
  private readonly volumes: DockerVolumes;
  private readonly leases: DockerLeases;
  private readonly records: FileRecords;

  constructor(
    readonly connection: EngineConnection = resolveConnection(),
    options: DockerBackendOptions = {},
  ) {
    this.docker = dockerClient(connection);
    this.engine = new DockerEngine(this.docker, connection, options);
    this.images = new DockerImages(this.docker, connection, options);
    this.executables = new DockerExecutables(this.docker, connection, options);
    this.volumes = new DockerVolumes(this.docker, connection, options);
    this.leases = new DockerLeases(this.docker, connection, options);
    this.records = new FileRecords(this.volumes);
  }

  /** One Engine call within the connection's budget (or `timeoutMs`), failures as EngineError. */
  private call<T>(what: string, fn: (abortSignal: AbortSignal) => Promise<T>, timeoutMs?: number): Promise<T> {
    return this.engine.call(what, fn, timeoutMs);
  }

  async identity(): Promise<EngineIdentity> {
    if (!this.identityCache) {
      // The ID plus the data root: two daemons on one host can share an ID (Docker 20.10 derives it from
      // /etc/docker/key.json), never a data root — which is where their volumes live.
      const info = (await this.call("GET /info", (abortSignal) => optionsCall(this.docker, "info", { abortSignal }))) as {
        ID: string;
        Name: string;
        DockerRootDir: string;
      };
      this.identityCache = { kind: "docker", id: `${info.ID}@${info.DockerRootDir}`, name: info.Name, address: this.connection.address };
    }
    return this.identityCache;
  }

  /** On a new connection: the engine accepts calls (not merely serving the connections already open). */
  async ping(): Promise<void> {
    this.pingClient ??= dockerClient(this.connection, { freshConnections: true });
    const client = this.pingClient;
    await this.call("GET /_ping", (abortSignal) => optionsCall(client, "ping", { abortSignal }), Math.min(5000, this.connection.callTimeoutMs));
  }

  /** Imports reseat's helper image from a one-file archive when the engine lacks it (no registry needed). */
  ensureHelperImage(): Promise<void> {
    return this.engine.ensureHelperImage();
  }

  // --- images ------------------------------------------------------------------------------------
  resolveImage(ref: string): Promise<ImageResolution> {
    return this.images.resolveImage(ref);
  }
  ensureImage(ref: string): Promise<string> {
    return this.images.ensureImage(ref);
  }
  imageUser(imageId: string): Promise<FileOwner | undefined> {
    return this.images.imageUser(imageId);
  }

  // --- executables -------------------------------------------------------------------------------
  listExecutables(peId?: string): Promise<ObservedExecutable[]> {
    return this.executables.listExecutables(peId);
  }
  inspectExecutable(id: string): Promise<ObservedExecutable | undefined> {
    return this.executables.inspectExecutable(id);
  }
  desiredOf(executableId: string): Promise<ExecutableDesired | undefined> {
    return this.executables.desiredOf(executableId);
  }
  prepare(desired: ExecutableDesired, identity: { name: string; generation: number; specHash: string }): Promise<string> {
    return this.executables.prepare(desired, identity);
  }
  start(executableId: string): Promise<void> {
    return this.executables.start(executableId);
  }
  waitReady(executableId: string, desired: ExecutableDesired): Promise<void> {
    return this.executables.waitReady(executableId, desired);
  }
  logsTail(executableId: string, lines?: number): Promise<string> {
    return this.executables.logsTail(executableId, lines);
  }
  stop(executableId: string, stop: { graceSeconds: number }): Promise<void> {
    return this.executables.stop(executableId, stop);
  }
  remove(executableId: string): Promise<void> {
    return this.engine.remove(executableId);
  }
  /** A bridge PE's standby shares the network holder's ports: not beside an executable that publishes them itself. */
  standbyBlockedBy(running: ObservedExecutable, desired: ExecutableDesired): string | undefined {
    return standbyNetworkBlocker(running, desired);
  }
  /** The PE's network holders (standby-handover bridge PEs), once its last executable is gone. */
  async releasePeNetwork(peId: string): Promise<void> {
    await this.executables.holders.removeHolders(peId);
  }

  // --- volumes -----------------------------------------------------------------------------------
  inspectVolume(name: string): Promise<VolumeInfo | undefined> {
    return this.volumes.inspectVolume(name);
  }
  listStateVolumes(): Promise<VolumeInfo[]> {
    return this.volumes.listStateVolumes();
  }
  runningOnVolume(volumeName: string): Promise<VolumeHolder[]> {
    return this.volumes.runningOnVolume(volumeName);
  }
  claimVolume(claim: VolumeClaim): Promise<VolumeInfo & { created: boolean }> {
    return this.volumes.claimVolume(claim);
  }
  removeVolume(name: string): Promise<void> {
    return this.volumes.removeVolume(name);
  }

  // --- records: files beside the volume, in the contract's encodings (FileRecords) ---------------
  readGeneration(volumeName: string): Promise<VolumeMeta | undefined> {
    return this.records.readGeneration(volumeName);
  }
  recordGeneration(meta: VolumeMeta, owner?: FileOwner): Promise<void> {
    return this.records.recordGeneration(meta, owner);
  }
  readControl(volumeName: string): Promise<ControlRecord | undefined> {
    return this.records.readControl(volumeName);
  }
  writeControl(volumeName: string, control: ControlRecord, owner?: FileOwner): Promise<void> {
    return this.records.writeControl(volumeName, control, owner);
  }
  readRevert(volumeName: string): Promise<RevertRecord | undefined> {
    return this.records.readRevert(volumeName);
  }
  writeRevert(volumeName: string, record: RevertRecord, owner?: FileOwner): Promise<void> {
    return this.records.writeRevert(volumeName, record, owner);
  }
  readControllerRecord(volumeName: string): Promise<ControllerRecord | undefined> {
    return this.records.readControllerRecord(volumeName);
  }
  writeControllerRecord(volumeName: string, record: ControllerRecord, owner?: FileOwner): Promise<void> {
    return this.records.writeControllerRecord(volumeName, record, owner);
  }
  readWorkloadStatus(volumeName: string): Promise<WorkloadStatus | undefined> {
    return this.records.readWorkloadStatus(volumeName);
  }
  readStandbyStatus(_executableId: string, desired: ExecutableDesired, generation: number): Promise<WorkloadStatus | undefined> {
    return this.records.readStandbyStatus(desired.volumeName, generation);
  }
  writeStoreSecret(volumeName: string, password: string, owner?: FileOwner): Promise<void> {
    return this.records.writeStoreSecret(volumeName, password, owner);
  }
  ownState(volumeName: string, owner: FileOwner): Promise<void> {
    return this.records.ownState(volumeName, owner);
  }
  prepareStoreFolder(store: Extract<StoreDesired, { kind: "directory" }>, peId: string, owner: FileOwner): Promise<void> {
    return this.records.prepareStoreFolder(store, peId, owner);
  }
  readStoreGeneration(store: StoreDesired, peId: string): Promise<number> {
    return this.records.readStoreGeneration(store, peId);
  }

  // --- leases ------------------------------------------------------------------------------------
  tryAcquireLease(name: string, holder: string, leaseMs: number): Promise<{ acquired: true; lease: LeaseRecord } | { acquired: false; current: LeaseRecord }> {
    return this.leases.tryAcquireLease(name, holder, leaseMs);
  }
  renewLease(lease: LeaseRecord): Promise<boolean> {
    return this.leases.renewLease(lease);
  }
  holdsLease(lease: LeaseRecord): Promise<boolean> {
    return this.leases.holdsLease(lease);
  }
  releaseLease(lease: LeaseRecord): Promise<void> {
    return this.leases.releaseLease(lease);
  }
  readLease(name: string): Promise<LeaseRecord | undefined> {
    return this.leases.readLease(name);
  }

  // --- events ------------------------------------------------------------------------------------
  /** One subscription to the engine's container events; it ends (see `ended`) when the engine goes away. */
  async watchExecutables(onEvent: (event: ExecutableEvent) => void): Promise<EventStream> {
    return followEvents(
      this.docker,
      this.connection.address,
      { type: ["container"], label: [`${LABELS.role}=executable`], event: ["die", "oom", "health_status", "destroy"] },
      (event) => {
        const peId = event.Actor.Attributes[LABELS.peId];
        if (!peId) return;
        if (event.Action === "die") onEvent({ peId, kind: "exited", reason: `exited with code ${event.Actor.Attributes.exitCode ?? "?"}` });
        else if (event.Action === "oom") onEvent({ peId, kind: "oom", reason: "out of memory" });
        else if (event.Action === "destroy") onEvent({ peId, kind: "removed", reason: "removed" });
        else if (event.Action.startsWith("health_status") && event.Action.includes("unhealthy")) onEvent({ peId, kind: "unhealthy", reason: "unhealthy" });
      },
    );
  }
}

/** dockerode's info() and ping() take options (the abort signal) that its type declarations omit. */
function optionsCall(docker: Dockerode, method: "info" | "ping", options: { abortSignal: AbortSignal }): Promise<unknown> {
  return (docker as unknown as Record<typeof method, (options: object) => Promise<unknown>>)[method](options);
}
