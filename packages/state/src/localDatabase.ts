import { rm } from "node:fs/promises";
import { backup, DatabaseSync, type StatementSync } from "node:sqlite";
import { DB_FORMAT } from "./dbFile";
import { LocalStateCorruptError, StateClosedError, StateConfigError, StateWriteFailedError } from "./errors";
import { errorMessage } from "./fsUtil";

export interface LocalDatabaseOptions {
  /** Runs before each batch is written; if it throws, the batch is refused (generation fencing). */
  beforeWrite: () => void;
}

export interface WriteResult {
  seq: number;
  /** For deletes: whether the key had a value. */
  existed: boolean;
}

type WriteOp = { op: "put"; key: string; valueText: string } | { op: "delete"; key: string };

interface PendingWrite {
  op: WriteOp;
  resolve: (result: WriteResult) => void;
  reject: (error: unknown) => void;
}

/**
 * Refuse a Node whose node:sqlite lacks what this library relies on (package.json's engines: >=22.16.0 <23 ||
 * >=24): backup() (22.16 / 23.8), the busy `timeout` option and isTransaction (22.16 / 24.0). Node 23 would run,
 * but a new process would fail at once on the database its predecessor still holds instead of waiting for it.
 */
export function checkSqliteSupport(): void {
  const db = new DatabaseSync(":memory:", { timeout: 1 });
  try {
    const busy = Object.values(db.prepare("PRAGMA busy_timeout").get() ?? {})[0];
    const missing = [
      typeof backup !== "function" ? "backup()" : "",
      busy !== 1 ? "the timeout option" : "",
      typeof (db as { isTransaction?: unknown }).isTransaction !== "boolean" ? "isTransaction" : "",
    ].filter(Boolean);
    if (missing.length) {
      throw new StateConfigError(`@reseat/state needs Node >=22.16.0 <23 || >=24: node:sqlite of Node ${process.version} lacks ${missing.join(", ")}`);
    }
  } finally {
    db.close();
  }
}

/** Pages per backup step: small steps keep the connection free for the workload's writes in between. */
const BACKUP_PAGES_PER_STEP = 256;
/** A backup that failed is started again from the beginning, this many times in all. */
const BACKUP_ATTEMPTS = 3;

/**
 * The real-time state on the volume: a SQLite database in WAL mode with synchronous=FULL, so a
 * transaction is durable once COMMIT returns (the WAL is fsync'd; SQLite fsyncs the directory when it
 * creates the WAL). SQLite does what the 0.1 journal did by hand: checksummed log frames, torn-tail
 * recovery, checkpointing (compaction). Reads go to the database on demand; nothing is loaded whole.
 *
 * locking_mode=EXCLUSIVE: one process owns the file while it is open (a second opener waits, then
 * fails) and the WAL index lives in the process's heap rather than in a shared-memory file, which is
 * both safer on network/FUSE volumes and one file fewer.
 *
 * Writes are group-committed: puts arriving in the same turn of the event loop (and while the fence is
 * checked) form one transaction. A write's promise resolves only after its transaction committed, and
 * readers never see uncommitted writes (all run on this one connection, between transactions).
 */
export class LocalDatabase {
  private readonly pending: PendingWrite[] = [];
  private flushQueued = false;
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | null = null;
  private sealed = false;
  private closed = false;
  private readonly statements: {
    get: StatementSync;
    put: StatementSync;
    delete: StatementSync;
    entries: StatementSync;
    setSeq: StatementSync;
  };

  private constructor(
    private readonly db: DatabaseSync,
    private readonly options: LocalDatabaseOptions,
    private appliedSeq: number,
  ) {
    this.statements = {
      get: db.prepare("SELECT value FROM kv WHERE key = ?"),
      put: db.prepare("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
      delete: db.prepare("DELETE FROM kv WHERE key = ?"),
      entries: db.prepare("SELECT key, value FROM kv ORDER BY rowid"),
      setSeq: db.prepare("UPDATE reseat_meta SET value = ? WHERE name = 'seq'"),
    };
  }

  /** Open an existing state database (created by buildDatabaseFile, restored, or left by an earlier process). */
  static open(file: string, options: LocalDatabaseOptions): LocalDatabase {
    // timeout: a process that is still letting go of the file (its lock) gets this long.
    const db = new DatabaseSync(file, { timeout: 10_000 });
    try {
      db.exec("PRAGMA locking_mode=EXCLUSIVE");
      const mode = (db.prepare("PRAGMA journal_mode=WAL").get() as { journal_mode: string }).journal_mode;
      if (mode !== "wal") throw new LocalStateCorruptError(`${file}: could not switch to WAL mode (got ${mode})`);
      db.exec("PRAGMA synchronous=FULL");
      const meta = readMeta(db, file);
      if (meta.format !== DB_FORMAT) throw new LocalStateCorruptError(`${file}: unknown format ${JSON.stringify(meta.format)}`);
      const seq = Number(meta.seq);
      if (!Number.isSafeInteger(seq) || seq < 0) throw new LocalStateCorruptError(`${file}: invalid seq ${JSON.stringify(meta.seq)}`);
      return new LocalDatabase(db, options, seq);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  /** Seq of the last durable, applied write. */
  get seq(): number {
    return this.appliedSeq;
  }

  getText(key: string): string | undefined {
    this.assertOpen();
    return (this.statements.get.get(key) as { value: string } | undefined)?.value;
  }

  entries(): Array<[string, string]> {
    this.assertOpen();
    return (this.statements.entries.all() as Array<{ key: string; value: string }>).map((row) => [row.key, row.value]);
  }

  put(key: string, valueText: string): Promise<WriteResult> {
    return this.enqueue({ op: "put", key, valueText });
  }

  delete(key: string): Promise<WriteResult> {
    return this.enqueue({ op: "delete", key });
  }

  /**
   * A consistent copy of every committed write, through SQLite's online backup: writes go on meanwhile and,
   * being on this connection, are carried into the copy as they happen, so it is consistent as of its end.
   */
  async backupTo(file: string): Promise<void> {
    this.assertOpen();
    // node:sqlite's backup gives up on a step that meets the database busy with this connection's own
    // writes (it rejects with "not an error", seen under load). The copy is scratch, the database is
    // untouched by a failed copy: start it again a few times before the commit attempt fails.
    for (let attempt = 1; ; attempt++) {
      try {
        await backup(this.db, file, { rate: BACKUP_PAGES_PER_STEP });
        return;
      } catch (error) {
        if (attempt >= BACKUP_ATTEMPTS || this.closed) throw error;
        await Promise.all([rm(file, { force: true }), rm(`${file}-journal`, { force: true })]);
      }
    }
  }

  /** Stop taking writes; those queued so far are still written and acknowledged. The database stays readable. */
  seal(): Promise<void> {
    this.sealed = true;
    return this.exclusive(() => this.flushPending());
  }

  /** Seal, then close the database (checkpointing its WAL). */
  async close(): Promise<void> {
    await this.seal();
    if (this.closed) return;
    this.closed = true;
    await this.exclusive(async () => this.db.close());
  }

  private enqueue(op: WriteOp): Promise<WriteResult> {
    if (this.sealed) return Promise.reject(new StateClosedError());
    if (this.failure) return Promise.reject(this.failure);
    const result = new Promise<WriteResult>((resolve, reject) => this.pending.push({ op, resolve, reject }));
    if (!this.flushQueued) {
      this.flushQueued = true;
      // After the current turn of the event loop: the writes of every request read in it share one fsync.
      setImmediate(() => void this.exclusive(() => this.flushPending()));
    }
    return result;
  }

  private exclusive(task: () => Promise<void>): Promise<void> {
    const run = this.chain.then(task);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async flushPending(): Promise<void> {
    this.flushQueued = false;
    const batch = this.pending.splice(0);
    if (batch.length === 0) return;
    if (this.failure) return rejectAll(batch, this.failure);
    try {
      this.options.beforeWrite();
    } catch (error) {
      return rejectAll(batch, error);
    }
    const results: WriteResult[] = [];
    try {
      let seq = this.appliedSeq;
      this.db.exec("BEGIN IMMEDIATE");
      for (const { op } of batch) {
        if (op.op === "put") {
          this.statements.put.run(op.key, op.valueText);
          results.push({ seq: ++seq, existed: true });
        } else {
          const { changes } = this.statements.delete.run(op.key);
          results.push({ seq: ++seq, existed: Number(changes) > 0 });
        }
      }
      this.statements.setSeq.run(seq);
      this.db.exec("COMMIT"); // returns once the WAL is fsync'd (synchronous=FULL)
      this.appliedSeq = seq;
    } catch (error) {
      if (this.db.isTransaction) {
        try {
          this.db.exec("ROLLBACK");
        } catch {
          // the connection is in an unknown state; the failure below stops all further writes anyway
        }
      }
      // After a failed write or fsync what reached the disk is unknown (and the kernel may have dropped
      // dirty pages), so this process acknowledges nothing any more; a restart recovers from the disk.
      this.failure = new StateWriteFailedError(`state write failed: ${errorMessage(error)}`, { cause: error });
      rejectAll(batch, this.failure);
      return rejectAll(this.pending.splice(0), this.failure);
    }
    batch.forEach((write, index) => write.resolve(results[index]!));
  }

  private assertOpen(): void {
    if (this.closed) throw new StateClosedError();
  }
}

function readMeta(db: DatabaseSync, file: string): Record<string, unknown> {
  try {
    const rows = db.prepare("SELECT name, value FROM reseat_meta").all() as Array<{ name: string; value: unknown }>;
    return Object.fromEntries(rows.map((row) => [row.name, row.value]));
  } catch (error) {
    throw new LocalStateCorruptError(`${file} is not a reseat state database: ${errorMessage(error)}`, { cause: error });
  }
}

function rejectAll(batch: PendingWrite[], error: unknown): void {
  for (const write of batch) write.reject(error);
}
