import { promises as fs } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  type CommitRecord,
  DirectoryStore,
  openStore,
  openStoreFromEnv,
  parseStoreConfig,
  StaleCommitError,
  StaleGenerationError,
  StateConfigError,
  UnsupportedStoreKindError,
} from "../../../src/state/index";
import { sha256Hex } from "../../../src/state/fsUtil";
import { flipByte, tempDir } from "./helpers";

function commitOf(generation: number, seq: number, text = `state@${seq}`): { record: CommitRecord; bytes: Buffer } {
  const bytes = Buffer.from(text);
  return {
    record: { peId: "pe-1", generation, seq, at: new Date().toISOString(), bytes: bytes.length, sha256: sha256Hex(bytes) },
    bytes,
  };
}

async function storeWith(commits: Array<[generation: number, seq: number]>, keep = 5): Promise<DirectoryStore> {
  const store = new DirectoryStore(tempDir(), "pe-1", { keep });
  for (const [generation, seq] of commits) {
    const { record, bytes } = commitOf(generation, seq);
    await store.commit(record, bytes);
  }
  return store;
}

async function commitFiles(store: DirectoryStore): Promise<string[]> {
  return (await fs.readdir(store.dir)).filter((name) => name.endsWith(".commit")).sort();
}

describe("directory store", () => {
  it("returns the newest commit, lists newest first and keeps the last K", async () => {
    const store = await storeWith([[1, 1], [1, 2], [1, 3], [2, 4], [2, 5], [3, 6], [3, 7]], 5);
    const latest = await store.latestValid();
    expect(latest?.record.seq).toBe(7);
    expect(latest?.bytes.toString()).toBe("state@7");
    expect((await store.list()).map((c) => c.record?.seq)).toEqual([7, 6, 5, 4, 3]);
    expect(await commitFiles(store)).toHaveLength(5);
  });

  it("falls back to the previous commit when the newest one's bytes are damaged", async () => {
    const store = await storeWith([[1, 1], [1, 2]]);
    const newest = path.join(store.dir, (await commitFiles(store)).at(-1)!);
    const raw = await fs.readFile(newest);
    flipByte(raw, raw.length - 1, 0x01);
    await fs.writeFile(newest, raw);
    expect((await store.latestValid())?.record.seq).toBe(1);
  });

  it("falls back when the newest commit is torn (truncated) or its header is garbage", async () => {
    const store = await storeWith([[1, 1], [1, 2], [1, 3]]);
    const [, second, third] = await commitFiles(store);
    await fs.truncate(path.join(store.dir, third!), 20);
    expect((await store.latestValid())?.record.seq).toBe(2);
    await fs.writeFile(path.join(store.dir, second!), "not json\nstate@2");
    expect((await store.latestValid())?.record.seq).toBe(1);
    expect((await store.list()).map((c) => c.record?.seq ?? null)).toEqual([null, null, 1]);
  });

  it("returns null when there is no valid commit", async () => {
    expect(await new DirectoryStore(tempDir(), "pe-1").latestValid()).toBeNull();
    const store = await storeWith([[1, 1]]);
    await fs.writeFile(path.join(store.dir, (await commitFiles(store))[0]!), "");
    expect(await store.latestValid()).toBeNull();
  });

  it("ignores temp files of a commit that crashed before its rename", async () => {
    const store = await storeWith([[1, 1]]);
    await fs.writeFile(path.join(store.dir, "g0000000001-s0000000000000002.commit.tmp-1-abcd"), "partial");
    expect((await store.latestValid())?.record.seq).toBe(1);
    expect(await store.list()).toHaveLength(1);
  });

  it("rejects a commit from a generation older than the newest accepted one", async () => {
    const store = await storeWith([[1, 1], [3, 2]]);
    const late = commitOf(2, 3);
    const error = await store.commit(late.record, late.bytes).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StaleCommitError);
    expect(error).toBeInstanceOf(StaleGenerationError);
    expect(error).toMatchObject({ ownGeneration: 2, newerGeneration: 3, source: "store" });
    expect((await store.latestValid())?.record.seq).toBe(2);
    // The same generation may keep committing.
    const next = commitOf(3, 3);
    await store.commit(next.record, next.bytes);
    expect(await store.newestGeneration()).toBe(3);
  });

  it("fences by claimed generation even before the new generation has committed, and after pruning", async () => {
    const store = await storeWith([[1, 1]], 1);
    await store.claimGeneration(2);
    const late = commitOf(1, 2);
    await expect(store.commit(late.record, late.bytes)).rejects.toBeInstanceOf(StaleCommitError);
    await expect(store.claimGeneration(1)).rejects.toBeInstanceOf(StaleCommitError);
    await store.commit(commitOf(2, 2).record, commitOf(2, 2).bytes);
    await store.commit(commitOf(4, 3).record, commitOf(4, 3).bytes); // prunes everything else (keep=1)
    await expect(store.commit(commitOf(3, 4).record, commitOf(3, 4).bytes)).rejects.toBeInstanceOf(StaleCommitError);
  });

  it("refuses a record of another length or PE; a wrong checksum is never restored", async () => {
    const store = new DirectoryStore(tempDir(), "pe-1");
    const { record, bytes } = commitOf(1, 1);
    await expect(store.commit({ ...record, bytes: record.bytes + 1 }, bytes)).rejects.toThrow(/bytes/);
    await expect(store.commit({ ...record, peId: "other" }, bytes)).rejects.toThrow(/other/);
    await store.commit({ ...record, sha256: "0".repeat(64) }, bytes);
    expect(await store.latestValid()).toBeNull();
  });

  it("keeps PEs apart, whatever characters their ids contain", async () => {
    const root = tempDir();
    const a = new DirectoryStore(root, "team/a b");
    const b = new DirectoryStore(root, "team/b");
    await a.commit({ ...commitOf(1, 1).record, peId: "team/a b" }, commitOf(1, 1).bytes);
    expect(await b.latestValid()).toBeNull();
    expect((await a.latestValid())?.record.peId).toBe("team/a b");
  });
});

describe("opening a store from RESEAT_STORE", () => {
  it("opens the directory kind", async () => {
    const root = tempDir();
    const store = openStoreFromEnv("pe-1", { RESEAT_STORE: JSON.stringify({ kind: "directory", path: root, keep: 2 }) });
    expect(store).toBeInstanceOf(DirectoryStore);
    expect(store?.kind).toBe("directory");
  });

  it("means no store when unset", () => {
    expect(openStoreFromEnv("pe-1", {})).toBeNull();
    expect(parseStoreConfig("")).toBeNull();
  });

  it("names unsupported kinds and malformed JSON clearly", () => {
    expect(() => openStore({ kind: "s3", bucket: "x" }, "pe-1")).toThrow(UnsupportedStoreKindError);
    expect(() => openStore({ kind: "s3" }, "pe-1")).toThrow(/unsupported store kind "s3"/);
    expect(() => parseStoreConfig("{nope")).toThrow(StateConfigError);
    expect(() => parseStoreConfig('{"path":"/x"}')).toThrow(/kind/);
    expect(() => openStore({ kind: "directory" }, "pe-1")).toThrow(/path/);
  });
});
