import { promises as fs } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { LocalStateCorruptError, openState, statePaths } from "../../../src/state/index";
import { encodeRecord } from "../../../src/state/journalFormat";
import { serializeSnapshot } from "../../../src/state/snapshotFormat";
import { tempDir } from "./helpers";

const open = (stateDir: string, compactAfterBytes?: number) =>
  openState({ stateDir, peId: "pe-1", generation: 1, store: null, env: {}, ...(compactAfterBytes ? { compactAfterBytes } : {}) });

/** Build a journal file of puts k<seq> = seq for the given seqs. */
function journalOf(seqs: number[]): Buffer {
  return Buffer.concat(seqs.map((seq) => encodeRecord({ seq, op: "put", key: `k${seq}`, valueText: String(seq) })));
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe("compaction", () => {
  it("folds the journal into snapshot.json and empties the journal", async () => {
    const stateDir = tempDir();
    const { journalFile, snapshotFile } = statePaths(stateDir);
    const state = await open(stateDir, 2_000);
    for (let n = 1; n <= 200; n++) await state.put(`k${n % 50}`, { n, pad: "x".repeat(40) });
    await state.delete("k0");
    expect((await fs.stat(journalFile)).size).toBeLessThan(4_000); // compacted several times
    expect(await fs.stat(snapshotFile)).toBeTruthy();
    await state.close();

    const again = await open(stateDir);
    expect(again.seq).toBe(201);
    expect(again.has("k0")).toBe(false);
    expect(again.get("k49")).toEqual({ n: 199, pad: "x".repeat(40) });
    expect(again.entries()).toHaveLength(49);
    await again.close();
  });

  it("crash before the snapshot rename: temp file is ignored and removed, journal replayed", async () => {
    const stateDir = tempDir();
    const { dataDir, journalFile, snapshotFile } = statePaths(stateDir);
    await fs.mkdir(dataDir, { recursive: true });
    await fs.writeFile(journalFile, journalOf(range(1, 10)));
    const leftover = `${snapshotFile}.tmp-999-deadbeef`;
    await fs.writeFile(leftover, '{"format":"reseat-snapshot/1","seq":10,"entr'); // half-written

    const state = await open(stateDir);
    expect(state.seq).toBe(10);
    expect(state.get("k7")).toBe(7);
    await expect(fs.stat(leftover)).rejects.toThrow();
    await state.close();
  });

  it("crash after the rename but before truncation: journal records already in the snapshot are skipped", async () => {
    const stateDir = tempDir();
    const { dataDir, journalFile, snapshotFile } = statePaths(stateDir);
    await fs.mkdir(dataDir, { recursive: true });
    // Snapshot covers 1..10 but with k3 deleted; the journal still holds 1..10 and then 11..12.
    const entries = range(1, 10).filter((n) => n !== 3).map((n): [string, string] => [`k${n}`, String(n)]);
    await fs.writeFile(snapshotFile, serializeSnapshot(10, entries));
    await fs.writeFile(journalFile, journalOf(range(1, 12)));

    const state = await open(stateDir);
    expect(state.seq).toBe(12);
    expect(state.has("k3")).toBe(false); // replaying 1..10 again would resurrect it
    expect(state.get("k12")).toBe(12);
    expect(await state.put("k13", 13)).toBe(13);
    await state.close();
  });

  it("crash after truncation: snapshot alone is the state", async () => {
    const stateDir = tempDir();
    const { dataDir, journalFile, snapshotFile } = statePaths(stateDir);
    await fs.mkdir(dataDir, { recursive: true });
    await fs.writeFile(snapshotFile, serializeSnapshot(5, [["a", '"b"']]));
    await fs.writeFile(journalFile, "");
    const state = await open(stateDir);
    expect(state.resumedFrom).toBe("local");
    expect(state.seq).toBe(5);
    expect(await state.put("c", 1)).toBe(6);
    await state.close();
  });

  it("refuses a journal that starts after the snapshot's seq (acknowledged writes missing)", async () => {
    const stateDir = tempDir();
    const { dataDir, journalFile, snapshotFile } = statePaths(stateDir);
    await fs.mkdir(dataDir, { recursive: true });
    await fs.writeFile(snapshotFile, serializeSnapshot(3, []));
    await fs.writeFile(journalFile, journalOf(range(6, 8)));
    await expect(open(stateDir)).rejects.toBeInstanceOf(LocalStateCorruptError);
  });

  it("keeps acknowledged writes when the snapshot cannot be written (compaction is best effort)", async () => {
    const stateDir = tempDir();
    const { dataDir, snapshotFile } = statePaths(stateDir);
    const state = await open(stateDir, 500);
    // A directory where snapshot.json should go makes the rename fail on every compaction.
    await fs.mkdir(path.join(dataDir, "snapshot.json"), { recursive: true });
    await fs.writeFile(path.join(snapshotFile, "blocker"), "");
    for (let n = 1; n <= 40; n++) await state.put(`k${n}`, "y".repeat(30));
    await state.close();
    await fs.rm(snapshotFile, { recursive: true });
    const again = await open(stateDir);
    expect(again.seq).toBe(40);
    expect(again.entries()).toHaveLength(40);
    await again.close();
  });
});
