import { StaleGenerationError } from "./errors";
import { errorMessage } from "./fsUtil";
import type { CommitRecord, PersistentStore } from "./store/types";

export interface CommitterOptions {
  peId: string;
  generation: number;
  store: PersistentStore | null;
  /** Seq of the last applied write (a commit is skipped while it has not moved since the last one). */
  currentSeq: () => number;
  /** A consistent snapshot of every applied write, in a scratch file the committer disposes of. */
  takeSnapshot: () => Promise<Snapshot>;
  /** Volume fencing: throws StaleGenerationError when a newer generation owns the volume. */
  checkFence: () => Promise<void>;
  /** The interval to use from now on; called at every tick so control.json changes apply live. */
  readIntervalMs: () => Promise<number>;
  initialIntervalMs: number;
  /** Newest commit already in the store (possibly from an earlier generation), for status only. */
  initialLastCommit: CommitRecord | null;
  initialError: string | null;
  retryBaseMs: number;
  retryMaxMs: number;
  /** How often control.json is re-read between ticks, so that a shorter interval applies at once (default 1000). */
  controlPollMs?: number;
  /** Called after every tick and commit attempt (status.json is rewritten there). */
  onStatusChange: () => Promise<void>;
}

export interface Snapshot {
  file: string;
  /** Every write up to this seq is in the file. */
  seq: number;
  bytes: number;
  sha256: string;
  /** Commit format of the file (CommitRecord.format). */
  format: string;
  dispose: () => Promise<void>;
}

/**
 * Ships a snapshot to the persistent store every interval. A failed commit is retried with capped
 * exponential backoff (never slower than the normal interval) while writes keep being served.
 * Commits never overlap: they run one after another on `chain`.
 */
export class Committer {
  lastCommit: CommitRecord | null;
  lastCommitError: string | null;
  lastCommitAttemptAt: string | null = null;
  intervalMs: number;
  consecutiveFailures = 0;
  /** Set once the volume or the store says a newer generation exists; commits stop for good. */
  fencedBy: StaleGenerationError | null = null;

  /** Seq of the last commit made by this process; an unchanged seq is not shipped again. */
  private lastShippedSeq: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private controlTimer: NodeJS.Timeout | null = null;
  /** When the pending tick was scheduled: a changed interval is counted from there. */
  private scheduledAt = 0;
  private stopped = false;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: CommitterOptions) {
    this.intervalMs = options.initialIntervalMs;
    this.lastCommit = options.initialLastCommit;
    this.lastCommitError = options.initialError;
  }

  start(): void {
    // If the store was unreachable at start-up, try soon rather than a whole interval later.
    this.schedule(this.lastCommitError ? Math.min(this.options.retryBaseMs, this.intervalMs) : this.intervalMs);
    this.pollControl();
  }

  /** Stop the timer; commitNow() still works (close uses it for the final commit). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.controlTimer) clearTimeout(this.controlTimer);
    this.timer = null;
    this.controlTimer = null;
  }

  /** Commit now (after any commit in flight). Resolves to the newest commit, null without a store. */
  commitNow(): Promise<CommitRecord | null> {
    const run = this.chain.then(() => this.commitOnce());
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** The next tick `delayMs` after `from` (default now). */
  private schedule(delayMs: number, from = Date.now()): void {
    if (this.stopped || this.fencedBy) return;
    this.scheduledAt = from;
    this.timer = setTimeout(() => void this.tick(), Math.max(0, from + delayMs - Date.now()));
    this.timer.unref(); // the workload, not the committer, decides how long the process lives
  }

  /**
   * Re-reads the interval between ticks: without this, going from a long interval to a short one
   * would wait out the long one. A pending regular tick is moved to (scheduled + new interval).
   */
  private pollControl(): void {
    if (this.stopped) return;
    this.controlTimer = setTimeout(() => {
      void this.options
        .readIntervalMs()
        .catch(() => this.intervalMs)
        .then((intervalMs) => {
          if (intervalMs !== this.intervalMs && !this.stopped) {
            this.intervalMs = intervalMs;
            if (this.timer && this.consecutiveFailures === 0) {
              clearTimeout(this.timer);
              const due = Math.max(0, this.scheduledAt + intervalMs - Date.now());
              this.timer = setTimeout(() => void this.tick(), due);
              this.timer.unref();
            }
          }
          this.pollControl();
        });
    }, this.options.controlPollMs ?? 1000);
    this.controlTimer.unref();
  }

  /**
   * Commits start every interval (counted from the previous start, not its end): the state in the store is
   * then at most one interval plus one commit behind, however long a commit of a large state takes.
   */
  private async tick(): Promise<void> {
    this.timer = null;
    const started = Date.now();
    this.intervalMs = await this.options.readIntervalMs().catch(() => this.intervalMs);
    const ok = await this.commitNow().then(
      () => true,
      () => false,
    );
    if (ok) this.schedule(this.intervalMs, started);
    else this.schedule(this.retryDelayMs());
  }

  /** 1x, 2x, 4x ... retryBaseMs, capped at retryMaxMs and at the interval (so loss stays bounded by it). */
  private retryDelayMs(): number {
    const cap = Math.min(this.options.retryMaxMs, this.intervalMs);
    const exponent = Math.min(this.consecutiveFailures - 1, 30);
    return Math.min(cap, this.options.retryBaseMs * 2 ** exponent);
  }

  private async commitOnce(): Promise<CommitRecord | null> {
    const { store } = this.options;
    try {
      if (this.fencedBy) throw this.fencedBy;
      if (!store) return null;
      if (this.options.currentSeq() === this.lastShippedSeq) return this.lastCommit;
      const at = new Date().toISOString();
      this.lastCommitAttemptAt = at;
      await this.options.checkFence();
      const snapshot = await this.options.takeSnapshot();
      const record: CommitRecord = {
        peId: this.options.peId,
        generation: this.options.generation,
        seq: snapshot.seq,
        at,
        bytes: snapshot.bytes,
        sha256: snapshot.sha256,
        format: snapshot.format,
      };
      try {
        await store.commit(record, snapshot.file);
      } finally {
        await snapshot.dispose();
      }
      const seq = snapshot.seq;
      this.lastCommit = record;
      this.lastShippedSeq = seq;
      this.lastCommitError = null;
      this.consecutiveFailures = 0;
      return record;
    } catch (error) {
      if (error instanceof StaleGenerationError) this.fencedBy = error;
      this.lastCommitError = errorMessage(error);
      this.consecutiveFailures++;
      throw error;
    } finally {
      await this.options.onStatusChange().catch(() => undefined);
    }
  }
}
