import { promises as fs } from "node:fs";
import { buildDatabaseFile, COMMIT_FORMAT, inspectDatabaseFile, scratchPath } from "./dbFile";
import { LocalStateCorruptError } from "./errors";
import { placeDurably } from "./fsUtil";
import type { StatePaths } from "./layout";
import { parseLegacySnapshot, type LegacyState } from "./legacyFormat";
import type { CommitRecord, PersistentStore } from "./store/types";

export interface RestoreOutcome {
  /** The commit now in place as the local database; null when none was restored. */
  restored: CommitRecord | null;
  /** Why each commit tried before (newest first) was not restored: "<commit id>: <reason>". */
  failures: string[];
}

/**
 * The volume holds no state: put the newest commit that verifies in place as the local database.
 * Verifying a commit: its bytes match the record's length and sha256 (checked by the store while it
 * copies them into a scratch file), SQLite's integrity_check passes, and the database says it is this
 * PE's state at the record's seq. A 0.1 commit (a JSON snapshot) is converted into a database. The
 * scratch file is moved into place only once all of this holds. Errors reaching the store, or writing
 * the volume, propagate: they say nothing about the commits.
 */
export async function restoreFromStore(store: PersistentStore, paths: StatePaths, peId: string): Promise<RestoreOutcome> {
  const failures: string[] = [];
  for (const { id, record: listed } of await store.list()) {
    if (!listed) {
      failures.push(`${id}: commit record unreadable`);
      continue;
    }
    const fetched = scratchPath(paths.dataDir, "restore");
    const converted = scratchPath(paths.dataDir, "restore-0.1");
    try {
      const result = await store.fetch(id, fetched);
      if ("damaged" in result) {
        failures.push(`${id}: ${result.damaged}`);
        continue;
      }
      const { record } = result;
      let database = fetched;
      if (record.format === undefined) {
        let legacy: LegacyState;
        try {
          legacy = parseLegacySnapshot(await fs.readFile(fetched), `commit ${id}`);
        } catch (error) {
          if (!(error instanceof LocalStateCorruptError)) throw error;
          failures.push(`${id}: ${error.message}`);
          continue;
        }
        buildDatabaseFile(converted, { peId, seq: legacy.seq, entries: legacy.entries });
        database = converted;
      } else if (record.format !== COMMIT_FORMAT) {
        failures.push(`${id}: unknown commit format ${JSON.stringify(record.format)}`);
        continue;
      }
      const inspected = await inspectDatabaseFile(database);
      const problems = [...inspected.problems];
      if (inspected.seq !== null && inspected.seq !== record.seq) problems.push(`database is at seq ${inspected.seq}, the record says ${record.seq}`);
      if (inspected.peId !== null && inspected.peId !== peId) problems.push(`database belongs to PE "${inspected.peId}"`);
      if (problems.length > 0) {
        failures.push(`${id}: ${problems.join("; ")}`);
        continue;
      }
      await placeDurably(database, paths.dbFile);
      return { restored: record, failures };
    } finally {
      await fs.rm(fetched, { force: true });
      await fs.rm(converted, { force: true });
    }
  }
  return { restored: null, failures };
}
