import { promises as fs } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { JournalCorruptError, openState, statePaths } from "../../../src/state/index";
import { encodeRecord, scanJournal } from "../../../src/state/journalFormat";
import { flipByte, tempDir } from "./helpers";

const open = (stateDir: string) => openState({ stateDir, peId: "pe-1", generation: 1, store: null, env: {} });

/** Write keys k1..kN (value {n}) through the library, close, return the journal path and its clean length. */
async function journalWithWrites(count: number): Promise<{ stateDir: string; journal: string; cleanLength: number }> {
  const stateDir = tempDir();
  const state = await open(stateDir);
  for (let n = 1; n <= count; n++) await state.put(`k${n}`, { n });
  await state.close();
  const journal = statePaths(stateDir).journalFile;
  return { stateDir, journal, cleanLength: (await fs.stat(journal)).size };
}

describe("journal record format", () => {
  it("round-trips puts and deletes", () => {
    const buf = Buffer.concat([
      encodeRecord({ seq: 1, op: "put", key: "a", valueText: '{"x":[1,"é",null]}' }),
      encodeRecord({ seq: 2, op: "delete", key: "a" }),
    ]);
    const scan = scanJournal(buf, "mem");
    expect(scan.tornBytes).toBe(0);
    expect(scan.validBytes).toBe(buf.length);
    expect(scan.records).toEqual([
      { seq: 1, op: "put", key: "a", valueText: '{"x":[1,"é",null]}' },
      { seq: 2, op: "delete", key: "a" },
    ]);
  });

  it("treats every prefix of a record as a torn tail and keeps the records before it", () => {
    const first = encodeRecord({ seq: 1, op: "put", key: "a", valueText: "1" });
    const second = encodeRecord({ seq: 2, op: "put", key: "b", valueText: '"two"' });
    for (let cut = 1; cut < second.length; cut++) {
      const scan = scanJournal(Buffer.concat([first, second.subarray(0, cut)]), "mem");
      expect(scan.records.map((r) => r.seq)).toEqual([1]);
      expect(scan.validBytes).toBe(first.length);
      expect(scan.tornBytes).toBe(cut);
    }
  });
});

describe("journal recovery", () => {
  it("drops a half-written final record but keeps every earlier one", async () => {
    const { stateDir, journal, cleanLength } = await journalWithWrites(5);
    const torn = encodeRecord({ seq: 6, op: "put", key: "k6", valueText: '{"n":6}' });
    await fs.appendFile(journal, torn.subarray(0, torn.length - 3));

    const state = await open(stateDir);
    expect(state.seq).toBe(5);
    expect(state.entries()).toEqual([1, 2, 3, 4, 5].map((n) => [`k${n}`, { n }]));
    expect((await fs.stat(journal)).size).toBe(cleanLength); // tail cut off on disk too
    // Appends continue cleanly after the cut.
    expect(await state.put("k6", { n: 6 })).toBe(6);
    await state.close();
    const again = await open(stateDir);
    expect(again.seq).toBe(6);
    expect(again.get("k6")).toEqual({ n: 6 });
    await again.close();
  });

  it("drops a zero-filled tail (file extended but data never written)", async () => {
    const { stateDir, journal } = await journalWithWrites(3);
    await fs.appendFile(journal, Buffer.alloc(4096));
    const state = await open(stateDir);
    expect(state.seq).toBe(3);
    expect(state.get("k3")).toEqual({ n: 3 });
    await state.close();
  });

  it("drops a complete final record whose checksum does not match", async () => {
    const { stateDir, journal, cleanLength } = await journalWithWrites(4);
    const bytes = await fs.readFile(journal);
    flipByte(bytes, cleanLength - 2); // inside the last record's payload
    await fs.writeFile(journal, bytes);
    const state = await open(stateDir);
    expect(state.seq).toBe(3);
    expect(state.has("k4")).toBe(false);
    expect(state.get("k3")).toEqual({ n: 3 });
    await state.close();
  });

  it("refuses to start when damage is followed by valid records (not a torn tail)", async () => {
    const { stateDir, journal } = await journalWithWrites(4);
    const bytes = await fs.readFile(journal);
    const firstRecordLength = encodeRecord({ seq: 1, op: "put", key: "k1", valueText: '{"n":1}' }).length;
    flipByte(bytes, firstRecordLength + 14); // inside record 2's payload; records 3 and 4 are intact
    await fs.writeFile(journal, bytes);
    await expect(open(stateDir)).rejects.toBeInstanceOf(JournalCorruptError);
    expect((await fs.readFile(journal)).equals(bytes)).toBe(true); // nothing was truncated
  });

  it("journals deletes and replays them", async () => {
    const stateDir = tempDir();
    const state = await open(stateDir);
    await state.put("a", 1);
    await state.put("b", 2);
    expect(await state.delete("a")).toBe(true);
    expect(await state.delete("nope")).toBe(false);
    await state.close();
    const again = await open(stateDir);
    expect(again.entries()).toEqual([["b", 2]]);
    expect(again.seq).toBe(4);
    await again.close();
    expect(path.basename(statePaths(stateDir).journalFile)).toBe("journal.log");
  });

  it("acknowledges concurrent writes in seq order (group commit)", async () => {
    const stateDir = tempDir();
    const state = await open(stateDir);
    const seqs = await Promise.all(Array.from({ length: 50 }, (_, i) => state.put(`k${i}`, i)));
    expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    await state.close();
    const again = await open(stateDir);
    expect(again.seq).toBe(50);
    expect(again.get("k49")).toBe(49);
    await again.close();
  });

  it("returns copies, so mutating a document does not change the state", async () => {
    const state = await open(tempDir());
    const doc = { list: [1] };
    await state.put("d", doc);
    doc.list.push(2);
    state.get<{ list: number[] }>("d")?.list.push(3);
    expect(state.get("d")).toEqual({ list: [1] });
    await expect(state.put("bad", undefined)).rejects.toBeInstanceOf(TypeError);
    await state.close();
  });
});
