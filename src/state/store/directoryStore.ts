import { promises as fs } from "node:fs";
import * as path from "node:path";
import { StaleCommitError, StateConfigError } from "../errors";
import { ensureDirDurable, fsyncDir, isNotFound, readFileIfExists, sha256Hex, writeFileAtomic } from "../fsUtil";
import { isCommitRecord, type CommitListing, type CommitRecord, type PersistentStore, type VerifiedCommit } from "./types";

/**
 * Commits as files under <root>/<peId>/:
 *   g<generation:10>-s<seq:16>.commit = one line of JSON CommitRecord, "\n", then the snapshot bytes
 *   fence.json                        = {"generation": newest generation accepted}
 * Zero-padded names sort by (generation, seq), i.e. in acceptance order, because fencing never lets
 * the generation go down. Each commit is written to a temp file, fsync'd, renamed and the directory
 * fsync'd, so a commit is either fully there or absent.
 */
const COMMIT_NAME = /^g(\d{10})-s(\d{16})\.commit$/;
const FENCE_FILE = "fence.json";
const HEADER_PEEK_BYTES = 64 * 1024;
/** Temp files older than this belong to a crashed writer and are removed when pruning. */
const STALE_TEMP_MS = 10 * 60_000;

export interface DirectoryStoreOptions {
  /** How many newest commits to keep (default 5). */
  keep?: number;
}

export class DirectoryStore implements PersistentStore {
  readonly kind = "directory";
  readonly dir: string;
  private readonly keep: number;

  constructor(
    root: string,
    readonly peId: string,
    options: DirectoryStoreOptions = {},
  ) {
    if (!root) throw new StateConfigError("directory store needs a path");
    this.keep = options.keep ?? 5;
    if (!Number.isSafeInteger(this.keep) || this.keep < 1) throw new StateConfigError(`directory store keep must be >= 1, got ${options.keep}`);
    // encodeURIComponent keeps any peId a single, safe path segment.
    this.dir = path.join(root, encodeURIComponent(peId));
  }

  async commit(record: CommitRecord, bytes: Uint8Array): Promise<void> {
    this.assertDescribes(record, bytes);
    await ensureDirDurable(this.dir);
    const newest = await this.newestGeneration();
    if (record.generation < newest) throw new StaleCommitError(record.generation, newest);
    // Raise the fence before the commit appears, so a crash in between can only over-fence.
    if (record.generation > (await this.readFence())) await this.writeFence(record.generation);
    const header = Buffer.from(`${JSON.stringify(record)}\n`, "utf8");
    await writeFileAtomic(path.join(this.dir, commitFileName(record)), [header, bytes]);
    // Old commits are removed after the commit returns: deleting a large file costs as much as a good
    // part of writing one, and the new commit is already durable. Prunes run one after another.
    this.pruning = this.pruning.then(() => this.prune()).catch(() => undefined);
  }

  /** Waits for pending clean-up (tests, and processes about to exit). */
  async close(): Promise<void> {
    await this.pruning;
  }

  async latestValid(): Promise<VerifiedCommit | null> {
    for (const name of await this.commitNames()) {
      const verified = await this.readVerified(name);
      if (verified) return verified;
    }
    return null;
  }

  async list(): Promise<CommitListing[]> {
    const listing: CommitListing[] = [];
    for (const name of await this.commitNames()) listing.push({ id: name, record: await this.readHeader(name) });
    return listing;
  }

  async claimGeneration(generation: number): Promise<void> {
    const newest = await this.newestGeneration();
    if (generation < newest) throw new StaleCommitError(generation, newest);
    if (generation > (await this.readFence())) {
      await ensureDirDurable(this.dir);
      await this.writeFence(generation);
    }
  }

  async newestGeneration(): Promise<number> {
    const [newestName] = await this.commitNames();
    const fromNames = newestName ? Number(COMMIT_NAME.exec(newestName)?.[1]) : 0;
    return Math.max(fromNames, await this.readFence());
  }

  /** Read and check one commit: header parses, matches the file name and PE, bytes match length and sha256. */
  async readVerified(id: string): Promise<VerifiedCommit | null> {
    const match = COMMIT_NAME.exec(id);
    const raw = match ? await readFileIfExists(path.join(this.dir, id)) : null;
    if (!match || !raw) return null;
    const newline = raw.indexOf(0x0a);
    if (newline === -1) return null;
    const record = parseRecord(raw.subarray(0, newline));
    const bytes = raw.subarray(newline + 1);
    const matches =
      record !== null &&
      record.peId === this.peId &&
      record.generation === Number(match[1]) &&
      record.seq === Number(match[2]) &&
      record.bytes === bytes.length &&
      record.sha256 === sha256Hex(bytes);
    return matches ? { id, record, bytes } : null;
  }

  private assertDescribes(record: CommitRecord, bytes: Uint8Array): void {
    if (!isCommitRecord(record)) throw new TypeError("invalid commit record");
    if (record.peId !== this.peId) throw new TypeError(`commit for PE "${record.peId}" sent to the store of PE "${this.peId}"`);
    // The sha256 is not recomputed here: the committer just computed it from these bytes, hashing a
    // large snapshot twice halves commit throughput, and restore verifies every commit anyway — a
    // record that does not describe its bytes is never restored.
    if (record.bytes !== bytes.length) throw new TypeError("commit record's bytes do not describe the snapshot bytes");
  }

  /** Commit file names, newest first. */
  private async commitNames(): Promise<string[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch (error) {
      if (isNotFound(error)) return [];
      throw error;
    }
    return names.filter((name) => COMMIT_NAME.test(name)).sort().reverse();
  }

  private async readHeader(name: string): Promise<CommitRecord | null> {
    let handle: fs.FileHandle | undefined;
    try {
      handle = await fs.open(path.join(this.dir, name), "r");
      const buffer = Buffer.alloc(HEADER_PEEK_BYTES);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      const newline = buffer.subarray(0, bytesRead).indexOf(0x0a);
      return newline === -1 ? null : parseRecord(buffer.subarray(0, newline));
    } catch (error) {
      if (isNotFound(error)) return null; // pruned meanwhile
      throw error;
    } finally {
      await handle?.close();
    }
  }

  private async readFence(): Promise<number> {
    const raw = await readFileIfExists(path.join(this.dir, FENCE_FILE));
    if (!raw) return 0;
    try {
      const { generation } = JSON.parse(raw.toString("utf8")) as { generation?: unknown };
      return Number.isSafeInteger(generation) ? (generation as number) : 0;
    } catch {
      return 0;
    }
  }

  private async writeFence(generation: number): Promise<void> {
    await writeFileAtomic(path.join(this.dir, FENCE_FILE), JSON.stringify({ generation }));
  }

  /** Keep the newest `keep` commits; drop older ones and temp files left by crashed writers. */
  private pruning: Promise<void> = Promise.resolve();

  private async prune(): Promise<void> {
    const doomed = (await this.commitNames()).slice(this.keep);
    for (const name of doomed) await fs.rm(path.join(this.dir, name), { force: true });
    const now = Date.now();
    for (const name of await fs.readdir(this.dir)) {
      if (!name.includes(".tmp-")) continue;
      const stat = await fs.stat(path.join(this.dir, name)).catch(() => null);
      if (stat && now - stat.mtimeMs > STALE_TEMP_MS) await fs.rm(path.join(this.dir, name), { force: true });
    }
    // Unlinking old commits need not be durable: one that comes back after a crash is just older.
  }
}

function commitFileName(record: CommitRecord): string {
  return `g${String(record.generation).padStart(10, "0")}-s${String(record.seq).padStart(16, "0")}.commit`;
}

function parseRecord(bytes: Buffer): CommitRecord | null {
  try {
    const parsed: unknown = JSON.parse(bytes.toString("utf8"));
    return isCommitRecord(parsed) ? parsed : null;
  } catch {
    return null;
  }
}
