// The lease behind the PE lock and the controller's presence, on the fake engine: liveness is "the
// renewal count moves", judged on the observer's own clock.
import { describe, expect, it } from "vitest";
import { FakeBackend } from "../../../src/backend/fake/fakeBackend";
import { LeaseBusyError, LeaseLostError, acquireLease } from "../../../src/lease/lease";
import { reseat } from "../../../src/replacement/reseat";
import { desiredFor, engineWithVolume, until } from "./fixtures";

describe("acquireLease", () => {
  it("is exclusive: a second taker waits for the release, then takes it", async () => {
    const backend = new FakeBackend();
    const first = await acquireLease(backend, "pe-x", "one", { leaseMs: 200, waitMs: 5000 });
    let secondHas = false;
    const second = acquireLease(backend, "pe-x", "two", { leaseMs: 200, waitMs: 5000 }).then((l) => ((secondHas = true), l));
    await until(() => backend.calls.filter((c) => c === "tryAcquireLease pe-x").length >= 3, 5000, "the second taker to retry");
    expect(secondHas).toBe(false);
    await first.release();
    const lease = await second;
    expect(lease.record.holder).toBe("two");
    await lease.release();
    expect(backend.leases.size).toBe(0);
  });

  it("breaks the lease of a holder that stopped renewing (crashed), after one lease of standstill", async () => {
    const backend = new FakeBackend();
    // A holder that took the lease and died: nobody renews it.
    await backend.tryAcquireLease("pe-x", "dead-holder", 100);
    const lease = await acquireLease(backend, "pe-x", "next", { leaseMs: 100, waitMs: 5000, pollMs: 10 });
    expect(lease.record.holder).toBe("next");
    await lease.release();
  });

  it("never breaks a live holder that keeps renewing, whatever its host or clock", async () => {
    const backend = new FakeBackend();
    const live = await acquireLease(backend, "pe-x", "live", { leaseMs: 60, waitMs: 5000, renewEveryMs: 10 });
    await expect(acquireLease(backend, "pe-x", "waiter", { leaseMs: 60, waitMs: 400, pollMs: 10 })).rejects.toBeInstanceOf(LeaseBusyError);
    expect(live.lost).toBe(false);
    expect(backend.leases.get("pe-x")?.holder).toBe("live");
    await live.release();
  });

  it("takes back at once a holding of its own whose release failed (the engine was going away)", async () => {
    const backend = new FakeBackend();
    const first = await acquireLease(backend, "pe-x", "me", { leaseMs: 60_000, waitMs: 1000 });
    backend.faults.beforeCall = (operation) => {
      if (operation === "releaseLease") throw new Error("engine shutting down");
    };
    await expect(first.release()).rejects.toThrow("engine shutting down");
    backend.faults.beforeCall = undefined;
    expect(backend.leases.get("pe-x")?.holder).toBe("me"); // still on the engine, renewals stopped
    // A whole lease (60 s) has not passed: only knowing the holding is its own lets the process go on.
    const again = await acquireLease(backend, "pe-x", "me", { leaseMs: 60_000, waitMs: 1000, pollMs: 10 });
    expect(again.record.token).not.toBe(first.record.token);
    await again.release();
  });

  it("never takes back someone else's holding early", async () => {
    const backend = new FakeBackend();
    await backend.tryAcquireLease("pe-x", "other", 60_000);
    await expect(acquireLease(backend, "pe-x", "me", { leaseMs: 60_000, waitMs: 200, pollMs: 10 })).rejects.toBeInstanceOf(LeaseBusyError);
  });

  it("detects a lease removed behind its back (e.g. `docker container prune`)", async () => {
    const backend = new FakeBackend();
    const lease = await acquireLease(backend, "pe-x", "holder", { leaseMs: 30, waitMs: 1000, renewEveryMs: 5 });
    backend.leases.delete("pe-x");
    await until(() => lease.lost, 2000, "the holder to notice");
    expect(() => lease.assertHeld()).toThrow(LeaseLostError);
    await lease.release();
  });

  it("a replacement whose PE lock is lost mid-way stops before starting anything", async () => {
    const desired = desiredFor("pe-a");
    const backend = await engineWithVolume(desired);
    backend.faults.beforeCall = (operation) => {
      if (operation === "prepare") backend.leases.delete("pe-pe-a"); // pruned while the routine works
    };
    await expect(reseat(backend, desired, { holder: "test" })).rejects.toBeInstanceOf(LeaseLostError);
    expect(backend.running("pe-a")).toHaveLength(0);
    expect(backend.calls.some((c) => c.startsWith("start"))).toBe(false);
  });
});
