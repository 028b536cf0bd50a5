import { FENCE_RECORD } from "../contract";
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { StaleCommitError, StateConfigError } from "../errors";
import { ensureDirDurable, fsyncDir, isNotFound, readFileIfExists, tempPathFor, writeFileAtomic } from "../fsUtil";
import { commitsToPrune } from "./prunePolicy";
import { isCommitRecord, type CommitListing, type CommitRecord, type FetchResult, type PersistentStore } from "./types";

/**
 * Commits as files under <root>/<peId>/:
 *   g<generation:10>-s<seq:16>.commit = one line of JSON CommitRecord, "\n", then the snapshot bytes
 *   fence.json                        = {"generation": newest generation accepted}
 * Zero-padded names sort by (generation, seq), i.e. in acceptance order, because fencing never lets
 * the generation go down. Each commit is written to a temp file, fsync'd, renamed and the directory
 * fsync'd, so a commit is either fully there or absent.
 */
const COMMIT_NAME = /^g(\d{10})-s(\d{16})\.commit$/;
const FENCE_FILE = FENCE_RECORD.file;
const HEADER_PEEK_BYTES = 64 * 1024;
const COPY_BUFFER_BYTES = 4 * 1024 * 1024;
/** Temp files older than this belong to a crashed writer and are removed when pruning. */
const STALE_TEMP_MS = 10 * 60_000;

export interface DirectoryStoreOptions {
  /** How many newest commits to keep (default 5). */
  keep?: number;
}

export class DirectoryStore implements PersistentStore {
  readonly kind = "directory";
  readonly dir: string;
  readonly keep: number;
  /** Commits this instance read back whole, with bytes matching their record. */
  private readonly verified = new Set<string>();
  private pruning: Promise<void> = Promise.resolve();

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

  async commit(record: CommitRecord, file: string): Promise<void> {
    if (!isCommitRecord(record)) throw new TypeError("invalid commit record");
    if (record.peId !== this.peId) throw new TypeError(`commit for PE "${record.peId}" sent to the store of PE "${this.peId}"`);
    await ensureDirDurable(this.dir);
    const newest = await this.newestGeneration();
    if (record.generation < newest) throw new StaleCommitError(record.generation, newest);
    // Raise the fence before the commit appears, so a crash in between can only over-fence.
    if (record.generation > (await this.readFence())) await this.writeFence(record.generation);
    const name = commitFileName(record);
    await this.writeCommitFile(path.join(this.dir, name), record, file);
    // Pruning runs after the commit returns (it reads the new commit back to verify it, and deleting a
    // large file costs a good part of writing one); prunes run one after another.
    this.pruning = this.pruning.then(() => this.prune()).catch(() => undefined);
  }

  /** Waits for pruning in flight. */
  async idle(): Promise<void> {
    await this.pruning;
  }

  async close(): Promise<void> {
    await this.idle();
  }

  async list(): Promise<CommitListing[]> {
    const listing: CommitListing[] = [];
    for (const name of await this.commitNames()) listing.push({ id: name, record: await this.readHeader(name) });
    return listing;
  }

  async fetch(id: string, target: string): Promise<FetchResult> {
    const result = await this.readCommit(id, target);
    if ("record" in result) this.verified.add(id);
    return result;
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

  /** Header line, then the snapshot file's bytes, into a temp file; fsync; rename; fsync the directory. */
  private async writeCommitFile(target: string, record: CommitRecord, file: string): Promise<void> {
    const temp = tempPathFor(target);
    const source = await fs.open(file, "r");
    try {
      const out = await fs.open(temp, "wx");
      try {
        await out.writeFile(`${JSON.stringify(record)}\n`);
        const buffer = Buffer.allocUnsafe(Math.min(COPY_BUFFER_BYTES, Math.max(record.bytes, 1)));
        let copied = 0;
        for (let read; (read = (await source.read(buffer, 0, buffer.length, null)).bytesRead) > 0; copied += read) {
          await out.write(buffer, 0, read);
        }
        // The sha256 is not recomputed here: the committer just computed it from this file, and restore
        // verifies every commit anyway. The length is checked: a file changing under us is a bug.
        if (copied !== record.bytes) throw new TypeError(`commit record says ${record.bytes} bytes but ${file} has ${copied}`);
        await out.sync();
      } finally {
        await out.close();
      }
      await fs.rename(temp, target);
    } catch (error) {
      await fs.rm(temp, { force: true }).catch(() => undefined);
      throw error;
    } finally {
      await source.close();
    }
    await fsyncDir(this.dir);
  }

  /**
   * Read one commit and check it: header parses and matches the file name and PE, the bytes match its
   * length and sha256. The bytes go to `target` (null: only checked); a damaged commit leaves no target.
   */
  private async readCommit(id: string, target: string | null): Promise<FetchResult> {
    const match = COMMIT_NAME.exec(id);
    if (!match) return { damaged: "not a commit file name" };
    let source: fs.FileHandle;
    try {
      source = await fs.open(path.join(this.dir, id), "r");
    } catch (error) {
      if (isNotFound(error)) return { damaged: "gone (pruned meanwhile?)" };
      throw error;
    }
    let out: fs.FileHandle | undefined;
    let ok = false;
    try {
      const peek = Buffer.alloc(HEADER_PEEK_BYTES);
      const { bytesRead } = await source.read(peek, 0, peek.length, 0);
      const newline = peek.subarray(0, bytesRead).indexOf(0x0a);
      if (newline === -1) return { damaged: "no readable commit record" };
      const record = parseRecord(peek.subarray(0, newline));
      if (!record) return { damaged: "commit record is not valid JSON of a commit" };
      if (record.peId !== this.peId || record.generation !== Number(match[1]) || record.seq !== Number(match[2])) {
        return { damaged: "commit record does not match its file name or PE" };
      }
      if (target !== null) out = await fs.open(target, "wx");
      const hash = createHash("sha256");
      const buffer = Buffer.allocUnsafe(COPY_BUFFER_BYTES);
      let length = 0;
      for (let position = newline + 1, read; (read = (await source.read(buffer, 0, buffer.length, position)).bytesRead) > 0; position += read) {
        const piece = buffer.subarray(0, read);
        hash.update(piece);
        length += read;
        if (out) await out.write(piece);
      }
      if (length !== record.bytes) return { damaged: `${length} bytes where the record says ${record.bytes}` };
      if (hash.digest("hex") !== record.sha256) return { damaged: "sha256 does not match the record" };
      await out?.sync();
      ok = true;
      return { record };
    } finally {
      await source.close();
      await out?.close();
      if (!ok && target !== null && out) await fs.rm(target, { force: true });
    }
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
    return names
      .filter((name) => COMMIT_NAME.test(name))
      .sort()
      .reverse();
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
      return FENCE_RECORD.decode(raw.toString("utf8")).generation;
    } catch {
      return 0; // as before the contract: a damaged fence fences nothing (the volume's meta still does)
    }
  }

  private async writeFence(generation: number): Promise<void> {
    await writeFileAtomic(path.join(this.dir, FENCE_FILE), FENCE_RECORD.encode({ generation }));
  }

  /** Keep the newest `keep` commits and the newest verified one (prunePolicy); drop crashed writers' temp files. */
  private async prune(): Promise<void> {
    // A commit that cannot be read (I/O error) aborts the prune (nothing deleted): the next commit prunes again.
    const doomed = await commitsToPrune(await this.commitNames(), this.keep, async (id) => {
      if (this.verified.has(id)) return true;
      const checked = await this.readCommit(id, null);
      if ("record" in checked) this.verified.add(id);
      return "record" in checked;
    });
    for (const name of doomed) {
      await fs.rm(path.join(this.dir, name), { force: true });
      this.verified.delete(name);
    }
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
