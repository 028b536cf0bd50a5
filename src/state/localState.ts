import { JournalWriteFailedError, StateClosedError } from "./errors";
import { errorMessage, writeFileAtomic } from "./fsUtil";
import { JournalFile } from "./journalFile";
import { encodeRecord, type JournalRecord } from "./journalFormat";
import type { StatePaths } from "./layout";
import { recoverLocalState, type RecoveredLocalState } from "./recovery";
import { parseSnapshot, serializeSnapshot } from "./snapshotFormat";

export interface LocalStateOptions {
  /** Compact once the journal is at least this big (and at least as big as the last snapshot). */
  compactAfterBytes: number;
  /** Runs before each batch is appended; if it throws, the batch is refused (generation fencing). */
  beforeAppend: () => Promise<void>;
}

export interface WriteResult {
  seq: number;
  /** Whether the key had a value just before this write. */
  existed: boolean;
}

type WriteOp = { op: "put"; key: string; valueText: string } | { op: "delete"; key: string };

interface PendingWrite {
  op: WriteOp;
  resolve: (result: WriteResult) => void;
  reject: (error: unknown) => void;
}

/**
 * The real-time state on the volume: an in-memory map (key -> JSON text) backed by snapshot + journal.
 *
 * Writes are group-committed: every write queued while an fsync is in flight goes into the next batch,
 * which is appended with one write + one fdatasync. A write is applied to the map, and its promise
 * resolved, only after its batch is durable, so readers and snapshots never see unacknowledged data.
 * Appends, compaction and close run one at a time on `exclusive`.
 */
export class LocalState {
  private readonly pending: PendingWrite[] = [];
  private flushQueued = false;
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | null = null;
  private closed = false;
  private compactionError: string | null = null;
  /** After a failed compaction, wait for this much journal before trying again (not on every batch). */
  private retryCompactionAtBytes = 0;

  private constructor(
    private readonly paths: StatePaths,
    private readonly options: LocalStateOptions,
    private readonly map: Map<string, string>,
    private appliedSeq: number,
    private snapshotBytes: number,
    private readonly journal: JournalFile,
  ) {}

  static async open(paths: StatePaths, options: LocalStateOptions): Promise<{ state: LocalState; recovered: RecoveredLocalState }> {
    const recovered = await recoverLocalState(paths.dataDir, paths.snapshotFile, paths.journalFile);
    const journal = await JournalFile.open(paths.journalFile);
    const state = new LocalState(paths, options, recovered.entries, recovered.seq, recovered.snapshotBytes, journal);
    return { state, recovered };
  }

  /** Seq of the last durable, applied write. */
  get seq(): number {
    return this.appliedSeq;
  }

  get journalBytes(): number {
    return this.journal.size;
  }

  get lastCompactionError(): string | null {
    return this.compactionError;
  }

  getText(key: string): string | undefined {
    return this.map.get(key);
  }

  entries(): IterableIterator<[string, string]> {
    return this.map.entries();
  }

  put(key: string, valueText: string): Promise<WriteResult> {
    return this.enqueue({ op: "put", key, valueText });
  }

  delete(key: string): Promise<WriteResult> {
    return this.enqueue({ op: "delete", key });
  }

  /** A consistent snapshot of every applied write; synchronous, so no write can interleave. */
  snapshot(): { seq: number; bytes: Buffer } {
    return { seq: this.appliedSeq, bytes: serializeSnapshot(this.appliedSeq, this.map.entries()) };
  }

  compact(): Promise<void> {
    return this.exclusive(() => this.compactNow());
  }

  /** Replace the (empty) local state with snapshot bytes restored from the persistent store. */
  installSnapshot(bytes: Uint8Array): Promise<void> {
    return this.exclusive(async () => {
      const snapshot = parseSnapshot(bytes, "from the persistent store");
      await writeFileAtomic(this.paths.snapshotFile, bytes);
      await this.journal.truncate();
      this.map.clear();
      for (const [key, valueText] of snapshot.entries) this.map.set(key, valueText);
      this.appliedSeq = snapshot.seq;
      this.snapshotBytes = bytes.length;
    });
  }

  /** Flush writes already queued, then close the journal; later writes fail with StateClosedError. */
  close(): Promise<void> {
    if (this.closed) return this.chain;
    this.closed = true;
    return this.exclusive(() => this.journal.close());
  }

  private enqueue(op: WriteOp): Promise<WriteResult> {
    if (this.closed) return Promise.reject(new StateClosedError());
    if (this.failure) return Promise.reject(this.failure);
    const result = new Promise<WriteResult>((resolve, reject) => this.pending.push({ op, resolve, reject }));
    if (!this.flushQueued) {
      this.flushQueued = true;
      void this.exclusive(() => this.flushPending());
    }
    return result;
  }

  private exclusive(task: () => Promise<void>): Promise<void> {
    const run = this.chain.then(task);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async flushPending(): Promise<void> {
    this.flushQueued = false; // writes arriving from now on form the next batch
    const batch = this.pending.splice(0);
    if (batch.length === 0) return;
    if (this.failure) return rejectAll(batch, this.failure);
    try {
      await this.options.beforeAppend();
    } catch (error) {
      return rejectAll(batch, error);
    }

    const records: JournalRecord[] = batch.map(({ op }, index) => ({ ...op, seq: this.appliedSeq + index + 1 }));
    try {
      await this.journal.append(Buffer.concat(records.map(encodeRecord)));
    } catch (error) {
      // After a failed write/fsync the file's tail is unknown (and the kernel may have dropped dirty
      // pages), so never acknowledge anything again from this process; a restart recovers from disk.
      this.failure = new JournalWriteFailedError(`journal append failed: ${errorMessage(error)}`, { cause: error });
      rejectAll(batch, this.failure);
      return rejectAll(this.pending.splice(0), this.failure);
    }

    records.forEach((record, index) => {
      const existed = this.map.has(record.key);
      if (record.op === "put") this.map.set(record.key, record.valueText);
      else this.map.delete(record.key);
      this.appliedSeq = record.seq;
      batch[index]?.resolve({ seq: record.seq, existed });
    });

    // Compacting only once the journal outgrows the snapshot keeps write amplification bounded for big states.
    if (this.journal.size >= Math.max(this.options.compactAfterBytes, this.snapshotBytes, this.retryCompactionAtBytes)) {
      await this.compactNow().catch(() => undefined); // recorded in compactionError; the journal still holds everything
    }
  }

  /**
   * Snapshot, then empty the journal. Crash-safe at every step: before the rename the old snapshot +
   * full journal are intact; after it, journal records are all <= the new snapshot's seq and recovery
   * skips them; truncation is a single atomic metadata change.
   */
  private async compactNow(): Promise<void> {
    if (this.failure) return;
    const { bytes } = this.snapshot();
    try {
      await writeFileAtomic(this.paths.snapshotFile, bytes);
      this.snapshotBytes = bytes.length;
      await this.journal.truncate();
      this.compactionError = null;
      this.retryCompactionAtBytes = 0;
    } catch (error) {
      this.compactionError = errorMessage(error);
      this.retryCompactionAtBytes = this.journal.size + this.options.compactAfterBytes;
      throw error;
    }
  }
}

function rejectAll(batch: PendingWrite[], error: unknown): void {
  for (const write of batch) write.reject(error);
}
