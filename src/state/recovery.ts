import { promises as fs } from "node:fs";
import * as path from "node:path";
import { LocalStateCorruptError } from "./errors";
import { ensureDirDurable, isTempFileOf, readFileIfExists } from "./fsUtil";
import { truncateJournalTo } from "./journalFile";
import { scanJournal } from "./journalFormat";
import { parseSnapshot } from "./snapshotFormat";

export interface RecoveredLocalState {
  entries: Map<string, string>;
  seq: number;
  /** False when the volume holds no snapshot and no valid journal record (a new or lost volume). */
  found: boolean;
  snapshotBytes: number;
  /** Torn journal tail that was cut off (0 when the journal was clean). */
  droppedTornBytes: number;
  replayedRecords: number;
}

/**
 * Rebuild the state from data/snapshot.json plus data/journal.log.
 *
 * Compaction writes the snapshot first (atomic rename) and only then empties the journal, so after a
 * crash the journal may still hold records the snapshot already covers: those (seq <= snapshot seq) are
 * skipped. Leftover snapshot temp files are from a compaction that crashed before its rename; they never
 * replaced anything and are deleted.
 */
export async function recoverLocalState(dataDir: string, snapshotFile: string, journalFile: string): Promise<RecoveredLocalState> {
  await ensureDirDurable(dataDir);
  await removeStaleTempFiles(dataDir, path.basename(snapshotFile));

  const snapshotBytes = await readFileIfExists(snapshotFile);
  const snapshot = snapshotBytes ? parseSnapshot(snapshotBytes, snapshotFile) : { seq: 0, entries: new Map<string, string>() };

  const journalBytes = (await readFileIfExists(journalFile)) ?? Buffer.alloc(0);
  const scan = scanJournal(journalBytes, journalFile);
  if (scan.tornBytes > 0) await truncateJournalTo(journalFile, scan.validBytes);

  let seq = snapshot.seq;
  let replayed = 0;
  let previous: number | null = null;
  for (const record of scan.records) {
    if (previous !== null && record.seq !== previous + 1) {
      throw new LocalStateCorruptError(`journal ${journalFile} jumps from seq ${previous} to ${record.seq}`);
    }
    previous = record.seq;
    if (record.seq <= snapshot.seq) continue; // already in the snapshot (crash between snapshot rename and truncate)
    if (record.seq !== seq + 1) {
      throw new LocalStateCorruptError(`journal ${journalFile} starts at seq ${record.seq} but the snapshot ends at seq ${seq}: writes are missing`);
    }
    if (record.op === "put") snapshot.entries.set(record.key, record.valueText);
    else snapshot.entries.delete(record.key);
    seq = record.seq;
    replayed++;
  }

  return {
    entries: snapshot.entries,
    seq,
    found: snapshotBytes !== null || scan.records.length > 0,
    snapshotBytes: snapshotBytes?.length ?? 0,
    droppedTornBytes: scan.tornBytes,
    replayedRecords: replayed,
  };
}

async function removeStaleTempFiles(dir: string, targetName: string): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    if (isTempFileOf(name, targetName)) await fs.rm(path.join(dir, name), { force: true });
  }
}
