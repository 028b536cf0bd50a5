import { promises as fs } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  DirectoryStore,
  openStore,
  openStoreFromEnv,
  parseStoreConfig,
  StaleCommitError,
  StaleGenerationError,
  StateConfigError,
  UnsupportedStoreKindError,
} from "../../../packages/state/src/index";
import { commitFileOf, flipByte, latestValid, tempDir } from "./helpers";

async function commitOf(generation: number, seq: number, text = `state@${seq}`) {
  return commitFileOf("pe-1", generation, seq, Buffer.from(text));
}

async function storeWith(commits: Array<[generation: number, seq: number]>, keep = 5): Promise<DirectoryStore> {
  const store = new DirectoryStore(tempDir(), "pe-1", { keep });
  for (const [generation, seq] of commits) {
    const { record, file } = await commitOf(generation, seq);
    await store.commit(record, file);
  }
  await store.close(); // pruning done
  return store;
}

async function commitFiles(store: DirectoryStore): Promise<string[]> {
  return (await fs.readdir(store.dir)).filter((name) => name.endsWith(".commit")).sort();
}

async function latestSeq(store: DirectoryStore): Promise<number | undefined> {
  return (await latestValid(store))?.record.seq;
}

describe("directory store", () => {
  it("fetches the newest commit, lists newest first and keeps the last K", async () => {
    const store = await storeWith(
      [
        [1, 1],
        [1, 2],
        [1, 3],
        [2, 4],
        [2, 5],
        [3, 6],
        [3, 7],
      ],
      5,
    );
    const latest = await latestValid(store);
    expect(latest?.record.seq).toBe(7);
    expect(await fs.readFile(latest!.file, "utf8")).toBe("state@7");
    expect((await store.list()).map((c) => c.record?.seq)).toEqual([7, 6, 5, 4, 3]);
    expect(await commitFiles(store)).toHaveLength(5);
  });

  it("reports a damaged commit with the reason and leaves no target file", async () => {
    const store = await storeWith([
      [1, 1],
      [1, 2],
    ]);
    const newest = path.join(store.dir, (await commitFiles(store)).at(-1)!);
    const raw = await fs.readFile(newest);
    flipByte(raw, raw.length - 1, 0x01);
    await fs.writeFile(newest, raw);
    const target = path.join(tempDir(), "out");
    expect(await store.fetch(path.basename(newest), target)).toEqual({ damaged: "sha256 does not match the record" });
    await expect(fs.access(target)).rejects.toThrow();
    expect(await latestSeq(store)).toBe(1);
  });

  it("tells torn (truncated) commits and garbage headers apart from good ones", async () => {
    const store = await storeWith([
      [1, 1],
      [1, 2],
      [1, 3],
    ]);
    const [first, second, third] = await commitFiles(store);
    const header = (await fs.readFile(path.join(store.dir, third!), "utf8")).split("\n")[0]!;
    await fs.truncate(path.join(store.dir, third!), header.length + 3);
    expect(await store.fetch(third!, path.join(tempDir(), "x"))).toEqual({ damaged: "2 bytes where the record says 7" });
    await fs.writeFile(path.join(store.dir, second!), "not json\nstate@2");
    expect(await store.fetch(second!, path.join(tempDir(), "x"))).toEqual({ damaged: "commit record is not valid JSON of a commit" });
    expect(await latestSeq(store)).toBe(1);
    expect((await store.list()).map((c) => c.record?.seq ?? null)).toEqual([3, null, 1]);
    expect(first).toBe("g0000000001-s0000000000000001.commit");
  });

  it("ignores temp files of a commit that crashed before its rename", async () => {
    const store = await storeWith([[1, 1]]);
    await fs.writeFile(path.join(store.dir, "g0000000001-s0000000000000002.commit.tmp-1-abcd"), "partial");
    expect(await latestSeq(store)).toBe(1);
    expect(await store.list()).toHaveLength(1);
  });

  it("rejects a commit from a generation older than the newest accepted one", async () => {
    const store = await storeWith([
      [1, 1],
      [3, 2],
    ]);
    const late = await commitOf(2, 3);
    const error = await store.commit(late.record, late.file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StaleCommitError);
    expect(error).toBeInstanceOf(StaleGenerationError);
    expect(error).toMatchObject({ ownGeneration: 2, newerGeneration: 3, source: "store" });
    expect(await latestSeq(store)).toBe(2);
    // The same generation may keep committing.
    const next = await commitOf(3, 3);
    await store.commit(next.record, next.file);
    expect(await store.newestGeneration()).toBe(3);
  });

  it("fences by claimed generation even before the new generation has committed, and after pruning", async () => {
    const store = await storeWith([[1, 1]], 1);
    await store.claimGeneration(2);
    const late = await commitOf(1, 2);
    await expect(store.commit(late.record, late.file)).rejects.toBeInstanceOf(StaleCommitError);
    await expect(store.claimGeneration(1)).rejects.toBeInstanceOf(StaleCommitError);
    for (const [generation, seq] of [
      [2, 2],
      [4, 3],
    ] as const) {
      const { record, file } = await commitOf(generation, seq);
      await store.commit(record, file);
    }
    await store.close(); // pruned everything else (keep=1)
    const stale = await commitOf(3, 4);
    await expect(store.commit(stale.record, stale.file)).rejects.toBeInstanceOf(StaleCommitError);
  });

  it("refuses a record of another length or PE; a wrong checksum is never fetched", async () => {
    const store = new DirectoryStore(tempDir(), "pe-1");
    const { record, file } = await commitOf(1, 1);
    await expect(store.commit({ ...record, bytes: record.bytes + 1 }, file)).rejects.toThrow(/bytes/);
    await expect(store.commit({ ...record, peId: "other" }, file)).rejects.toThrow(/other/);
    expect((await fs.readdir(store.dir)).filter((name) => name.includes(".tmp-"))).toEqual([]); // no temp file left behind
    await store.commit({ ...record, sha256: "0".repeat(64) }, file);
    expect(await latestValid(store)).toBeNull();
  });

  it("keeps PEs apart, whatever characters their ids contain", async () => {
    const root = tempDir();
    const a = new DirectoryStore(root, "team/a b");
    const b = new DirectoryStore(root, "team/b");
    const { record, file } = await commitFileOf("team/a b", 1, 1, Buffer.from("a's"));
    await a.commit(record, file);
    expect(await latestValid(b)).toBeNull();
    expect((await latestValid(a))?.record.peId).toBe("team/a b");
  });
});

describe("pruning", () => {
  it("never deletes anything while no commit verifies, and never the newest verified commit", async () => {
    const root = tempDir();
    const writer = new DirectoryStore(root, "pe-1", { keep: 100 });
    for (let seq = 1; seq <= 4; seq++) {
      const { record, file } = await commitOf(1, seq);
      await writer.commit(record, file);
    }
    await writer.close();
    // Seqs 2..4 damaged (bit rot): only seq 1 verifies.
    for (const name of (await commitFiles(writer)).slice(1)) {
      const raw = await fs.readFile(path.join(writer.dir, name));
      flipByte(raw, raw.length - 1, 0x01);
      await fs.writeFile(path.join(writer.dir, name), raw);
    }
    // A store that keeps 2 and knows nothing about these commits must read them back before pruning.
    const pruner = new DirectoryStore(root, "pe-1", { keep: 2 });
    const damaged = await commitFileOf("pe-1", 1, 5, Buffer.from("state@5"));
    await pruner.commit({ ...damaged.record, sha256: "f".repeat(64) }, damaged.file); // a bad commit: verifies as nothing
    await pruner.close();
    // Newest verified is seq 1 (beyond keep): kept; the damaged ones beyond keep go.
    expect((await pruner.list()).map((c) => c.record?.seq)).toEqual([5, 4, 1]);

    // None verifies at all: nothing is deleted, however many commits there are.
    const none = new DirectoryStore(tempDir(), "pe-1", { keep: 1 });
    for (let seq = 1; seq <= 3; seq++) {
      const { record, file } = await commitOf(1, seq);
      await none.commit({ ...record, sha256: "e".repeat(64) }, file);
    }
    await none.close();
    const fresh = new DirectoryStore(path.dirname(none.dir), "pe-1", { keep: 1 });
    const last = await commitOf(1, 4);
    await fresh.commit({ ...last.record, sha256: "e".repeat(64) }, last.file);
    await fresh.close();
    expect(await fresh.list()).toHaveLength(4);
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
