import { mkdtempSync, promises as fs } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DirectoryStore, openState } from "../../../packages/state/src/index";
import { compileStateLibrary, startWriter, WRITER_SCRIPT, type Ack } from "./childProcess";
import { latestValid, tempDir, waitFor } from "./helpers";

let libraryIndex = "";
let scriptFile = "";
// Lives for the whole file (tempDir() directories are removed after each test).
const buildDir = mkdtempSync(path.join(tmpdir(), "reseat-state-build-"));

afterAll(() => fs.rm(buildDir, { recursive: true, force: true }));

beforeAll(async () => {
  libraryIndex = await compileStateLibrary(buildDir);
  scriptFile = path.join(buildDir, "writer.js");
  await fs.writeFile(scriptFile, WRITER_SCRIPT);
});

function expectAllAcked(state: Awaited<ReturnType<typeof openState>>, prefix: string, acks: Ack[]): void {
  expect(acks.length).toBeGreaterThan(0);
  for (const { n, seq } of acks) {
    expect(state.get(`${prefix}-${n}`), `acknowledged write ${prefix}-${n}`).toEqual({ n, pad: "p".repeat(n % 300) });
    expect(seq).toBeLessThanOrEqual(state.seq);
  }
}

describe("crashes of a real child process", () => {
  it("keeps every acknowledged write across repeated kill -9 mid-stream (with commits in between)", async () => {
    const stateDir = tempDir();
    const storeDir = tempDir();
    const rounds: Array<{ prefix: string; acks: Ack[] }> = [];
    for (let round = 0; round < 3; round++) {
      const prefix = `r${round}`;
      const writer = startWriter(scriptFile, libraryIndex, {
        STATE_DIR: stateDir,
        GENERATION: String(round + 1),
        STORE_DIR: storeDir,
        INTERVAL_MS: "25", // commits are frequent, so some kills land during one (and during a checkpoint)
        PREFIX: prefix,
      });
      expect(await writer.ready).toMatch(round === 0 ? /^ready empty 0$/ : /^ready local \d+$/);
      await writer.waitForAcks(400 + round * 150);
      // Commits run while writes go on: kill once this round's first commit is in, mid-stream of the next ones.
      const store = new DirectoryStore(storeDir, "pe-1");
      await waitFor(async () => (await store.list()).some((c) => c.record?.generation === round + 1), 20_000, `a commit of round ${round}`);
      await writer.waitForAcks(writer.acks.length + 50);
      writer.child.kill("SIGKILL");
      const { signal } = await writer.exited;
      expect(signal).toBe("SIGKILL");
      rounds.push({ prefix, acks: [...writer.acks] });
    }

    const state = await openState({ stateDir, peId: "pe-1", generation: 4, store: null, env: {} });
    expect(state.resumedFrom).toBe("local");
    for (const { prefix, acks } of rounds) expectAllAcked(state, prefix, acks);
    await state.close();
  }, 60_000);

  it("on SIGTERM commits everything acknowledged to the store and exits 0", async () => {
    const stateDir = tempDir();
    const storeDir = tempDir();
    const writer = startWriter(scriptFile, libraryIndex, {
      STATE_DIR: stateDir,
      STORE_DIR: storeDir,
      GENERATION: "1",
      PREFIX: "t",
      INTERVAL_MS: "600000", // no periodic commit: only the SIGTERM one can have shipped the data
      HANDLE_SIGNALS: "1",
    });
    await writer.waitForAcks(200);
    writer.child.kill("SIGTERM");
    const { code, stderr } = await writer.exited;
    // Nothing on stderr but Node 22's notice that node:sqlite is experimental (Node 24 prints none).
    expect(stderr.replace(/^.*ExperimentalWarning: SQLite.*\n|^\(Use `node --trace-warnings.*\n/gm, "")).toBe("");
    expect(code).toBe(0);

    const latest = await latestValid(new DirectoryStore(storeDir, "pe-1"));
    expect(latest?.record.generation).toBe(1);
    // The volume is lost: generation 2 rebuilds from the store alone.
    const state = await openState({ stateDir: tempDir(), peId: "pe-1", generation: 2, store: { kind: "directory", path: storeDir }, env: {} });
    expect(state.resumedFrom).toBe("persistent");
    expect(state.resumedSeq).toBe(latest!.record.seq);
    expectAllAcked(state, "t", writer.acks);
    await state.close();
  }, 60_000);
});
