// Replacement identity, on the fake engine: whatever makes Pulumi replace a resource with unchanged
// inputs (`--replace`, replacementTrigger, a rotated secret), the successor gets an executable of its
// own and the predecessor's delete removes only what it made itself — never what serves now.
import { describe, expect, it } from "vitest";
import { reseat, retire } from "../../../src/replacement/reseat";
import { specHash } from "../../../src/plan/executablePlan";
import { desiredFor, engineWithVolume } from "./fixtures";

describe("replacement identity (declaredBy)", () => {
  it("a forced replacement with identical inputs is a real replacement, and the old resource's delete leaves the new executable serving", async () => {
    const spec = desiredFor("pe-a");
    const backend = await engineWithVolume(spec);
    const first = await reseat(backend, { ...spec, declaredBy: "resource-1" }, { holder: "t" });
    const second = await reseat(backend, { ...spec, declaredBy: "resource-2" }, { holder: "t" });
    expect(second.adopted).toBe(false);
    expect(second.generation).toBe(first.generation + 1);
    expect(second.executableId).not.toBe(first.executableId);
    // The predecessor's delete, as the provider calls it.
    expect(await retire(backend, { ...spec, declaredBy: "resource-1" }, "t", { sameDeclarer: true })).toEqual([]);
    expect(backend.running("pe-a").map((e) => e.id)).toEqual([second.executableId]);
    expect(backend.maxRunningOnVolume.get(spec.volumeName)).toBe(1);
  });

  it("the same resource's re-run adopts its own running executable", async () => {
    const spec = { ...desiredFor("pe-a"), declaredBy: "resource-1" };
    const backend = await engineWithVolume(spec);
    const first = await reseat(backend, spec, { holder: "t" });
    const again = await reseat(backend, spec, { holder: "t" });
    expect(again).toMatchObject({ adopted: true, executableId: first.executableId, generation: first.generation });
  });

  it("an executable re-created on the resource's behalf (the controller) is still that resource's: destroy removes it", async () => {
    const spec = { ...desiredFor("pe-a"), declaredBy: "resource-1" };
    const backend = await engineWithVolume(spec);
    const first = await reseat(backend, spec, { holder: "t" });
    const recorded = (await backend.desiredOf(first.executableId))!;
    expect(recorded.declaredBy).toBe("resource-1");
    const repaired = await reseat(backend, recorded, { holder: "controller", replaceRunning: true });
    expect(repaired.generation).toBe(first.generation + 1);
    expect(await retire(backend, spec, "t", { sameDeclarer: true })).toEqual([repaired.executableName]);
    expect(backend.running("pe-a")).toHaveLength(0);
  });

  it("a revert serves the previous resource's spec under the previous resource's token", async () => {
    const spec = { ...desiredFor("pe-a"), declaredBy: "resource-1" };
    const backend = await engineWithVolume(spec);
    await reseat(backend, spec, { holder: "t" });
    backend.faults.crashingImages.add("bad:1");
    await expect(reseat(backend, { ...desiredFor("pe-a", { image: "bad:1" }), declaredBy: "resource-2" }, { holder: "t" })).rejects.toThrow(/was reverted/);
    const [serving] = backend.running("pe-a");
    expect((await backend.desiredOf(serving!.id))?.declaredBy).toBe("resource-1");
    // Pulumi keeps the old resource (the create failed); its delete still finds what serves its spec.
    expect(await retire(backend, spec, "t", { sameDeclarer: true })).toEqual([serving!.name]);
  });

  it("state recorded before 0.4: a resource without a token retires only executables without one, of its spec", async () => {
    const legacy = desiredFor("pe-a");
    const backend = await engineWithVolume(legacy);
    const old = await reseat(backend, legacy, { holder: "t" });
    // The legacy executable is adopted by a legacy caller (an in-place update keeps the record tokenless) …
    expect((await reseat(backend, legacy, { holder: "t" })).executableId).toBe(old.executableId);
    // … but a new resource replaces it, and the legacy delete that follows leaves the new one alone.
    const next = await reseat(backend, { ...legacy, declaredBy: "resource-2" }, { holder: "t" });
    expect(next.adopted).toBe(false);
    expect(await retire(backend, legacy, "t", { sameDeclarer: true, specHash: specHash(legacy) })).toEqual([]);
    expect(backend.running("pe-a").map((e) => e.id)).toEqual([next.executableId]);
  });
});
