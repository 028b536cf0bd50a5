import * as path from "node:path";
import { CONTROL_RECORD, META_RECORD, RECORD_DIR, RESEAT_ENV, STATUS_RECORD, standbyStatusFile, WRITER_LOCK_FILE } from "./contract";

/** Where everything lives inside the state volume (the mount path). */
export interface StatePaths {
  stateDir: string;
  /** Files shared with the provider. */
  reseatDir: string;
  metaFile: string;
  controlFile: string;
  statusFile: string;
  /** The volume's writer lock (contract/lock.ts): held by the one writer for its life. */
  lockFile: string;
  /** Where a parked standby of a generation reports itself (never the writer's status file). */
  standbyStatusFile: (generation: number) => string;
  /** The library's own data. */
  dataDir: string;
  /** The SQLite database (WAL mode: `state.db-wal` sits next to it while it is open). */
  dbFile: string;
  /** Files of the 0.1 format (journal + snapshot), migrated into dbFile on first start. */
  legacyJournalFile: string;
  legacySnapshotFile: string;
  /** Where the 0.1 files are moved once migrated (kept, never read again). */
  legacyArchiveDir: string;
}

/**
 * The contract's controlFile env names the control record elsewhere when the engine cannot write into the volume
 * (Kubernetes mounts it from a ConfigMap).
 */
export function statePaths(stateDir: string, env: NodeJS.ProcessEnv = process.env): StatePaths {
  const reseatDir = path.join(stateDir, RECORD_DIR);
  const dataDir = path.join(stateDir, "data");
  return {
    stateDir,
    reseatDir,
    metaFile: path.join(stateDir, META_RECORD.file),
    controlFile: env[RESEAT_ENV.controlFile] || path.join(stateDir, CONTROL_RECORD.file),
    statusFile: path.join(stateDir, STATUS_RECORD.file),
    lockFile: path.join(stateDir, WRITER_LOCK_FILE),
    standbyStatusFile: (generation) => path.join(stateDir, standbyStatusFile(generation)),
    dataDir,
    dbFile: path.join(dataDir, "state.db"),
    legacyJournalFile: path.join(dataDir, "journal.log"),
    legacySnapshotFile: path.join(dataDir, "snapshot.json"),
    legacyArchiveDir: path.join(dataDir, "migrated-0.1"),
  };
}

/**
 * Scratch files the library creates in dataDir (a commit's backup, a restore or migration being built).
 * They are only ever renamed into place once complete; any left at start-up are from a killed process.
 */
export const SCRATCH_PREFIX = ".scratch-";

export function isScratchFile(name: string): boolean {
  return name.startsWith(SCRATCH_PREFIX);
}

/** The generation of a parked standby's status file name (contract's standbyStatusFile), else null. */
export function standbyGenerationOf(name: string): number | null {
  const match = /^standby-g(\d+)\.json$/.exec(name);
  return match ? Number(match[1]) : null;
}
