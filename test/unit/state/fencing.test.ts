import { describe, expect, it } from "vitest";
import { DirectoryStore, openState, StaleCommitError, StaleGenerationError } from "../../../packages/state/src/index";
import { latestValid, tempDir, writeMeta } from "./helpers";

describe("generation fencing on the volume", () => {
  it("refuses writes once meta.json names a newer generation", async () => {
    const stateDir = tempDir();
    await writeMeta(stateDir, 1);
    const state = await openState({ stateDir, peId: "pe-1", generation: 1, store: null, env: {} });
    await state.put("before", 1);

    await writeMeta(stateDir, 2); // the provider starts generation 2 on this volume
    const error = await state.put("after", 2).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StaleGenerationError);
    expect(error).toMatchObject({ ownGeneration: 1, newerGeneration: 2, source: "volume" });
    await expect(state.delete("before")).rejects.toBeInstanceOf(StaleGenerationError);
    expect(state.has("after")).toBe(false);
    await state.close(); // no store, so nothing to commit; closing a fenced handle is fine

    const next = await openState({ stateDir, peId: "pe-1", generation: 2, store: null, env: {} });
    expect(next.entries()).toEqual([["before", 1]]);
    await next.close();
  });

  it("refuses to open for a generation older than meta.json's", async () => {
    const stateDir = tempDir();
    await writeMeta(stateDir, 5);
    await expect(openState({ stateDir, peId: "pe-1", generation: 4, store: null, env: {} })).rejects.toBeInstanceOf(StaleGenerationError);
  });

  it("takes its generation and PE id from the environment, else from meta.json", async () => {
    const stateDir = tempDir();
    await writeMeta(stateDir, 7, "from-meta");
    const fromMeta = await openState({ stateDir, store: null, env: {} });
    expect([fromMeta.peId, fromMeta.generation]).toEqual(["from-meta", 7]);
    await fromMeta.close();
    const fromEnv = await openState({ env: { RESEAT_STATE_DIR: stateDir, RESEAT_PE_ID: "from-env", RESEAT_GENERATION: "8" } });
    expect([fromEnv.peId, fromEnv.generation, fromEnv.stateDir]).toEqual(["from-env", 8, stateDir]);
    await fromEnv.close();
  });

  it("refuses commits at commit time when meta.json moved on", async () => {
    const stateDir = tempDir();
    const store = new DirectoryStore(tempDir(), "pe-1");
    await writeMeta(stateDir, 1);
    const state = await openState({ stateDir, peId: "pe-1", generation: 1, store, env: {} });
    await state.put("a", 1);
    await writeMeta(stateDir, 2);
    await expect(state.commitNow()).rejects.toBeInstanceOf(StaleGenerationError);
    expect(state.status().lastCommitError).toMatch(/stale/);
    expect(await latestValid(store)).toBeNull();
    await state.close().catch(() => undefined);
  });
});

describe("generation fencing in the store", () => {
  it("an older executable cannot open once the store has accepted a newer generation", async () => {
    const store = new DirectoryStore(tempDir(), "pe-1");
    const newer = await openState({ stateDir: tempDir(), peId: "pe-1", generation: 3, store, env: {} });
    await newer.put("k", "v");
    await newer.close();
    await expect(openState({ stateDir: tempDir(), peId: "pe-1", generation: 2, store, env: {} })).rejects.toBeInstanceOf(StaleCommitError);
  });

  it("a running older executable stops writing once the store rejects its commit", async () => {
    const storeRoot = tempDir();
    const oldState = await openState({ stateDir: tempDir(), peId: "pe-1", generation: 1, store: new DirectoryStore(storeRoot, "pe-1"), env: {} });
    await oldState.put("a", 1);
    // Generation 2 starts elsewhere (volume lost) and claims the store.
    const newState = await openState({ stateDir: tempDir(), peId: "pe-1", generation: 2, store: new DirectoryStore(storeRoot, "pe-1"), env: {} });
    await expect(oldState.commitNow()).rejects.toBeInstanceOf(StaleCommitError);
    await expect(oldState.put("b", 2)).rejects.toBeInstanceOf(StaleGenerationError);
    await oldState.close();
    await newState.close();
  });
});
