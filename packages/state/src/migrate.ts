import { promises as fs } from "node:fs";
import * as path from "node:path";
import { buildDatabaseFile, scratchPath } from "./dbFile";
import { ensureDirDurable, fsyncDir, isNotFound, placeDurably } from "./fsUtil";
import type { StatePaths } from "./layout";
import { readLegacyVolume } from "./legacyFormat";

export interface Migration {
  seq: number;
  keys: number;
}

/**
 * A volume written by reseat 0.1 (data/snapshot.json + data/journal.log) becomes a state database:
 * the 0.1 state is recovered as 0.1 did (torn tail dropped), written into a scratch database, which is
 * moved into place durably; only then are the 0.1 files moved aside into data/migrated-0.1/ (kept for
 * inspection, never read again). A crash before the move into place leaves the 0.1 files as they were
 * (the next start migrates again); a crash after it leaves a complete database, and the 0.1 files are
 * moved aside at that next start.
 */
export async function migrateLegacyVolume(paths: StatePaths, peId: string): Promise<Migration | null> {
  const legacy = await readLegacyVolume(paths.legacySnapshotFile, paths.legacyJournalFile);
  if (!legacy) return null;
  const scratch = scratchPath(paths.dataDir, "migrate");
  try {
    buildDatabaseFile(scratch, { peId, seq: legacy.seq, entries: legacy.entries });
    await placeDurably(scratch, paths.dbFile);
  } finally {
    await fs.rm(scratch, { force: true });
  }
  await archiveLegacyFiles(paths);
  return { seq: legacy.seq, keys: legacy.entries.size };
}

/** Move 0.1 files left next to a database aside (a migration that crashed after placing the database). */
export async function archiveLegacyFiles(paths: StatePaths): Promise<void> {
  const present: string[] = [];
  for (const file of [paths.legacySnapshotFile, paths.legacyJournalFile]) {
    try {
      await fs.access(file);
      present.push(file);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
  if (present.length === 0) return;
  await ensureDirDurable(paths.legacyArchiveDir);
  for (const file of present) await fs.rename(file, path.join(paths.legacyArchiveDir, path.basename(file)));
  await fsyncDir(paths.legacyArchiveDir);
  await fsyncDir(paths.dataDir);
}
