import { promises as fs } from "node:fs";
import { Committer } from "./committer";
import { resolveConfig, resolveStateDir, type OpenStateOptions, type ResolvedConfig } from "./config";
import { StaleGenerationError, StateClosedError } from "./errors";
import { errorMessage } from "./fsUtil";
import { statePaths, type StatePaths } from "./layout";
import { LocalState } from "./localState";
import { installShutdownHandlers } from "./signals";
import type { CommitRecord, PersistentStore } from "./store/types";
import {
  readControlInterval,
  readMeta,
  VolumeGenerationFence,
  writeStatus,
  type ResumeSource,
  type StateStatus,
} from "./volumeFiles";

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
  /** A fresh copy of the stored document, or undefined. */
  get<T = unknown>(key: string): T | undefined;
  has(key: string): boolean;
  /** Copies of every [key, document], in insertion order. */
  entries<T = unknown>(): Array<[string, T]>;
  /** Store a JSON document; resolves (with the write's seq) once it is fsync'd to the journal. */
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

/**
 * Open the PE's state: recover the volume's journal/snapshot ("local"), else restore the newest valid
 * commit from the store ("persistent"), else start "empty"; then start the periodic committer.
 */
export async function openState(options: OpenStateOptions = {}): Promise<StateHandle> {
  const paths = statePaths(resolveStateDir(options));
  const config = resolveConfig(options, paths.stateDir, await readMeta(paths.metaFile));
  const fence = new VolumeGenerationFence(paths.metaFile, config.generation);
  await fence.check(); // a stale executable must not even recover (recovery may truncate the journal)
  await fs.mkdir(`${paths.stateDir}/.reseat`, { recursive: true });

  let committer: Committer | null = null;
  const { state: local, recovered } = await LocalState.open(paths, {
    compactAfterBytes: config.compactAfterBytes,
    beforeAppend: async () => {
      if (committer?.fencedBy) throw committer.fencedBy;
      await fence.check();
    },
  });

  try {
    const resumedFrom = recovered.found ? "local" : await restoreFromStore(config.store, local);
    const storeState = await inspectStore(config.store, config.generation);
    const resumedSeq = local.seq;
    const handle = new OpenStateHandle(config, paths, local, resumedFrom, resumedSeq);
    committer = new Committer({
      peId: config.peId,
      generation: config.generation,
      store: config.store,
      snapshot: () => local.snapshot(),
      checkFence: () => fence.check(),
      readIntervalMs: async () => (await readControlInterval(paths.controlFile)) ?? config.fallbackIntervalMs,
      initialIntervalMs: (await readControlInterval(paths.controlFile)) ?? config.fallbackIntervalMs,
      initialLastCommit: storeState.newestCommit,
      initialError: storeState.error,
      retryBaseMs: config.retryBaseMs,
      retryMaxMs: config.retryMaxMs,
      onStatusChange: () => handle.writeStatus(),
    });
    handle.attach(committer);
    await handle.writeStatus();
    committer.start();
    return handle;
  } catch (error) {
    await local.close().catch(() => undefined);
    throw error;
  }
}

/**
 * The volume holds nothing: restore the store's newest valid commit. Errors reaching the store
 * propagate on purpose: starting empty while a commit exists would later overwrite the real state.
 */
async function restoreFromStore(store: PersistentStore | null, local: LocalState): Promise<ResumeSource> {
  const latest = store ? await store.latestValid() : null;
  if (!latest) return "empty";
  await local.installSnapshot(latest.bytes);
  return "persistent";
}

/**
 * Claim our generation in the store (so a late commit from an older executable is rejected) and find
 * its newest commit for status.json. A store that is merely unreachable does not stop a volume that
 * resumed locally from serving; a newer generation in the store does (this process is a zombie).
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

class OpenStateHandle implements StateHandle {
  private committer!: Committer;
  private closing: Promise<void> | null = null;
  private uninstallSignals: (() => void) | null = null;

  constructor(
    private readonly config: ResolvedConfig,
    private readonly paths: StatePaths,
    private readonly local: LocalState,
    readonly resumedFrom: ResumeSource,
    readonly resumedSeq: number,
  ) {}

  attach(committer: Committer): void {
    this.committer = committer;
    if (this.config.handleSignals) {
      this.uninstallSignals = installShutdownHandlers(() => this.close(), { timeoutMs: this.config.signalTimeoutMs });
    }
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
    return Array.from(this.local.entries(), ([key, text]) => [key, JSON.parse(text) as T]);
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
    this.uninstallSignals?.();
    this.committer.stop();
    await this.local.close(); // writes queued before close() are still flushed and acknowledged
    let finalCommitError: unknown = null;
    if (!this.committer.fencedBy) await this.committer.commitNow().catch((error: unknown) => (finalCommitError = error));
    await this.writeStatus().catch(() => undefined);
    await this.config.store?.close?.();
    if (finalCommitError) throw finalCommitError;
  }

  private assertOpen(): void {
    if (this.closing) throw new StateClosedError();
  }
}

function assertKey(key: unknown): void {
  if (typeof key !== "string") throw new TypeError("state keys must be strings");
}
