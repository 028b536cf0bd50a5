// The one replacement routine, on the in-memory fake engine: what it does, in which order, and that
// the single-writer rule holds through races and crashes.
import { controlOf } from "@reseat/state/contract";
import { describe, expect, it } from "vitest";
import { FakeBackend } from "../../../src/backend/fake/fakeBackend";
import { ForeignExecutableError, VolumeOwnedError, reseat, retire } from "../../../src/replacement/reseat";
import { desiredFor, engineWithVolume } from "./fixtures";

describe("reseat() on the fake engine", () => {
  it("creates generation 1 bound to the kept volume, recording the generation before start", async () => {
    const desired = desiredFor("pe-a");
    const backend = await engineWithVolume(desired);
    const result = await reseat(backend, desired, { holder: "test" });
    expect(result).toMatchObject({ generation: 1, executableName: "reseat-pe-a-g1", adopted: false, host: "fake-host" });
    const recordAt = backend.calls.findIndex((c) => c.startsWith("recordGeneration reseat-pe-a-state"));
    const startAt = backend.calls.findIndex((c) => c.startsWith("start "));
    expect(recordAt).toBeGreaterThan(-1);
    expect(recordAt).toBeLessThan(startAt);
    expect(await backend.readGeneration(desired.volumeName)).toMatchObject({ generation: 1, peId: "pe-a" });
  });

  it("replaces: the old executable is stopped and removed before the new one starts; generation + 1; volume kept", async () => {
    const v1 = desiredFor("pe-a");
    const backend = await engineWithVolume(v1);
    const first = await reseat(backend, v1, { holder: "test" });
    const v2 = desiredFor("pe-a", { env: { VERSION: "2" } });
    const second = await reseat(backend, v2, { holder: "test" });
    expect(second.generation).toBe(2);
    expect(second.retired).toEqual([first.executableName]);
    expect(backend.executables.has(first.executableId)).toBe(false);
    expect(backend.maxRunningOnVolume.get(v1.volumeName)).toBe(1);
    expect(backend.volumes.has(v1.volumeName)).toBe(true);
  });

  it("is idempotent: a running executable with the desired spec is adopted, not replaced", async () => {
    const desired = desiredFor("pe-a");
    const backend = await engineWithVolume(desired);
    const first = await reseat(backend, desired, { holder: "test" });
    const again = await reseat(backend, desired, { holder: "test" });
    expect(again).toMatchObject({ adopted: true, executableId: first.executableId, generation: 1 });
  });

  it("continues the generation from the store when the volume was lost", async () => {
    const desired = desiredFor("pe-a");
    const backend = await engineWithVolume(desired);
    // The directory store's fence as the 0.4.0 state library wrote it (no version field).
    backend.putVolumeFiles("reseat-store", { "pe-a/fence.json": JSON.stringify({ generation: 7 }) });
    const result = await reseat(backend, desired, { holder: "test" });
    expect(result.generation).toBe(8);
  });

  it("refuses a volume owned by another PE, stack or program, before anything is created", async () => {
    const mine = desiredFor("pe-a", { volume: { name: "shared" } }, "proj/stack-1/pe-a");
    const otherStack = desiredFor("pe-a", { volume: { name: "shared" } }, "proj/stack-2/pe-a");
    const backend = await engineWithVolume(mine);
    await expect(reseat(backend, otherStack, { holder: "test" })).rejects.toBeInstanceOf(VolumeOwnedError);
    await expect(reseat(backend, otherStack, { holder: "test" })).rejects.toThrow(/state volume "shared" belongs to proj\/stack-1\/pe-a/);
    expect(backend.calls.some((c) => c.startsWith("prepare"))).toBe(false);
  });

  it("refuses a volume that a foreign running container mounts", async () => {
    const a = desiredFor("pe-a");
    const intruder = { ...desiredFor("pe-b"), volumeName: a.volumeName };
    const backend = await engineWithVolume(a);
    // The intruder got onto the volume behind reseat's back (not through reseat()).
    const id = await backend.prepare(intruder, { name: "intruder", generation: 1, specHash: "x" });
    backend.startByHand(id);
    await expect(reseat(backend, a, { holder: "test" })).rejects.toBeInstanceOf(ForeignExecutableError);
  });

  it("leaves nothing half-made when the new executable fails before ready; the volume and generation stay", async () => {
    const desired = desiredFor("pe-a", { image: "bad:1" });
    const backend = await engineWithVolume(desired);
    backend.faults.crashingImages.add("bad:1");
    await expect(reseat(backend, desired, { holder: "test" })).rejects.toThrow(/exited with code 1 before it was ready/);
    expect(backend.executables.size).toBe(0);
    expect(await backend.readGeneration(desired.volumeName)).toMatchObject({ generation: 1 });
    expect(backend.leases.size).toBe(0);
  });

  it("passes the generation to the executable at creation (its fencing token)", async () => {
    const desired = desiredFor("pe-a");
    const backend = await engineWithVolume(desired);
    const first = await reseat(backend, desired, { holder: "test" });
    await reseat(backend, desiredFor("pe-a", { env: { V: "2" } }), { holder: "test" });
    const [current] = backend.running("pe-a");
    expect(current!.generation).toBe(2);
    expect(first.generation).toBe(1);
  });

  it("never runs two executables on one volume when many replacements race", async () => {
    const base = desiredFor("pe-a");
    const backend = await engineWithVolume(base);
    // Every engine call yields, so the racing routines interleave at every step.
    backend.faults.beforeCall = () => new Promise((resolve) => setImmediate(resolve));
    const racers = Array.from({ length: 20 }, (_, i) => reseat(backend, desiredFor("pe-a", { env: { RUN: String(i) } }), { holder: `racer-${i}` }));
    const results = await Promise.allSettled(racers);
    expect(results.filter((r) => r.status === "fulfilled").length).toBe(20);
    expect(backend.maxRunningOnVolume.get(base.volumeName)).toBe(1);
    expect(backend.running("pe-a")).toHaveLength(1);
    const generations = results.map((r) => (r.status === "fulfilled" ? r.value.generation : 0)).sort((a, b) => a - b);
    expect(new Set(generations).size).toBe(20); // each a generation of its own: they ran one at a time
  });

  it("two PEs racing to claim one volume: exactly one owns it", async () => {
    const backend = new FakeBackend();
    backend.faults.beforeCall = () => new Promise((resolve) => setImmediate(resolve));
    const claims = await Promise.all(
      ["proj/s1/pe-a", "proj/s2/pe-b"].map((owner, i) => backend.claimVolume({ name: "shared", driver: "local", peId: i ? "pe-b" : "pe-a", owner })),
    );
    expect(claims.filter((c) => c.created)).toHaveLength(1);
    expect(new Set(claims.map((c) => c.owner)).size).toBe(1);
  });
});

describe("retire() on the fake engine", () => {
  it("stops and removes every executable of the PE, never the volume", async () => {
    const desired = desiredFor("pe-a");
    const backend = await engineWithVolume(desired);
    const { executableName } = await reseat(backend, desired, { holder: "test" });
    expect(await retire(backend, desired, "test")).toEqual([executableName]);
    expect(backend.executables.size).toBe(0);
    expect(backend.volumes.has(desired.volumeName)).toBe(true);
    expect(backend.calls.filter((c) => c.startsWith("stop")).length).toBe(1);
  });

  it("finds executables by PE identity, including one a controller made since", async () => {
    const desired = desiredFor("pe-a");
    const backend = await engineWithVolume(desired);
    const first = await reseat(backend, desired, { holder: "pulumi" });
    backend.crash(first.executableId);
    const second = await reseat(backend, desired, { holder: "controller" });
    expect(await retire(backend, desired, "pulumi")).toEqual([second.executableName]);
  });
});

describe("one PE id per engine", () => {
  it("refuses to adopt or retire executables of the same peId made for another owner", async () => {
    const stack1 = desiredFor("pe-a", {}, "proj/stack-1/pe-a");
    const backend = await engineWithVolume(stack1);
    await reseat(backend, stack1, { holder: "stack-1" });
    const stack2 = desiredFor("pe-a", { volume: { name: "other" } }, "proj/stack-2/pe-a");
    await backend.claimVolume({ name: "other", driver: "local", peId: "pe-a", owner: stack2.owner! });
    await expect(reseat(backend, stack2, { holder: "stack-2" })).rejects.toThrow(/"pe-a" \(peId\) is already in use on this engine by proj\/stack-1\/pe-a/);
    await expect(retire(backend, stack2, "stack-2")).rejects.toThrow(/already in use/);
    expect(backend.running("pe-a")).toHaveLength(1);
  });
});

describe("reseat() over records written by others", () => {
  it("continues from a 0.4.0 meta record (no version) and replaces a corrupt control record instead of failing", async () => {
    const desired = desiredFor("pe-a");
    const backend = await engineWithVolume(desired);
    backend.putVolumeFiles(desired.volumeName, {
      ".reseat/meta.json": JSON.stringify({ peId: "pe-a", generation: 3, volume: desired.volumeName, updatedAt: "2026-01-01T00:00:00.000Z" }),
      ".reseat/control.json": "{not json",
    });
    const result = await reseat(backend, desired, { holder: "test" });
    expect(result.generation).toBe(4);
    expect(await backend.readControl(desired.volumeName)).toEqual(controlOf(desired));
  });

  it("a corrupt meta record stops the replacement before anything is created (the generation is never guessed)", async () => {
    const desired = desiredFor("pe-a");
    const backend = await engineWithVolume(desired);
    backend.putVolumeFiles(desired.volumeName, { ".reseat/meta.json": '{"generation":"three"}' });
    await expect(reseat(backend, desired, { holder: "test" })).rejects.toThrow(/the meta record is unreadable: "generation" is "three"/);
    expect(backend.calls.some((c) => c.startsWith("prepare"))).toBe(false);
  });
});
