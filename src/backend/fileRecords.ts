// Records as files beside the state volume: how Docker (and the in-memory fake, which behaves like it)
// keep the contract's records. One implementation of the seam's record operations over an engine's small
// file access, so both engines write byte-for-byte what the workload's state library reads (the 0.4.0
// files included: a record without a version decodes as version 1).
import {
  CONTROLLER_RECORD,
  DEFAULT_STORE_VOLUME,
  CONTROL_RECORD,
  FENCE_RECORD,
  META_RECORD,
  RECORD_DIR,
  REVERT_RECORD,
  STATUS_RECORD,
  STORE_PASSWORD_FILE,
  standbyStatusFile,
  storeFolder,
  type ControlRecord,
  type ControllerRecord,
  type FileOwner,
  type PeId,
  type RecordCodec,
  type RevertRecord,
  type StoreDesired,
  type VolumeMeta,
  type WorkloadStatus,
} from "@reseat/state/contract";
import type { Backend } from "./backend";
import { askPostgresGeneration } from "./storeGeneration";

/**
 * An engine's access to small files on a volume, or on a directory store (`source` = a volume name, or
 * an absolute host path). Written atomically; secrets with mode 0600.
 */
export interface VolumeFileAccess {
  readFile(source: string, relativePath: string): Promise<string | undefined>;
  /**
   * A key ending in "/" is a directory (created if absent); "./" is the volume's (or store's) root. With
   * `owner`, the files and directories named, and the directories on their paths, belong to it; `rootMode`
   * sets the root's mode (with "./").
   */
  writeFiles(source: string, files: Record<string, string>, options?: { mode?: number; owner?: FileOwner; rootMode?: number }): Promise<void>;
}

type RecordOperations = Pick<
  Backend,
  | "readGeneration"
  | "recordGeneration"
  | "readControl"
  | "writeControl"
  | "readRevert"
  | "writeRevert"
  | "readControllerRecord"
  | "writeControllerRecord"
  | "readWorkloadStatus"
  | "writeStoreSecret"
  | "ownState"
  | "prepareStoreFolder"
  | "readStoreGeneration"
>;

/** The seam's record operations, as files beside the volume. */
export class FileRecords implements RecordOperations {
  constructor(private readonly files: VolumeFileAccess) {}

  private async read<T>(source: string, codec: RecordCodec<T>, file = codec.file): Promise<T | undefined> {
    const text = await this.files.readFile(source, file);
    return text === undefined ? undefined : codec.decode(text);
  }

  private async write<T>(source: string, codec: RecordCodec<T>, value: T, owner: FileOwner | undefined): Promise<void> {
    await this.files.writeFiles(source, { [codec.file]: codec.encode(value) }, { owner });
  }

  readGeneration(volumeName: string): Promise<VolumeMeta | undefined> {
    return this.read(volumeName, META_RECORD);
  }
  async recordGeneration(meta: VolumeMeta, owner?: FileOwner): Promise<void> {
    // Generations only go up (the fencing token), as on Kubernetes. The caller holds the PE's lease, so
    // nobody records in between this read and the write.
    const current = (await this.readGeneration(meta.volume))?.generation;
    if (current !== undefined && current >= meta.generation) {
      throw new Error(
        `reseat: volume ${meta.volume} is already at generation ${current}; refusing to record ${meta.generation} (another replacement ran concurrently)`,
      );
    }
    await this.write(meta.volume, META_RECORD, meta, owner);
  }
  readControl(volumeName: string): Promise<ControlRecord | undefined> {
    return this.read(volumeName, CONTROL_RECORD);
  }
  writeControl(volumeName: string, control: ControlRecord, owner?: FileOwner): Promise<void> {
    return this.write(volumeName, CONTROL_RECORD, control, owner);
  }
  readRevert(volumeName: string): Promise<RevertRecord | undefined> {
    return this.read(volumeName, REVERT_RECORD);
  }
  writeRevert(volumeName: string, record: RevertRecord, owner?: FileOwner): Promise<void> {
    return this.write(volumeName, REVERT_RECORD, record, owner);
  }
  readControllerRecord(volumeName: string): Promise<ControllerRecord | undefined> {
    return this.read(volumeName, CONTROLLER_RECORD);
  }
  writeControllerRecord(volumeName: string, record: ControllerRecord, owner?: FileOwner): Promise<void> {
    return this.write(volumeName, CONTROLLER_RECORD, record, owner);
  }
  readWorkloadStatus(volumeName: string): Promise<WorkloadStatus | undefined> {
    return this.read(volumeName, STATUS_RECORD);
  }
  /** A standby's parked report: its own file beside the serving writer's status (standbyStatusFile). */
  readStandbyStatus(volumeName: string, generation: number): Promise<WorkloadStatus | undefined> {
    return this.read(volumeName, STATUS_RECORD, standbyStatusFile(generation));
  }
  async writeStoreSecret(volumeName: string, password: string, owner?: FileOwner): Promise<void> {
    await this.files.writeFiles(volumeName, { [STORE_PASSWORD_FILE]: password }, { mode: 0o600, owner });
  }
  async ownState(volumeName: string, owner: FileOwner): Promise<void> {
    await this.files.writeFiles(volumeName, { "./": "", [`${RECORD_DIR}/`]: "" }, { owner });
  }
  async prepareStoreFolder(store: Extract<StoreDesired, { kind: "directory" }>, peId: PeId, owner: FileOwner): Promise<void> {
    const source = storeSource(store);
    if (!store.hostPath) await this.files.writeFiles(source, { "./": "" }, { rootMode: 0o1777 });
    await this.files.writeFiles(source, { [`${storeFolder(peId)}/`]: "" }, { owner });
  }
  async readStoreGeneration(store: StoreDesired, peId: PeId): Promise<number> {
    switch (store.kind) {
      case "none":
        return 0;
      case "directory":
        return (await this.read(storeSource(store), FENCE_RECORD, `${storeFolder(peId)}/${FENCE_RECORD.file}`))?.generation ?? 0;
      case "postgres":
        return askPostgresGeneration(store, peId);
    }
  }
}

/** The volume (or host path) of a directory store. */
export function storeSource(store: Extract<StoreDesired, { kind: "directory" }>): string {
  return store.hostPath ?? store.volume ?? DEFAULT_STORE_VOLUME;
}
