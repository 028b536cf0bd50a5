/** Metadata of one commit: a consistent snapshot of a PE's state at write `seq`. */
export interface CommitRecord {
  peId: string;
  /** Generation of the executable that made the commit (used for fencing). */
  generation: number;
  /** Every write up to and including this seq is in the snapshot. */
  seq: number;
  /** ISO time of the commit. */
  at: string;
  /** Length and sha256 (hex) of the snapshot bytes. */
  bytes: number;
  sha256: string;
  /**
   * What the bytes are: "sqlite-1" = a reseat state database (SQLite, one file). Absent in commits made by
   * reseat 0.1, whose bytes are a JSON snapshot (still restorable: converted on restore).
   */
  format?: string;
}

export interface CommitListing {
  /** Store-specific identifier of the commit (the file name for the directory store). */
  id: string;
  /** The commit's metadata, or null when it cannot even be read (damaged). Not verified against the bytes. */
  record: CommitRecord | null;
}

/** What fetching a commit's bytes found: its record (length and sha256 matched), or why it does not verify. */
export type FetchResult = { record: CommitRecord } | { damaged: string };

/**
 * Where commits go so that a lost volume can be rebuilt. One store instance serves one PE.
 * Implementations must make each commit all-or-nothing and must fence: reject (StaleCommitError) a
 * commit or claim whose generation is older than the newest generation already accepted.
 *
 * Pruning (after a commit) keeps the newest `keep` commits and never deletes the newest commit that
 * verifies (its bytes, read back, match its record), nor anything while no commit verifies (prunePolicy.ts).
 */
export interface PersistentStore {
  readonly kind: string;
  /** Store the snapshot in `file` as a commit; record.bytes/sha256 describe the file (computed by the caller). */
  commit(record: CommitRecord, file: string): Promise<void>;
  /** Commits newest first. */
  list(): Promise<CommitListing[]>;
  /**
   * Copy commit `id`'s bytes into `target` (created; fsync'd when it verifies), checking length and sha256
   * against the commit's record while copying. A commit that does not verify leaves no `target` behind.
   */
  fetch(id: string, target: string): Promise<FetchResult>;
  /** Register `generation` as the newest so older generations' late commits are rejected from now on. */
  claimGeneration(generation: number): Promise<void>;
  /** The newest generation the store has accepted (0 if none). */
  newestGeneration(): Promise<number>;
  /** Waits for clean-up in flight (pruning). */
  idle?(): Promise<void>;
  /** Waits for clean-up in flight, then releases connections. */
  close?(): Promise<void>;
}

/** The parsed RESEAT_STORE value. */
export type StoreConfig = DirectoryStoreConfig | { kind: string; [option: string]: unknown };

export interface DirectoryStoreConfig {
  kind: "directory";
  path: string;
  /** How many commits to keep (default 5). */
  keep?: number;
  /** Read by openState, not by the store: see OpenStateOptions.allowEmptyStart. */
  allowEmptyStart?: boolean;
}

export function isCommitRecord(value: unknown): value is CommitRecord {
  if (typeof value !== "object" || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r.peId === "string" &&
    Number.isSafeInteger(r.generation) &&
    Number.isSafeInteger(r.seq) &&
    typeof r.at === "string" &&
    Number.isSafeInteger(r.bytes) &&
    typeof r.sha256 === "string" &&
    /^[0-9a-f]{64}$/.test(r.sha256) &&
    (r.format === undefined || typeof r.format === "string")
  );
}
