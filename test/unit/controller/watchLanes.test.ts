// The controller repairs many failed PEs a few at a time (maxConcurrentReseats): a node's worth of fleet
// members failing together keeps the calls to the engine bounded, and every one of them is still repaired.
import { describe, expect, it } from "vitest";
import { WatchEvent, watch } from "../../../src/controller/watch";
import { reseat } from "../../../src/replacement/reseat";
import { desiredFor, engineWithVolume, until } from "../replacement/fixtures";

describe("watch(): failures of many PEs at once", () => {
  it("12 fleet members crash together: all reseated, never more than maxConcurrentReseats PE locks held at once", async () => {
    const desired = Array.from({ length: 12 }, (_, ordinal) => desiredFor(`orders-${ordinal}`));
    const backend = await engineWithVolume(...desired);
    for (const d of desired) await reseat(backend, d, { holder: "pulumi" });
    const events: WatchEvent[] = [];
    const watcher = await watch({ backend, onEvent: (e) => events.push(e), resyncMs: 50, reconnectMs: 10, leaseMs: 200, maxConcurrentReseats: 3 });
    // A reseat holds its PE's lock (lease "pe-<peId>") from start to end: count the locks held before every call.
    let mostLocksHeld = 0;
    backend.faults.beforeCall = async () => {
      mostLocksHeld = Math.max(mostLocksHeld, [...backend.leases.keys()].filter((name) => name.startsWith("pe-")).length);
      await new Promise((resolve) => setImmediate(resolve)); // calls of different reseats interleave here
    };
    for (const d of desired) backend.crash(backend.running(d.peId)[0]!.id);
    await until(() => events.filter((e) => e.kind === "reseated").length === 12, 20_000, "12 reseats");
    await watcher.idle();
    await watcher.stop();
    expect(desired.map((d) => backend.running(d.peId).map((e) => e.generation))).toEqual(desired.map(() => [2]));
    expect(mostLocksHeld).toBeGreaterThan(1);
    expect(mostLocksHeld).toBeLessThanOrEqual(3);
    expect(events.filter((e) => e.kind === "reseat-failed")).toEqual([]);
  });

  it("refuses a maxConcurrentReseats that is not a whole number ≥ 1, naming it", async () => {
    const backend = await engineWithVolume(desiredFor("pe-a"));
    await expect(watch({ backend, maxConcurrentReseats: 0 })).rejects.toThrow(/maxConcurrentReseats must be a whole number ≥ 1 \(got 0\)/);
  });
});
