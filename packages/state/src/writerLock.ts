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
 * Waiting: SQLite's busy handler sleeps and retries (this build has no blocking F_SETLKW), and would stall
 * the event loop; so a waiter tries without blocking every `pollMs` on the event loop. A failed try holds
 * nothing afterwards: its connection is closed (in exclusive locking mode a try that lost a race may keep a
 * SHARED or PENDING lock, which would deadlock two waiters), and it never created more than the empty file.
 */
export class WriterLock {
  private released = false;

  private constructor(
    readonly file: string,
    private readonly db: DatabaseSync,
  ) {}

  /** Take the lock now if nobody holds it; null if someone does. Creates the (empty) file if absent (its folder must exist). */
  static tryAcquire(file: string): WriterLock | null {
    const db = new DatabaseSync(file, { timeout: 0 });
    try {
      db.exec("PRAGMA locking_mode=EXCLUSIVE");
      // Before the transaction (else BEGIN creates a journal file); it reads the file: SQLITE_BUSY while held.
      db.exec("PRAGMA journal_mode=MEMORY");
      db.exec("BEGIN EXCLUSIVE"); // SQLITE_BUSY while another process holds it
      // Kept after the rollback: in exclusive locking mode SQLite releases its locks only when the connection closes.
      db.exec("ROLLBACK");
      return new WriterLock(file, db);
    } catch (error) {
      db.close();
      if (isBusy(error)) return null;
      throw new Error(`the volume's writer lock ${file} cannot be taken: ${errorMessage(error)}`, { cause: error });
    }
  }

  /**
   * Wait for the lock: tries now, then every `pollMs` (default 2 ms) until it holds it or `timeoutMs` passed
   * (WriterLockTimeoutError; default: wait for ever).
   */
  static async acquire(file: string, options: { pollMs?: number; timeoutMs?: number } = {}): Promise<WriterLock> {
    const pollMs = options.pollMs ?? 2;
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    for (;;) {
      const lock = WriterLock.tryAcquire(file);
      if (lock) return lock;
      if (Date.now() >= deadline) throw new WriterLockTimeoutError(file, options.timeoutMs!);
      await new Promise((resolve) => setTimeout(resolve, pollMs));
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

function isBusy(error: unknown): boolean {
  const code = (error as { errcode?: number }).errcode;
  // SQLITE_BUSY (5) and its extended codes (low byte 5); SQLITE_LOCKED (6) does not arise across processes.
  if (typeof code === "number") return (code & 0xff) === 5;
  return /database is locked/.test(errorMessage(error)); // a node:sqlite without errcode on its errors
}
