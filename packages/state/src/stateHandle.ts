import type { Committer } from "./committer";
import type { ResolvedConfig } from "./config";
import { StateClosedError } from "./errors";
import type { StatePaths } from "./layout";
import type { LocalDatabase } from "./localDatabase";
import { installShutdownHandlers } from "./signals";
import type { CommitRecord } from "./store/types";
import { writeStatus, type ResumeSource, type StateStatus } from "./volumeFiles";
import type { WriterLock } from "./writerLock";

/** A PE's key/value state: JSON documents, durable on the volume, committed to the persistent store. */
export interface StateHandle {
  readonly peId: string;
  readonly generation: number;
  readonly stateDir: string;
  /** Seq of the last acknowledged write; grows by one per put/delete and continues across generations. */
  readonly seq: number;
  readonly resumedFrom: ResumeSource;
  /** The seq the state was resumed at. */
  readonly resumedSeq: number;
  /** A fresh copy of the stored document (read from the database now), or undefined. */
  get<T = unknown>(key: string): T | undefined;
  has(key: string): boolean;
  /** Copies of every [key, document], in insertion order (reads the whole state: for small states and tests). */
  entries<T = unknown>(): Array<[string, T]>;
  /** Store a JSON document; resolves (with the write's seq) once its transaction is durable (WAL fsync'd). */
  put(key: string, value: unknown): Promise<number>;
  /** Remove a key (durably, like put); resolves to whether it existed. */
  delete(key: string): Promise<boolean>;
  /** Commit to the persistent store now; resolves to the newest commit (null without a store). */
  commitNow(): Promise<CommitRecord | null>;
  /** The content of status.json as of now. */
  status(): StateStatus;
  /** Flush queued writes, make a final commit, stop. Rejects if that commit failed (after closing). */
  close(): Promise<void>;
}

export class OpenStateHandle implements StateHandle {
  private committer!: Committer;
  private closing: Promise<void> | null = null;
  private uninstallSignals: (() => void) | null = null;
  private lock: WriterLock | null = null;

  constructor(
    private readonly config: ResolvedConfig,
    private readonly paths: StatePaths,
    private readonly local: LocalDatabase,
    readonly resumedFrom: ResumeSource,
    readonly resumedSeq: number,
    private readonly restoreFailed: StateStatus["restoreFailed"],
  ) {}

  attach(committer: Committer): void {
    this.committer = committer;
    if (this.config.handleSignals) {
      this.uninstallSignals = installShutdownHandlers(() => this.close(), { timeoutMs: this.config.signalTimeoutMs });
    }
  }

  /** The volume's writer lock this handle holds; released once the database is closed. */
  holdLock(lock: WriterLock): void {
    this.lock = lock;
  }

  get peId(): string {
    return this.config.peId;
  }
  get generation(): number {
    return this.config.generation;
  }
  get stateDir(): string {
    return this.config.stateDir;
  }
  get seq(): number {
    return this.local.seq;
  }

  get<T = unknown>(key: string): T | undefined {
    const text = this.local.getText(key);
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  has(key: string): boolean {
    return this.local.getText(key) !== undefined;
  }

  entries<T = unknown>(): Array<[string, T]> {
    return this.local.entries().map(([key, text]) => [key, JSON.parse(text) as T]);
  }

  async put(key: string, value: unknown): Promise<number> {
    this.assertOpen();
    assertKey(key);
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`value for "${key}" is not JSON-serialisable`);
    return (await this.local.put(key, text)).seq;
  }

  async delete(key: string): Promise<boolean> {
    this.assertOpen();
    assertKey(key);
    return (await this.local.delete(key)).existed;
  }

  commitNow(): Promise<CommitRecord | null> {
    if (this.closing) return Promise.reject(new StateClosedError());
    return this.committer.commitNow();
  }

  status(): StateStatus {
    const { lastCommit } = this.committer;
    return {
      peId: this.config.peId,
      generation: this.config.generation,
      phase: "serving",
      resumedFrom: this.resumedFrom,
      resumedSeq: this.resumedSeq,
      seq: this.local.seq,
      commitIntervalMs: this.committer.intervalMs,
      lastCommit: lastCommit && {
        seq: lastCommit.seq,
        at: lastCommit.at,
        bytes: lastCommit.bytes,
        sha256: lastCommit.sha256,
        generation: lastCommit.generation,
      },
      lastCommitError: this.committer.lastCommitError,
      lastCommitAttemptAt: this.committer.lastCommitAttemptAt,
      restoreFailed: this.restoreFailed,
      updatedAt: new Date().toISOString(),
    };
  }

  async writeStatus(): Promise<void> {
    await writeStatus(this.paths.statusFile, this.status());
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    try {
      this.committer.stop();
      await this.local.seal(); // writes queued before close() are still written and acknowledged
      let finalCommitError: unknown = null;
      if (!this.committer.fencedBy) await this.committer.commitNow().catch((error: unknown) => (finalCommitError = error));
      await this.writeStatus().catch(() => undefined);
      await this.local.close();
      this.lock?.release(); // only now: a successor waiting for it opens the database next
      await this.config.store?.close?.();
      if (finalCommitError) throw finalCommitError;
    } finally {
      // Only now: a SIGTERM arriving mid-close must not fall back to Node's default (instant exit).
      this.uninstallSignals?.();
    }
  }

  private assertOpen(): void {
    if (this.closing) throw new StateClosedError();
  }
}

function assertKey(key: unknown): void {
  if (typeof key !== "string") throw new TypeError("state keys must be strings");
}
