// The failure controller's decisions on the fake engine: what it reseats, what it leaves alone, how it
// paces repeated failures and how it survives the engine going away.
import { describe, expect, it } from "vitest";
import { FakeBackend } from "../../../src/backend/fake/fakeBackend";
import { WatchEvent, watch } from "../../../src/controller/watch";
import { reseat, retire } from "../../../src/replacement/reseat";
import { desiredFor, engineWithVolume, until } from "../replacement/fixtures";

async function started(peIds: string[], backoff = { initial: "50ms", max: "400ms", resetAfter: "10s" }) {
  const desired = peIds.map((peId) => desiredFor(peId, { failureBackoff: backoff }));
  const backend = await engineWithVolume(...desired);
  for (const d of desired) await reseat(backend, d, { holder: "pulumi" });
  const events: WatchEvent[] = [];
  const watcher = await watch({ backend, onEvent: (e) => events.push(e), resyncMs: 50, reconnectMs: 10, leaseMs: 200 });
  return { backend, desired, events, watcher };
}

const reseated = (events: WatchEvent[], peId: string) => events.filter((e) => e.kind === "reseated" && e.peId === peId);

describe("watch() on the fake engine", () => {
  it("reseats a crashed executable on the kept volume, generation + 1", async () => {
    const { backend, events, watcher } = await started(["pe-a"]);
    backend.crash(backend.running("pe-a")[0]!.id);
    await until(() => reseated(events, "pe-a").length === 1, 5000, "a reseat");
    expect(backend.running("pe-a")).toMatchObject([{ generation: 2 }]);
    expect(backend.maxRunningOnVolume.get("reseat-pe-a-state")).toBe(1);
    await watcher.stop();
  });

  it("leaves alone a PE that `pulumi up` retired on purpose", async () => {
    const { backend, desired, events, watcher } = await started(["pe-a"]);
    await retire(backend, desired[0]!, "pulumi");
    await watcher.idle();
    // A few resyncs pass; nothing to reseat: no executable is left.
    const before = backend.calls.filter((c) => c === "listExecutables").length;
    await until(() => backend.calls.filter((c) => c === "listExecutables").length >= before + 3, 5000, "resyncs");
    expect(reseated(events, "pe-a")).toHaveLength(0);
    expect(backend.running("pe-a")).toHaveLength(0);
    await watcher.stop();
  });

  it("is level-triggered: a failure whose event was missed is found by the resync", async () => {
    const { backend, events, watcher } = await started(["pe-a"]);
    const e = backend.executables.get(backend.running("pe-a")[0]!.id)!;
    e.state = "exited"; // died without an event reaching us
    await until(() => reseated(events, "pe-a").length === 1, 5000, "the resync to reseat it");
    await watcher.stop();
  });

  it("backs off on consecutive failures and reports a crash loop", async () => {
    const { backend, events, watcher } = await started(["pe-a"]);
    for (let i = 0; i < 4; i++) {
      await until(() => backend.running("pe-a").length === 1, 5000, "a running executable");
      backend.crash(backend.running("pe-a")[0]!.id);
      await until(() => reseated(events, "pe-a").length === i + 1, 5000, `reseat ${i + 1}`);
    }
    const delays = events.filter((e) => e.kind === "backoff").map((e) => e.delayMs);
    expect(delays).toEqual([50, 100, 200]);
    expect(events.some((e) => e.kind === "crash-looping")).toBe(true);
    await watcher.stop();
  });

  it("survives the engine going away: does nothing meanwhile, then reseats what failed", async () => {
    const { backend, events, watcher } = await started(["pe-a", "pe-b"]);
    const a = backend.running("pe-a")[0]!.id;
    backend.disconnect();
    await until(() => events.some((e) => e.kind === "disconnected"), 5000, "the disconnect");
    // While the engine is away (or shutting down), failures are not acted on.
    const e = backend.executables.get(a)!;
    e.state = "exited";
    expect(reseated(events, "pe-a")).toHaveLength(0);
    backend.reconnect();
    await until(() => events.some((ev) => ev.kind === "reconnected"), 5000, "the reconnect");
    await until(() => reseated(events, "pe-a").length === 1, 5000, "the reseat after reconnecting");
    expect(reseated(events, "pe-b")).toHaveLength(0);
    // And it still hears events on the new subscription.
    backend.crash(backend.running("pe-b")[0]!.id);
    await until(() => reseated(events, "pe-b").length === 1, 5000, "a reseat heard on the new stream");
    await watcher.stop();
  });

  it("never acts while the engine shuts down: its own stops arrive on the open stream but are left alone", async () => {
    const { backend, events, watcher } = await started(["pe-a"]);
    await watcher.idle();
    backend.beginShutdown();
    const callsBefore = backend.calls.length;
    backend.crash(backend.running("pe-a")[0]!.id); // the engine stopping its container
    await until(() => events.some((e) => e.kind === "skipped" && e.peId === "pe-a" && /not taking new calls/.test(e.reason ?? "")), 5000, "the skip");
    expect(backend.calls.slice(callsBefore).filter((c) => !/^(ping|listExecutables|renewLease|identity)/.test(c))).toEqual([]);
    backend.disconnect();
    backend.reconnect();
    await until(() => reseated(events, "pe-a").length === 1, 5000, "the reseat once the engine is back");
    expect(backend.maxRunningOnVolume.get("reseat-pe-a-state")).toBe(1);
    await watcher.stop();
  });

  it("one controller per engine: a second waits as standby until the first stops", async () => {
    const { backend, watcher } = await started(["pe-a"]);
    const standbyEvents: WatchEvent[] = [];
    let secondStarted = false;
    const second = watch({ backend, onEvent: (e) => standbyEvents.push(e), resyncMs: 50, leaseMs: 200 }).then((w) => ((secondStarted = true), w));
    await until(() => standbyEvents.some((e) => e.kind === "standby"), 5000, "standby");
    expect(secondStarted).toBe(false);
    await watcher.stop();
    const w2 = await second;
    expect(standbyEvents.some((e) => e.kind === "watching")).toBe(true);
    backend.crash(backend.running("pe-a")[0]!.id);
    await until(() => reseated(standbyEvents, "pe-a").length === 1, 5000, "the standby to take over");
    await w2.stop();
  });
});
