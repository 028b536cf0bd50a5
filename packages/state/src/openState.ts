import { META_RECORD, RESEAT_ENV } from "./contract";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { Committer, type Snapshot } from "./committer";
import { resolveConfig, resolveStateDir, type OpenStateOptions, type ResolvedConfig } from "./config";
import { buildDatabaseFile, COMMIT_FORMAT, inspectDatabaseFile, scratchPath, warmUpInspector } from "./dbFile";
import { LocalStateCorruptError, RestoreFailedError, StaleGenerationError } from "./errors";
import { VolumeGenerationFence } from "./fence";
import { ensureDirDurable, errorMessage, isNotFound, isTempFileOf, placeDurably, writeFileAtomic } from "./fsUtil";
import { isScratchFile, standbyGenerationOf, statePaths, type StatePaths } from "./layout";
import { checkSqliteSupport, LocalDatabase } from "./localDatabase";
import { archiveLegacyFiles, migrateLegacyVolume } from "./migrate";
import { restoreFromStore } from "./restore";
import { OpenStateHandle, type StateHandle } from "./stateHandle";
import type { CommitRecord, PersistentStore } from "./store/types";
import { readControlInterval, readMeta, writeStatus, type ResumeSource, type StateStatus } from "./volumeFiles";
import { WriterLock } from "./writerLock";

/**
 * Open the PE's state: the volume's database ("local"; a 0.1 journal + snapshot is migrated into one
 * first), else the newest commit of the store that verifies ("persistent"), else a new empty database
 * ("empty"); then start the periodic committer. When the store lists commits and none verifies, the
 * start is refused (RestoreFailedError, also written to status.json) unless starting empty is allowed.
 *
 * All of it holding the volume's writer lock (writerLock.ts), taken first and kept until close() or exit; a
 * standby (options.standby, RESEAT_STANDBY) reports itself parked and waits for it, having opened nothing.
 */
export async function openState(options: OpenStateOptions = {}): Promise<StateHandle> {
  checkSqliteSupport(); // before the volume is touched: an unsupported Node is a clear error, not a later surprise
  const env = options.env ?? process.env;
  const paths = statePaths(resolveStateDir(options), env);
  const config = resolveConfig(options, paths.stateDir, await readMeta(paths.metaFile));
  const fence = new VolumeGenerationFence(paths.metaFile, config.generation);
  fence.check(); // a stale executable must not even wait for the lock
  // Nothing below writes the volume before this process holds its writer lock (a standby parks here), but for
  // .reseat/ itself, where the lock file is (durably: a directory created here must not vanish with what goes in it).
  await ensureDirDurable(paths.reseatDir);
  const lock = await takeWriterLock(paths, config, options.onParked);
  try {
    fence.check(); // again, holding the lock: the writer before us may have recorded a newer generation
    const handle = await openLocked(paths, config, fence, env);
    handle.holdLock(lock);
    if (config.standby) await fs.rm(paths.standbyStatusFile(config.generation), { force: true }); // status.json says serving now
    return handle;
  } catch (error) {
    lock.release();
    if (config.standby) await fs.rm(paths.standbyStatusFile(config.generation), { force: true }).catch(() => undefined);
    throw error;
  }
}

/**
 * The volume's writer lock (writerLock.ts). Without standby: wait for a predecessor still letting go, up to
 * lockTimeoutMs. A standby reports itself parked first (its own status file, never the writer's, and
 * onParked), then waits for as long as the writer holds the lock: a live writer, or a stopped one.
 */
async function takeWriterLock(paths: StatePaths, config: ResolvedConfig, onParked: OpenStateOptions["onParked"]): Promise<WriterLock> {
  if (!config.standby) return WriterLock.acquire(paths.lockFile, { pollMs: config.lockPollMs, timeoutMs: config.lockTimeoutMs });
  const parked = await notStartedStatus(paths, config, "parked", null);
  await writeStatus(paths.standbyStatusFile(config.generation), parked);
  onParked?.(parked);
  return WriterLock.acquire(paths.lockFile, { pollMs: config.lockPollMs });
}

/** A status before any state is open: a standby's parked report, or a writer's refusal to start empty. */
async function notStartedStatus(
  paths: StatePaths,
  config: ResolvedConfig,
  phase: StateStatus["phase"],
  restoreFailed: StateStatus["restoreFailed"],
): Promise<StateStatus> {
  return {
    peId: config.peId,
    generation: config.generation,
    phase,
    resumedFrom: null,
    resumedSeq: 0,
    seq: 0,
    commitIntervalMs: (await readControlInterval(paths.controlFile)) ?? config.fallbackIntervalMs,
    lastCommit: null,
    lastCommitError: null,
    lastCommitAttemptAt: null,
    restoreFailed,
    updatedAt: new Date().toISOString(),
  };
}

/** Open the state, holding the writer lock: the start-up of a writer (see openState). */
async function openLocked(paths: StatePaths, config: ResolvedConfig, fence: VolumeGenerationFence, env: NodeJS.ProcessEnv): Promise<OpenStateHandle> {
  await prepareDirectories(paths, config.generation);
  // A standby records its generation itself, under the lock: any older process is fenced off from here on.
  if (config.standby || env[RESEAT_ENV.claimGeneration] === "1") await claimVolumeGeneration(paths, config.peId, config.generation);

  // Claim the generation first, so a stale executable fails before touching the volume.
  const storeState = await inspectStore(config.store, config.generation);
  const start = await establishLocalState(paths, config);

  let committer: Committer | null = null;
  const local = LocalDatabase.open(paths.dbFile, {
    beforeWrite: () => {
      if (committer?.fencedBy) throw committer.fencedBy;
      fence.check();
    },
  });
  try {
    const handle = new OpenStateHandle(config, paths, local, start.resumedFrom, local.seq, start.restoreFailed);
    committer = new Committer({
      peId: config.peId,
      generation: config.generation,
      store: config.store,
      currentSeq: () => local.seq,
      takeSnapshot: () => takeSnapshot(local, paths),
      checkFence: async () => fence.check(),
      readIntervalMs: async () => (await readControlInterval(paths.controlFile)) ?? config.fallbackIntervalMs,
      initialIntervalMs: (await readControlInterval(paths.controlFile)) ?? config.fallbackIntervalMs,
      initialLastCommit: start.restored ?? storeState.newestCommit,
      initialError: storeState.error,
      retryBaseMs: config.retryBaseMs,
      retryMaxMs: config.retryMaxMs,
      onStatusChange: () => handle.writeStatus(),
    });
    handle.attach(committer);
    await handle.writeStatus();
    committer.start();
    // Boot the checking worker before the first commit needs it, but not while the workload is starting.
    if (config.store) setTimeout(warmUpInspector, Math.min(1000, committer.intervalMs / 2)).unref();
    return handle;
  } catch (error) {
    await local.close().catch(() => undefined);
    throw error;
  }
}

/**
 * Where no one writes meta.json from outside (Kubernetes: the claim belongs to its pod), the executable
 * records its own generation before it touches the database: an older executable still running on the
 * volume (e.g. a force-deleted pod whose container lingers) is fenced off from then on.
 */
async function claimVolumeGeneration(paths: StatePaths, peId: string, generation: number): Promise<void> {
  const meta = await readMeta(paths.metaFile);
  if (meta && meta.generation >= generation) return;
  // The contract's meta record (the volume's name is the engine's business: the claim's, not the pod's; kept when known).
  await writeFileAtomic(paths.metaFile, META_RECORD.encode({ peId, generation, volume: meta?.volume ?? "", updatedAt: new Date().toISOString() }));
}

interface LocalStart {
  resumedFrom: ResumeSource;
  restored: CommitRecord | null;
  restoreFailed: { reasons: string[]; at: string } | null;
}

/** Make sure data/state.db exists: already there, migrated from 0.1, restored from the store, or new and empty. */
async function establishLocalState(paths: StatePaths, config: ResolvedConfig): Promise<LocalStart> {
  if (await exists(paths.dbFile)) {
    await archiveLegacyFiles(paths); // a migration that crashed after placing the database
    return { resumedFrom: "local", restored: null, restoreFailed: null };
  }
  if (await migrateLegacyVolume(paths, config.peId)) return { resumedFrom: "local", restored: null, restoreFailed: null };

  // The volume holds nothing. Errors reaching the store propagate on purpose: starting empty while a
  // commit exists would later overwrite the real state.
  const outcome = config.store ? await restoreFromStore(config.store, paths, config.peId) : { restored: null, failures: [] };
  if (outcome.restored) return { resumedFrom: "persistent", restored: outcome.restored, restoreFailed: null };
  const restoreFailed = outcome.failures.length > 0 ? { reasons: outcome.failures, at: new Date().toISOString() } : null;
  if (restoreFailed && !config.allowEmptyStart) {
    const error = new RestoreFailedError(restoreFailed.reasons);
    // The writer's own status file ("serving": it held the lock) saying it refused to start.
    await writeStatus(paths.statusFile, await notStartedStatus(paths, config, "serving", restoreFailed)).catch(() => undefined);
    throw error;
  }
  if (restoreFailed) process.stderr.write(`reseat state: starting empty as allowed; ${new RestoreFailedError(restoreFailed.reasons).message}\n`);
  const scratch = scratchPath(paths.dataDir, "new");
  try {
    buildDatabaseFile(scratch, { peId: config.peId, seq: 0 });
    await placeDurably(scratch, paths.dbFile);
  } finally {
    await fs.rm(scratch, { force: true });
  }
  return { resumedFrom: "empty", restored: null, restoreFailed };
}

/**
 * The committer's snapshot: SQLite's online backup into a scratch file on the volume, then (on a worker
 * thread) converted to a one-file rollback-journal database, integrity-checked and hashed. A database
 * that fails its integrity check is never shipped: the older commits stay the newest good ones.
 */
async function takeSnapshot(local: LocalDatabase, paths: StatePaths): Promise<Snapshot> {
  const file = scratchPath(paths.dataDir, "commit");
  const dispose = () => fs.rm(file, { force: true });
  try {
    await local.backupTo(file);
    const inspected = await inspectDatabaseFile(file, { toRollbackJournal: true, hash: true });
    if (inspected.problems.length > 0 || inspected.seq === null || !inspected.sha256) {
      throw new LocalStateCorruptError(`the local database's snapshot failed verification, not committed: ${inspected.problems.join("; ")}`);
    }
    return { file, seq: inspected.seq, bytes: inspected.bytes, sha256: inspected.sha256, format: COMMIT_FORMAT, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/**
 * Create .reseat/ and data/; drop temp and scratch files left by a process killed mid-write, and the reports of
 * standbys older than this writer (killed while parked, or fenced). Only ever run holding the writer lock: the
 * scratch files of a live writer are its commit in progress.
 */
async function prepareDirectories(paths: StatePaths, generation: number): Promise<void> {
  // Durably: a state directory created here (not a volume's mount point) must not vanish with the data in it.
  await ensureDirDurable(paths.reseatDir);
  for (const name of await fs.readdir(paths.reseatDir)) {
    const standbyOf = standbyGenerationOf(name);
    if (isTempFileOf(name, path.basename(paths.statusFile)) || (standbyOf !== null && standbyOf < generation)) {
      await fs.rm(path.join(paths.reseatDir, name), { force: true });
    }
  }
  await ensureDirDurable(paths.dataDir);
  for (const name of await fs.readdir(paths.dataDir)) {
    if (isScratchFile(name)) await fs.rm(path.join(paths.dataDir, name), { force: true });
  }
}

/**
 * Claim our generation in the store (so a late commit from an older executable is rejected) and find
 * its newest commit for status.json. A store that is merely unreachable does not stop a volume that
 * resumes locally from serving; a newer generation in the store does (this process is a zombie).
 */
async function inspectStore(store: PersistentStore | null, generation: number): Promise<{ newestCommit: CommitRecord | null; error: string | null }> {
  if (!store) return { newestCommit: null, error: null };
  try {
    await store.claimGeneration(generation);
    const newest = (await store.list()).find((listing) => listing.record !== null);
    return { newestCommit: newest?.record ?? null, error: null };
  } catch (error) {
    if (error instanceof StaleGenerationError) throw error;
    return { newestCommit: null, error: `persistent store unavailable at start: ${errorMessage(error)}` };
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}
