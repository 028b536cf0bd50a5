// Volumes and store commits written by reseat 0.1 (journal + snapshot, JSON commits): the fixture in
// test/fixtures/legacy-0.1 was written by the 0.1 state library itself (see its generate.js).
import { cpSync, promises as fs } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { DirectoryStore, LocalStateCorruptError, openState, statePaths } from "../../../packages/state/src/index";
import { latestValid, readJson, tempDir } from "./helpers";

const FIXTURE = path.resolve(__dirname, "../../fixtures/legacy-0.1");

interface Expected {
  peId: string;
  generation: number;
  volume: { seq: number; entries: Array<[string, unknown]> };
  commit: { seq: number; entries: Array<[string, unknown]> };
}

async function expected(): Promise<Expected> {
  return readJson<Expected>(path.join(FIXTURE, "expected.json"));
}

function copyOfFixture(): { volume: string; store: string } {
  const dir = tempDir("reseat-legacy-");
  cpSync(FIXTURE, dir, { recursive: true });
  return { volume: path.join(dir, "volume"), store: path.join(dir, "store") };
}

describe("migration from the 0.1 format", () => {
  it("migrates a 0.1 volume (snapshot + journal + torn tail) on first start and resumes locally", async () => {
    const want = await expected();
    const { volume } = copyOfFixture();
    const paths = statePaths(volume);
    const state = await openState({ stateDir: volume, generation: want.generation + 1, store: null, env: {} });
    expect(state.peId).toBe(want.peId); // from the volume's meta.json
    expect([state.resumedFrom, state.resumedSeq]).toEqual(["local", want.volume.seq]);
    expect(state.entries()).toEqual(want.volume.entries); // values, and 0.1's key order
    expect(state.get("__proto__")).toEqual({ tricky: true });
    expect(state.has("torn")).toBe(false); // the torn record was never acknowledged
    expect(await state.put("after-migration", 1)).toBe(want.volume.seq + 1);
    await state.close();

    // The 0.1 files are kept aside, not read again; the database alone is the state now.
    expect((await fs.readdir(paths.legacyArchiveDir)).sort()).toEqual(["journal.log", "snapshot.json"]);
    await expect(fs.access(paths.legacyJournalFile)).rejects.toThrow();
    const again = await openState({ stateDir: volume, generation: want.generation + 2, store: null, env: {} });
    expect([again.resumedFrom, again.seq, again.get("after-migration")]).toEqual(["local", want.volume.seq + 1, 1]);
    await again.close();
  });

  it("a migration killed before its database was in place runs again; one killed after it only tidies up", async () => {
    const want = await expected();
    const { volume } = copyOfFixture();
    const paths = statePaths(volume);
    // Killed while building: a half-written scratch database is all that is new.
    await fs.writeFile(path.join(paths.dataDir, ".scratch-migrate-999-deadbeef.db"), "half a database");
    const first = await openState({ stateDir: volume, generation: 4, store: null, env: {} });
    expect(first.seq).toBe(want.volume.seq);
    await first.close();
    expect((await fs.readdir(paths.dataDir)).filter((name) => name.startsWith(".scratch-"))).toEqual([]);

    // Killed after placing the database but before moving the 0.1 files aside: they come back here.
    await fs.rename(path.join(paths.legacyArchiveDir, "journal.log"), paths.legacyJournalFile);
    const second = await openState({ stateDir: volume, generation: 5, store: null, env: {} });
    expect([second.resumedFrom, second.seq]).toEqual(["local", want.volume.seq]);
    await second.close();
    await expect(fs.access(paths.legacyJournalFile)).rejects.toThrow();
  });

  it("refuses a 0.1 journal damaged before its end (acknowledged writes unreadable) and leaves it as it is", async () => {
    const { volume } = copyOfFixture();
    const { legacyJournalFile, dbFile } = statePaths(volume);
    const journal = await fs.readFile(legacyJournalFile);
    journal[40] = journal[40]! ^ 0xff; // inside the first record; valid records follow
    await fs.writeFile(legacyJournalFile, journal);
    await expect(openState({ stateDir: volume, generation: 4, store: null, env: {} })).rejects.toThrow(LocalStateCorruptError);
    expect((await fs.readFile(legacyJournalFile)).equals(journal)).toBe(true);
    await expect(fs.access(dbFile)).rejects.toThrow();
  });

  it("restores a lost volume from a commit made by 0.1, and commits in the new format from then on", async () => {
    const want = await expected();
    const { store } = copyOfFixture();
    const stateDir = tempDir();
    const config = { kind: "directory", path: store } as const;
    const state = await openState({ stateDir, peId: want.peId, generation: want.generation + 1, store: config, env: {} });
    expect([state.resumedFrom, state.resumedSeq]).toEqual(["persistent", want.commit.seq]);
    expect(state.entries()).toEqual(want.commit.entries);
    await state.put("new", true);
    await state.close();
    const newest = await latestValid(new DirectoryStore(store, want.peId));
    expect(newest?.record).toMatchObject({ seq: want.commit.seq + 1, generation: want.generation + 1, format: "sqlite-1" });
  });
});
