import { promises as fs } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { DirectoryStore, openState, statePaths, type StateHandle, type StateStatus } from "../../../packages/state/src/index";
import { latestValid, readDatabase, readJson, sleep, tempDir, waitFor, writeControl } from "./helpers";

/** Keep writing in the background so every tick has something new to commit. */
function keepWriting(state: StateHandle): () => Promise<void> {
  let running = true;
  const loop = (async () => {
    for (let n = 0; running; n++) {
      await state.put("counter", n);
      await sleep(3);
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

describe("committer", () => {
  it("commits every interval and records each commit in status.json", async () => {
    const stateDir = tempDir();
    const store = new DirectoryStore(tempDir(), "pe-1", { keep: 100 });
    const state = await openState({ stateDir, peId: "pe-1", generation: 4, store, commitIntervalMs: 40, env: {} });
    const stop = keepWriting(state);
    await waitFor(async () => (await store.list()).length >= 3, 5_000, "three commits");
    await stop();
    await state.close();

    const latest = await latestValid(store);
    expect(latest?.record).toMatchObject({ peId: "pe-1", generation: 4, seq: state.seq });
    const status = await readJson<StateStatus>(statePaths(stateDir).statusFile);
    expect(status.lastCommit).toEqual({
      seq: latest!.record.seq,
      at: latest!.record.at,
      bytes: latest!.record.bytes,
      sha256: latest!.record.sha256,
      generation: 4,
    });
    expect(status.lastCommitAttemptAt).toBe(latest!.record.at);
    expect(status.seq).toBe(state.seq);
    // Committed seqs only ever grow.
    const seqs = (await store.list()).map((c) => c.record!.seq).reverse();
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
  });

  it("commits a consistent snapshot while writes go on: exactly the writes up to its seq", async () => {
    const store = new DirectoryStore(tempDir(), "pe-1", { keep: 100 });
    const state = await openState({ stateDir: tempDir(), peId: "pe-1", generation: 1, store, commitIntervalMs: 60_000, env: {} });
    // Enough state that the online backup takes many steps, with writes landing between them.
    const pad = "p".repeat(2000);
    await Promise.all(Array.from({ length: 3000 }, (_, n) => state.put(`base-${n}`, pad)));
    const written: number[] = []; // seq of key w-<i> is written[i]
    let writing = true;
    const writers = Array.from({ length: 4 }, async () => {
      while (writing) {
        const i = written.length;
        written.push(-1);
        written[i] = await state.put(`w-${i}`, i);
      }
    });
    const commits = [];
    for (let i = 0; i < 3; i++) commits.push(await state.commitNow());
    writing = false;
    await Promise.all(writers);
    await state.close();

    const fetched = path.join(tempDir(), "commit.db");
    for (const record of commits) {
      const id = `g0000000001-s${String(record!.seq).padStart(16, "0")}.commit`;
      await fs.rm(fetched, { force: true });
      expect(await store.fetch(id, fetched)).toEqual({ record });
      const { seq, entries } = readDatabase(fetched);
      expect(seq).toBe(record!.seq);
      const inCommit = new Set(entries.map(([key]) => key).filter((key) => key.startsWith("w-")));
      const expectedKeys = written.flatMap((writeSeq, i) => (writeSeq !== -1 && writeSeq <= seq ? [`w-${i}`] : []));
      expect(inCommit).toEqual(new Set(expectedKeys));
    }
    expect(commits.some((c) => written.some((s) => s > c!.seq))).toBe(true); // writes did go on past a commit
  });

  it("does not ship again when nothing was written since its last commit", async () => {
    const store = new DirectoryStore(tempDir(), "pe-1", { keep: 100 });
    const state = await openState({ stateDir: tempDir(), peId: "pe-1", generation: 1, store, commitIntervalMs: 20, env: {} });
    await state.put("a", 1);
    await state.commitNow();
    await sleep(150);
    expect(await store.list()).toHaveLength(1);
    await state.close();
    expect(await store.list()).toHaveLength(1);
  });

  it("picks up a live change of control.json's interval within one old interval", async () => {
    const stateDir = tempDir();
    const store = new DirectoryStore(tempDir(), "pe-1", { keep: 1000 });
    await writeControl(stateDir, 400); // control.json wins over the option
    const state = await openState({ stateDir, peId: "pe-1", generation: 1, store, commitIntervalMs: 60_000, env: {} });
    expect(state.status().commitIntervalMs).toBe(400);
    const stop = keepWriting(state);
    await waitFor(() => state.status().lastCommit, 2_000, "first commit");

    await writeControl(stateDir, 25);
    // Deadline, not a measurement: the new interval must be in force within one old interval (+ slack).
    await waitFor(() => state.status().commitIntervalMs === 25, 400 + 200, "new interval");
    const before = (await store.list()).length;
    await waitFor(async () => ((await store.list()).length - before >= 3 ? true : null), 5_000, "commits at the new interval");
    expect((await readJson<StateStatus>(statePaths(stateDir).statusFile)).commitIntervalMs).toBe(25);
    await stop();
    await state.close();
  });

  it("retries a failing store with backoff while writes keep being served, then recovers", async () => {
    const stateDir = tempDir();
    const storeRoot = path.join(tempDir(), "store");
    await fs.writeFile(storeRoot, "a file where the store directory should be"); // store unavailable
    // The volume must already hold state: with an empty volume and no store, start-up is refused.
    const seed = await openState({ stateDir, peId: "pe-1", generation: 1, store: null, env: {} });
    await seed.put("a", 1);
    await seed.close();
    const state = await openState({
      stateDir,
      peId: "pe-1",
      generation: 1,
      store: { kind: "directory", path: storeRoot },
      // A long interval: several attempts can then only be retries (10, 20, 40 ms … backoff).
      commitIntervalMs: 60_000,
      retryBaseMs: 10,
      retryMaxMs: 1_000,
      env: {},
    });
    expect(state.resumedFrom).toBe("local");

    // Collect distinct attempt times from status.json while the store is down.
    const attempts = new Set<string>();
    const statusFile = statePaths(stateDir).statusFile;
    const firstFailure = await waitFor(
      async () => {
        const status = await readJson<StateStatus>(statusFile);
        return status.lastCommitError && status.lastCommitAttemptAt ? status : null;
      },
      3_000,
      "a failed commit attempt in status.json",
    );
    expect(firstFailure.lastCommitError).toMatch(/ENOTDIR|EEXIST|not a directory/i);
    expect(firstFailure.lastCommit).toBeNull();
    await waitFor(
      async () => {
        const status = await readJson<StateStatus>(statusFile).catch(() => null);
        if (status?.lastCommitAttemptAt) attempts.add(status.lastCommitAttemptAt);
        return attempts.size >= 3 ? true : null;
      },
      5_000,
      "three retries",
    );
    expect(await state.put("b", 2)).toBe(2); // still serving

    await fs.rm(storeRoot); // store comes back
    const recovered = await waitFor(
      async () => {
        const status = await readJson<StateStatus>(statusFile).catch(() => null);
        return status?.lastCommit && status.lastCommitError === null ? status : null;
      },
      3_000,
      "a successful commit after the store came back",
    );
    expect(recovered.lastCommit?.seq).toBe(2);
    await state.close();
    expect((await latestValid(new DirectoryStore(storeRoot, "pe-1")))?.record.seq).toBe(2);
  });
});
