// The controller's presence lease on the fake engine: lost while another holder keeps it, it is taken
// again by ONE re-acquisition at a time (never a pile of pollers), whose failures are handled, and its
// win leaks no second lease. Re-acquisitions are counted where they start: acquireLease is wrapped.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeBackend } from "../../../src/backend/fake/fakeBackend";
import { acquireLease, HeldLease } from "../../../src/lease/lease";
import { CONTROLLER_LEASE, WatchEvent, watch } from "../../../src/controller/watch";
import { reseat } from "../../../src/replacement/reseat";
import { desiredFor, engineWithVolume, until } from "../replacement/fixtures";

const acquisitions = vi.hoisted(() => ({ inFlight: 0, maxInFlight: 0, started: 0 }));

vi.mock("../../../src/lease/lease", async (importOriginal) => {
  const original = await importOriginal<typeof import("../../../src/lease/lease")>();
  return {
    ...original,
    acquireLease: async (...args: Parameters<typeof original.acquireLease>) => {
      if (args[1] !== "controller" || !args[2].endsWith(":controller")) return original.acquireLease(...args);
      acquisitions.started += 1;
      acquisitions.inFlight += 1;
      acquisitions.maxInFlight = Math.max(acquisitions.maxInFlight, acquisitions.inFlight);
      try {
        return await original.acquireLease(...args);
      } finally {
        acquisitions.inFlight -= 1;
      }
    },
  };
});

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeEach(() => {
  Object.assign(acquisitions, { inFlight: 0, maxInFlight: 0, started: 0 });
  unhandled.length = 0;
  process.on("unhandledRejection", onUnhandled);
});
afterEach(() => {
  process.off("unhandledRejection", onUnhandled);
});

describe("the controller's presence lease", () => {
  it("lost while another holder keeps it: one re-acquisition in flight across many ticks, failures handled, no leaked lease after it wins", async () => {
    const desired = desiredFor("pe-a");
    const backend = await engineWithVolume(desired);
    await reseat(backend, desired, { holder: "pulumi" });
    const events: WatchEvent[] = [];
    const watcher = await watch({ backend, onEvent: (e) => events.push(e), resyncMs: 20, reconnectMs: 10, leaseMs: 60 });
    expect(acquisitions.started).toBe(1); // the initial acquisition

    // Another holder takes the presence (ours removed, as a prune would) and keeps renewing it.
    const ours = backend.leases.get(CONTROLLER_LEASE)!;
    backend.leases.delete(CONTROLLER_LEASE);
    const other: HeldLease = await acquireLease(backend, CONTROLLER_LEASE, "elsewhere:1:other", { leaseMs: 60, waitMs: 1000 });
    // Two tries fail on the engine: each failure must be handled (logged, retried), not end the process.
    let tries = 0;
    backend.faults.beforeCall = (operation) => {
      if (operation === "tryAcquireLease" && [2, 4].includes(++tries)) throw new Error("engine hiccup");
    };

    // Many ticks pass while the other holder lives: several bounded re-acquisitions end (busy or failed).
    await until(() => events.filter((e) => e.kind === "presence-waiting").length >= 4, 30_000, "four re-acquisitions to end without winning");
    expect(acquisitions.maxInFlight).toBe(1);
    expect(events.filter((e) => e.kind === "presence-waiting").some((e) => e.error?.includes("engine hiccup"))).toBe(true);
    expect(events.filter((e) => e.kind === "presence-waiting").some((e) => e.error?.includes("is held by elsewhere:1:other"))).toBe(true);
    // Starts and ends alternate: never a second re-acquisition before the first ended.
    const sequence = events.filter((e) => e.kind.startsWith("presence-")).map((e) => (e.kind === "presence-lost" ? "start" : "end"));
    expect(sequence.every((step, i) => step === (i % 2 === 0 ? "start" : "end"))).toBe(true);

    // The other holder goes away: ours wins, once.
    backend.faults.beforeCall = undefined;
    await other.release();
    await until(() => events.some((e) => e.kind === "presence-regained"), 30_000, "the presence to be taken again");
    const won = backend.leases.get(CONTROLLER_LEASE)!;
    expect(won.holder).toBe(ours.holder);
    expect(won.token).not.toBe(ours.token);
    // Further ticks act again (resyncs list the engine) and start no other acquisition.
    const startedAtWin = acquisitions.started;
    const lists = backend.calls.filter((c) => c === "listExecutables").length;
    await until(() => backend.calls.filter((c) => c === "listExecutables").length >= lists + 5, 30_000, "five resyncs after the win");
    expect(acquisitions.started).toBe(startedAtWin);
    expect(acquisitions.maxInFlight).toBe(1);
    expect([...backend.leases.values()].filter((l) => l.name === CONTROLLER_LEASE)).toEqual([won]);
    expect(events.some((e) => e.kind === "presence-released")).toBe(false);

    await watcher.stop();
    expect(backend.leases.has(CONTROLLER_LEASE)).toBe(false); // released on stop: nothing leaked
    expect(unhandled).toEqual([]);
  });

  it("a re-acquisition that wins after the controller stopped releases the lease at once", async () => {
    const backend = new FakeBackend();
    const events: WatchEvent[] = [];
    const watcher = await watch({ backend, onEvent: (e) => events.push(e), resyncMs: 20, reconnectMs: 10, leaseMs: 60 });
    backend.leases.delete(CONTROLLER_LEASE);
    // The engine answers the re-acquisition only once the controller is stopping.
    let stopping!: () => void;
    const stopped = new Promise<void>((resolve) => (stopping = resolve));
    backend.faults.beforeCall = async (operation) => {
      if (operation === "tryAcquireLease") await stopped;
    };
    await until(() => events.some((e) => e.kind === "presence-lost"), 30_000, "the loss to be noticed");
    const stopDone = watcher.stop();
    stopping();
    await stopDone;
    expect(events.some((e) => e.kind === "presence-released")).toBe(true);
    expect(backend.leases.has(CONTROLLER_LEASE)).toBe(false);
    expect(acquisitions.maxInFlight).toBe(1);
    expect(unhandled).toEqual([]);
  });
});
