import { DatabaseSync } from "node:sqlite";
import { WriterLockTimeoutError } from "./errors";
import { errorMessage } from "./fsUtil";

/**
 * The volume's writer lock (contract/lock.ts): a kernel lock the holder keeps for its life and the kernel
 * releases when it exits or is killed. Node has no flock/fcntl API, so SQLite takes it: a connection to a
 * small database (`.reseat/writer.lock`) in `locking_mode=EXCLUSIVE` that began an EXCLUSIVE transaction
 * holds SQLite's EXCLUSIVE lock — a POSIX write lock over its PENDING byte and SHARED range — until the
 * connection closes or the process dies, and never writes a byte of the file for it (journal in memory, the
 * transaction rolled back).
 *
 * Waiting: this build has no blocking F_SETLKW, and SQLite's busy handler would stall the event loop for the
 * whole wait; so a waiter tries without blocking every `pollMs` on the event loop. A try first asks for a
 * SHARED lock (the journal-mode pragma reads the file): refused while a holder lives, and then nothing is
 * held, so the connection is tried again next time. A try that got further and still lost (another waiter
 * raced it) closes its connection: in exclusive locking mode it could keep a SHARED or PENDING lock and
 * deadlock two waiters. A waiter never created more than the empty file.
 */
export class WriterLock {
  private released = false;

  private constructor(
    readonly file: string,
    private readonly db: DatabaseSync,
  ) {}

  /** Take the lock now if nobody holds it; null if someone does. Creates the (empty) file if absent (its folder must exist). */
  static tryAcquire(file: string): WriterLock | null {
    const db = connect(file);
    try {
      if (attempt(db, file) === "held") return new WriterLock(file, db);
    } catch (error) {
      db.close();
      throw error;
    }
    db.close();
    return null;
  }

  /**
   * Wait for the lock: tries now, then every `pollMs` (default 2 ms) until it holds it or `timeoutMs` passed
   * (WriterLockTimeoutError; default: wait for ever).
   */
  static async acquire(file: string, options: { pollMs?: number; timeoutMs?: number } = {}): Promise<WriterLock> {
    const pollMs = options.pollMs ?? 2;
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    let db: DatabaseSync | null = null;
    try {
      for (;;) {
        db ??= connect(file);
        const outcome = attempt(db, file);
        if (outcome === "held") {
          const lock = new WriterLock(file, db);
          db = null;
          return lock;
        }
        if (outcome === "lost") {
          db.close();
          db = null;
        }
        if (Date.now() >= deadline) throw new WriterLockTimeoutError(file, options.timeoutMs!);
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      }
    } finally {
      db?.close();
    }
  }

  get held(): boolean {
    return !this.released;
  }

  /** Let go (the kernel would at exit anyway). Only after the state database is closed. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.db.close();
  }
}

function connect(file: string): DatabaseSync {
  const db = new DatabaseSync(file, { timeout: 0 });
  db.exec("PRAGMA locking_mode=EXCLUSIVE"); // no I/O: takes effect at the next lock
  return db;
}

/** "held": the EXCLUSIVE lock is this connection's; "busy": held elsewhere, nothing taken; "lost": close this connection. */
function attempt(db: DatabaseSync, file: string): "held" | "busy" | "lost" {
  try {
    // Before the transaction (else BEGIN creates a journal file). It needs a SHARED lock: refused while held.
    db.exec("PRAGMA journal_mode=MEMORY");
  } catch (error) {
    if (isBusy(error)) return "busy";
    throw lockError(file, error);
  }
  try {
    db.exec("BEGIN EXCLUSIVE");
    // Kept after the rollback: in exclusive locking mode SQLite releases its locks only when the connection closes.
    db.exec("ROLLBACK");
    return "held";
  } catch (error) {
    if (isBusy(error)) return "lost";
    throw lockError(file, error);
  }
}

function lockError(file: string, error: unknown): Error {
  return new Error(`the volume's writer lock ${file} cannot be taken: ${errorMessage(error)}`, { cause: error });
}

function isBusy(error: unknown): boolean {
  const code = (error as { errcode?: number }).errcode;
  // SQLITE_BUSY (5) and its extended codes (low byte 5); SQLITE_LOCKED (6) does not arise across processes.
  if (typeof code === "number") return (code & 0xff) === 5;
  return /database is locked/.test(errorMessage(error)); // a node:sqlite without errcode on its errors
}
