// Staged replacement and automatic revert, on the fake engine: the new executable is prepared while
// the old one serves; only stop → start → ready are in the gap; a new executable that does not become
// ready is replaced by the previous spec again, on the same volume, never two running at once.
import { describe, expect, it } from "vitest";
import { ReplacementRevertedError, reseat, retire } from "../../../src/replacement/reseat";
import { specHash } from "../../../src/plan/executablePlan";
import { desiredFor, engineWithVolume } from "./fixtures";

describe("staged replacement", () => {
  it("prepares the new executable before the old one stops; records the generation after the stop", async () => {
    const v1 = desiredFor("pe-a");
    const backend = await engineWithVolume(v1);
    const first = await reseat(backend, v1, { holder: "t" });
    backend.calls.length = 0;
    const second = await reseat(backend, desiredFor("pe-a", { env: { V: "2" } }), { holder: "t" });
    const at = (prefix: string) => backend.calls.findIndex((c) => c.startsWith(prefix));
    expect(at("prepare reseat-pe-a-g2")).toBeGreaterThan(-1);
    expect(at("prepare reseat-pe-a-g2")).toBeLessThan(at(`stop ${first.executableId}`));
    expect(at(`stop ${first.executableId}`)).toBeLessThan(at("recordGeneration reseat-pe-a-state"));
    expect(at("recordGeneration reseat-pe-a-state")).toBeLessThan(at(`start ${second.executableId}`));
    // The old executable is removed only after the new one is ready, out of the gap.
    expect(at(`remove ${first.executableId}`)).toBeGreaterThan(at(`waitReady ${second.executableId}`));
    expect(backend.maxRunningOnVolume.get(v1.volumeName)).toBe(1);
  });

  it("reverts: a new executable that exits at start is replaced by the previous spec, serving again", async () => {
    const v1 = desiredFor("pe-a");
    const backend = await engineWithVolume(v1);
    await reseat(backend, v1, { holder: "t" });
    backend.faults.crashingImages.add("bad:1");
    const bad = desiredFor("pe-a", { image: "bad:1" });
    const error = await reseat(backend, bad, { holder: "t" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReplacementRevertedError);
    expect((error as Error).message).toMatch(/PE "pe-a" was reverted: the new executable reseat-pe-a-g2 .* did not become ready/);
    expect((error as Error).message).toContain("Last log lines of reseat-pe-a-g2");
    const running = backend.running("pe-a");
    expect(running).toHaveLength(1);
    expect(running[0]!.specHash).toBe(specHash(v1));
    expect(running[0]!.generation).toBe(3);
    expect(backend.executables.size).toBe(1); // the failed one and the old stopped one are gone
    expect(backend.maxRunningOnVolume.get(v1.volumeName)).toBe(1);
    const record = await backend.readRevert(v1.volumeName);
    expect(record).toMatchObject({ reverted: true, failedSpecHash: specHash(bad), servingGeneration: 3, failedExecutable: "reseat-pe-a-g2" });
    // The fixed spec then replaces normally, and the revert record is superseded.
    const fixed = await reseat(backend, desiredFor("pe-a", { image: "good:2" }), { holder: "t" });
    expect(fixed.generation).toBe(4);
    expect(await backend.readRevert(v1.volumeName)).toEqual({ reverted: false });
  });

  it("leave-stopped: a failed replacement leaves the PE without an executable, as before", async () => {
    const v1 = desiredFor("pe-a");
    const backend = await engineWithVolume(v1);
    await reseat(backend, v1, { holder: "t" });
    backend.faults.crashingImages.add("bad:1");
    await expect(reseat(backend, desiredFor("pe-a", { image: "bad:1", onFailedReplacement: "leave-stopped" }), { holder: "t" })).rejects.toThrow(
      /exited with code 1 before it was ready/,
    );
    expect(backend.running("pe-a")).toHaveLength(0);
    expect(backend.executables.size).toBe(0);
    expect(backend.volumes.has(v1.volumeName)).toBe(true);
  });

  it("a failure before the old executable was told to stop leaves it serving", async () => {
    const v1 = desiredFor("pe-a");
    const backend = await engineWithVolume(v1);
    const first = await reseat(backend, v1, { holder: "t" });
    backend.faults.beforeCall = (operation) => {
      if (operation === "prepare") throw new Error("engine refused the create");
    };
    await expect(reseat(backend, desiredFor("pe-a", { env: { V: "2" } }), { holder: "t" })).rejects.toThrow(/engine refused the create/);
    expect(backend.running("pe-a").map((e) => e.id)).toEqual([first.executableId]);
  });

  it("deleting a replaced resource removes only executables of its own spec", async () => {
    const v1 = desiredFor("pe-a");
    const backend = await engineWithVolume(v1);
    await reseat(backend, v1, { holder: "t" });
    const v2 = desiredFor("pe-a", { env: { V: "2" } });
    const second = await reseat(backend, v2, { holder: "t" });
    expect(await retire(backend, v1, "t", { specHash: specHash(v1) })).toEqual([]);
    expect(backend.running("pe-a").map((e) => e.id)).toEqual([second.executableId]);
  });
});
