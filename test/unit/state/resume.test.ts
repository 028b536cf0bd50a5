import { promises as fs, readFileSync, writeFileSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { DirectoryStore, openState, RestoreFailedError, statePaths, type StateStatus } from "../../../packages/state/src/index";
import { sha256Hex } from "../../../packages/state/src/fsUtil";
import { restoreFromStore } from "../../../packages/state/src/restore";
import { latestValid, readJson, tempDir } from "./helpers";

function openWith(stateDir: string, storeRoot: string | null, generation: number) {
  return openState({
    stateDir,
    peId: "pe-1",
    generation,
    store: storeRoot === null ? null : { kind: "directory", path: storeRoot },
    commitIntervalMs: 60_000,
    env: {},
  });
}

describe("start-up", () => {
  it("starts empty on a new volume with no commits", async () => {
    const stateDir = tempDir();
    const state = await openWith(stateDir, tempDir(), 1);
    expect([state.resumedFrom, state.resumedSeq, state.seq]).toEqual(["empty", 0, 0]);
    const status = await readJson<StateStatus>(statePaths(stateDir).statusFile);
    expect(status).toMatchObject({
      peId: "pe-1",
      generation: 1,
      resumedFrom: "empty",
      resumedSeq: 0,
      seq: 0,
      lastCommit: null,
      lastCommitError: null,
      lastCommitAttemptAt: null,
      commitIntervalMs: 60_000,
    });
    expect(Date.parse(status.updatedAt)).not.toBeNaN();
    await state.close();
  });

  it("resumes from the local volume, preferring it to the store", async () => {
    const stateDir = tempDir();
    const storeRoot = tempDir();
    const first = await openWith(stateDir, storeRoot, 1);
    await first.put("a", 1);
    await first.close(); // final commit at seq 1
    const second = await openWith(stateDir, storeRoot, 2);
    await second.put("b", 2); // volume is ahead of the store now
    await second.close();
    const third = await openWith(stateDir, storeRoot, 3);
    expect([third.resumedFrom, third.resumedSeq]).toEqual(["local", 2]);
    expect(third.entries()).toEqual([
      ["a", 1],
      ["b", 2],
    ]);
    expect(third.status().lastCommit).toMatchObject({ seq: 2, generation: 2 }); // newest commit, from the previous generation
    await third.close();
  });

  it("restores the newest commit when the volume is lost, and keeps seq growing", async () => {
    const storeRoot = tempDir();
    const lostVolume = tempDir();
    const first = await openWith(lostVolume, storeRoot, 1);
    for (let n = 1; n <= 5; n++) await first.put(`k${n}`, n);
    await first.close();

    const freshVolume = tempDir();
    const second = await openWith(freshVolume, storeRoot, 2);
    expect([second.resumedFrom, second.resumedSeq, second.seq]).toEqual(["persistent", 5, 5]);
    expect(second.get("k5")).toBe(5);
    expect(await readJson<StateStatus>(statePaths(freshVolume).statusFile)).toMatchObject({ resumedFrom: "persistent", resumedSeq: 5, seq: 5, generation: 2 });
    expect(await second.put("k6", 6)).toBe(6);
    const commit = await second.commitNow();
    expect(commit).toMatchObject({ seq: 6, generation: 2 });
    await second.close();

    // The restored snapshot was written into the new volume: it resumes locally from now on.
    const third = await openWith(freshVolume, null, 3);
    expect([third.resumedFrom, third.seq]).toEqual(["local", 6]);
    await third.close();
  });

  it("restores the previous commit when the newest one is damaged", async () => {
    const storeRoot = tempDir();
    const first = await openWith(tempDir(), storeRoot, 1);
    await first.put("a", 1);
    await first.commitNow(); // seq 1
    await first.put("a", 2);
    await first.close(); // seq 2
    const store = new DirectoryStore(storeRoot, "pe-1");
    const [newest] = await store.list();
    await fs.appendFile(path.join(store.dir, newest!.id), "junk"); // length/sha256 no longer match

    const second = await openWith(tempDir(), storeRoot, 2);
    expect([second.resumedFrom, second.resumedSeq, second.get("a")]).toEqual(["persistent", 1, 1]);
    expect(second.status().lastCommit).toMatchObject({ seq: 1, generation: 1 }); // the commit it restored
    await second.close();
  });

  it("refuses to start empty when commits exist but none verifies; the commits stay as they were", async () => {
    const storeRoot = tempDir();
    const first = await openWith(tempDir(), storeRoot, 1);
    await first.put("a", 1);
    await first.commitNow();
    await first.put("a", 2);
    await first.close();
    const store = new DirectoryStore(storeRoot, "pe-1");
    const names = (await store.list()).map((c) => c.id);
    expect(names).toHaveLength(2);
    for (const name of names) await fs.appendFile(path.join(store.dir, name), "junk"); // every commit damaged
    const before = await Promise.all(names.map((name) => fs.readFile(path.join(store.dir, name))));

    const stateDir = tempDir();
    const error = await openWith(stateDir, storeRoot, 2).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RestoreFailedError);
    const { reasons } = error as RestoreFailedError;
    expect(reasons).toHaveLength(2);
    reasons.forEach((reason, i) => expect(reason).toMatch(new RegExp(`^${names[i]!.replace(".", "\\.")}: \\d+ bytes where the record says \\d+$`)));
    expect((error as Error).message).toMatch(/refusing to start empty.*allowEmptyStart/s);
    const status = await readJson<StateStatus>(statePaths(stateDir).statusFile);
    expect(status).toMatchObject({ generation: 2, resumedFrom: null, restoreFailed: { reasons: (error as RestoreFailedError).reasons } });
    await expect(fs.access(statePaths(stateDir).dbFile)).rejects.toThrow(); // nothing was started
    const after = await Promise.all(names.map((name) => fs.readFile(path.join(store.dir, name))));
    expect(after).toEqual(before);

    // Explicitly allowed: starts empty, says why in status.json, and its new commits do not prune the old ones.
    const allowed = await openState({
      stateDir,
      peId: "pe-1",
      generation: 3,
      store: { kind: "directory", path: storeRoot, keep: 1 },
      allowEmptyStart: true,
      env: {},
    });
    expect([allowed.resumedFrom, allowed.seq]).toEqual(["empty", 0]);
    expect(allowed.status().restoreFailed?.reasons).toHaveLength(2);
    await allowed.put("fresh", 1);
    await allowed.close();
    // keep=1, and the only commit that verifies is the new one: the damaged ones are beyond keep and go,
    // the new one (newest verified) stays.
    expect((await store.list()).map((c) => c.record?.generation)).toEqual([3]);
  });

  it("skips commits whose checksum matches but whose database is not sound, naming the reason", async () => {
    const storeRoot = tempDir();
    const first = await openWith(tempDir(), storeRoot, 1);
    await first.put("good", 1);
    await first.commitNow(); // seq 1
    await first.put("bad", 2);
    await first.commitNow(); // seq 2
    await first.put("worse", 3);
    await first.close(); // seq 3
    const store = new DirectoryStore(storeRoot, "pe-1");
    const [third, second] = (await store.list()).map((c) => c.id);
    // seq 3: a database page damaged, checksum recomputed: only SQLite's integrity check can tell.
    await rewriteCommit(path.join(store.dir, third!), (db) => db.fill(0x5a, 4096 + 8, 4096 + 200));
    // seq 2: a sound database, but it says seq 1 where its record says 2.
    await rewriteCommit(path.join(store.dir, second!), (db) => {
      const file = path.join(tempDir(), "edit.db");
      writeFileSync(file, db);
      const edit = new DatabaseSync(file);
      edit.exec("UPDATE reseat_meta SET value = 1 WHERE name = 'seq'");
      edit.close();
      return readFileSync(file);
    });

    const volume = tempDir();
    await fs.mkdir(statePaths(volume).dataDir);
    const outcome = await restoreFromStore(store, statePaths(volume), "pe-1");
    expect(outcome.restored?.seq).toBe(1);
    expect(outcome.failures).toEqual([expect.stringMatching(new RegExp(`^${third}: integrity_check: `)), `${second}: database is at seq 1, the record says 2`]);
    const state = await openWith(volume, storeRoot, 2);
    expect([state.resumedFrom, state.resumedSeq, state.get("good"), state.has("bad")]).toEqual(["local", 1, 1, false]);
    await state.close();
  });

  it("refuses to start empty when the volume is empty and the store is unreachable", async () => {
    const notADirectory = path.join(tempDir(), "file");
    await fs.writeFile(notADirectory, "");
    await expect(openWith(tempDir(), notADirectory, 1)).rejects.toThrow();
  });

  it("starts from the local volume even when the store is unreachable, and says so in status", async () => {
    const stateDir = tempDir();
    const local = await openWith(stateDir, null, 1);
    await local.put("a", 1);
    await local.close();
    const notADirectory = path.join(tempDir(), "file");
    await fs.writeFile(notADirectory, "");
    const state = await openWith(stateDir, notADirectory, 2);
    expect(state.resumedFrom).toBe("local");
    expect(state.status().lastCommitError).toMatch(/unavailable/);
    expect(await state.put("b", 2)).toBe(2);
    await expect(state.close()).rejects.toThrow(); // the final commit cannot reach the store
  });

  it("reads the store from RESEAT_STORE", async () => {
    const storeRoot = tempDir();
    const env = {
      RESEAT_STATE_DIR: tempDir(),
      RESEAT_PE_ID: "pe-1",
      RESEAT_GENERATION: "1",
      RESEAT_STORE: JSON.stringify({ kind: "directory", path: storeRoot }),
    };
    const state = await openState({ env });
    await state.put("a", 1);
    await state.close();
    expect((await latestValid(new DirectoryStore(storeRoot, "pe-1")))?.record.seq).toBe(1);
  });
});

/** Change a directory-store commit's database bytes and give it a record that matches them again. */
async function rewriteCommit(file: string, change: (db: Buffer) => Buffer | void): Promise<void> {
  const raw = await fs.readFile(file);
  const newline = raw.indexOf(0x0a);
  const record = JSON.parse(raw.subarray(0, newline).toString("utf8")) as Record<string, unknown>;
  let db: Buffer = Buffer.from(raw.subarray(newline + 1));
  db = change(db) ?? db;
  await fs.writeFile(file, Buffer.concat([Buffer.from(`${JSON.stringify({ ...record, bytes: db.length, sha256: sha256Hex(db) })}\n`), db]));
}
