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
}

export interface CommitListing {
  /** Store-specific identifier of the commit (the file name for the directory store). */
  id: string;
  /** The commit's metadata, or null when it cannot even be read (damaged). Not verified against the bytes. */
  record: CommitRecord | null;
}

export interface VerifiedCommit {
  id: string;
  record: CommitRecord;
  bytes: Buffer;
}

/**
 * Where commits go so that a lost volume can be rebuilt. One store instance serves one PE.
 * Implementations must make each commit all-or-nothing and must fence: reject (StaleCommitError) a
 * commit or claim whose generation is older than the newest generation already accepted.
 */
export interface PersistentStore {
  readonly kind: string;
  /** Store the commit; record.bytes/sha256 must describe `bytes`. */
  commit(record: CommitRecord, bytes: Uint8Array): Promise<void>;
  /** The newest commit whose bytes verify (sha256, length), skipping damaged ones; null if none. */
  latestValid(): Promise<VerifiedCommit | null>;
  /** Commits newest first. */
  list(): Promise<CommitListing[]>;
  /** Register `generation` as the newest so older generations' late commits are rejected from now on. */
  claimGeneration(generation: number): Promise<void>;
  /** The newest generation the store has accepted (0 if none). */
  newestGeneration(): Promise<number>;
  close?(): Promise<void>;
}

/** The parsed RESEAT_STORE value. */
export type StoreConfig = DirectoryStoreConfig | { kind: string; [option: string]: unknown };

export interface DirectoryStoreConfig {
  kind: "directory";
  path: string;
  /** How many commits to keep (default 5). */
  keep?: number;
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
    /^[0-9a-f]{64}$/.test(r.sha256)
  );
}
