import { describe, expect, it } from "vitest";
import { FakeBackend } from "../../../src/backend/fake/fakeBackend";
import { FleetMemberPlan } from "../../../src/plan/fleetPlan";
import { planRollout } from "../../../src/plan/rollout";
import { rollFleet, describeFailedRollout } from "../../../src/replacement/fleetRollout";
import { desiredFor } from "./fixtures";

const N = 5;

function members(image: (ordinal: number) => string, partition = 0): FleetMemberPlan[] {
  return Array.from({ length: N }, (_, ordinal) => {
    const desired = desiredFor(`f-${ordinal}`, { image: image(ordinal) });
    return {
      ordinal,
      peId: desired.peId,
      desired,
      volume: { name: desired.volumeName, driver: "local", peId: desired.peId, owner: desired.owner! },
      held: ordinal < partition,
      controlChanged: false,
    };
  });
}

const plan = (k: number, partition = 0) => planRollout({ group: "f", replicas: N, maxUnavailable: k, partition });
const startedPeIds = (engine: FakeBackend) =>
  engine.calls.filter((c) => c.startsWith("start ")).map((c) => engine.executables.get(c.split(" ")[1]!)!.desired.peId);
const running = (engine: FakeBackend, peId: string) => [...engine.executables.values()].filter((e) => e.desired.peId === peId && e.state === "running");

describe("rollFleet", () => {
  it("creates every member on its own volume, highest ordinal first, one at a time with maxUnavailable 1", async () => {
    const engine = new FakeBackend();
    const outcomes = await rollFleet(
      engine,
      plan(1),
      members(() => "app:1"),
      { holder: "test" },
    );
    expect(outcomes.map((o) => o.kind)).toEqual(["done", "done", "done", "done", "done"]);
    expect(startedPeIds(engine)).toEqual(["f-4", "f-3", "f-2", "f-1", "f-0"]);
    expect([...engine.volumes.keys()].filter((v) => v.startsWith("reseat-f-")).sort()).toEqual([
      "reseat-f-0-state",
      "reseat-f-1-state",
      "reseat-f-2-state",
      "reseat-f-3-state",
      "reseat-f-4-state",
    ]);
    for (const [volume, most] of engine.maxRunningOnVolume) if (volume.startsWith("reseat-f-")) expect(most, volume).toBe(1);
  });

  it("is level-triggered: members already running their spec are kept, nothing new starts", async () => {
    const engine = new FakeBackend();
    await rollFleet(
      engine,
      plan(2),
      members(() => "app:1"),
      { holder: "test" },
    );
    const before = engine.calls.length;
    const outcomes = await rollFleet(
      engine,
      plan(2),
      members(() => "app:1"),
      { holder: "test" },
    );
    expect(outcomes.every((o) => o.kind === "done" && o.result.adopted)).toBe(true);
    expect(engine.calls.slice(before).filter((c) => /^(prepare|start|stop|remove) /.test(c))).toEqual([]);
  });

  it("the first failure stops the rollout: the failed member is reverted, members not begun keep what they run", async () => {
    const engine = new FakeBackend();
    await rollFleet(
      engine,
      plan(1),
      members(() => "app:1"),
      { holder: "test" },
    );
    const kept = new Map([0, 1].map((o) => [o, running(engine, `f-${o}`)[0]!.id]));
    engine.faults.crashingImages.add("app:2-broken");
    const next = members((o) => (o === 2 ? "app:2-broken" : "app:2"));
    const outcomes = await rollFleet(engine, plan(1), next, { holder: "test" });
    expect(outcomes.map((o) => o.kind)).toEqual(["not-begun", "not-begun", "failed", "done", "done"]);
    for (const o of [0, 1]) expect(running(engine, `f-${o}`).map((e) => e.id)).toEqual([kept.get(o)]);
    // Member 1 was prepared ahead while member 2 was in its gap: its prepared executable is gone again.
    expect(engine.calls).toContain(`prepare reseat-f-1-g2`);
    expect([...engine.executables.values()].filter((e) => e.desired.peId === "f-1").map((e) => e.id)).toEqual([kept.get(1)]);
    expect(running(engine, "f-2").map((e) => e.desired.imageRef)).toEqual(["app:1"]);
    for (const o of [3, 4]) expect(running(engine, `f-${o}`).map((e) => e.desired.imageRef)).toEqual(["app:2"]);
    const message = describeFailedRollout("f", next, outcomes, plan(1).order);
    expect(message).toContain('fleet "f": the rollout stopped at f-2.');
    expect(message).toContain("not begun (running what they ran before): f-1, f-0");
  });

  it("prepares the next member while the one before is in its gap, and stops it only once that one is ready", async () => {
    const engine = new FakeBackend();
    await rollFleet(
      engine,
      plan(1),
      members(() => "app:1"),
      { holder: "test" },
    );
    const idOf = (peId: string, generation: number) =>
      [...engine.executables.values()].find((e) => e.desired.peId === peId && e.name === `reseat-${peId}-g${generation}`)?.id;
    const old = new Map([4, 3, 2, 1, 0].map((o) => [o, idOf(`f-${o}`, 1)!]));
    const from = engine.calls.length;
    // Member 2 keeps its spec (as a member whose spec did not change): it must not let member 1 stop
    // before member 3 is ready.
    await rollFleet(
      engine,
      plan(1),
      members((o) => (o === 2 ? "app:1" : "app:2")),
      { holder: "test" },
    );
    const calls = engine.calls.slice(from);
    const at = (call: string) => calls.indexOf(call);
    expect(at(`prepare reseat-f-3-g2`)).toBeLessThan(at(`waitReady ${idOf("f-4", 2)}`)); // prepared ahead
    expect(at(`stop ${old.get(3)}`)).toBeGreaterThan(at(`waitReady ${idOf("f-4", 2)}`)); // stopped after ready
    expect(at(`stop ${old.get(1)}`)).toBeGreaterThan(at(`waitReady ${idOf("f-3", 2)}`));
    expect(at(`stop ${old.get(0)}`)).toBeGreaterThan(at(`waitReady ${idOf("f-1", 2)}`));
    expect(calls.filter((c) => c === `stop ${old.get(2)}`)).toEqual([]);
  });

  it("held members (below the partition) that run are not touched", async () => {
    const engine = new FakeBackend();
    await rollFleet(
      engine,
      plan(1),
      members(() => "app:1"),
      { holder: "test" },
    );
    const outcomes = await rollFleet(
      engine,
      plan(1, 3),
      members(() => "app:2", 3),
      { holder: "test" },
    );
    expect(outcomes.map((o) => o.kind)).toEqual(["held", "held", "held", "done", "done"]);
    for (const o of [0, 1, 2]) expect(running(engine, `f-${o}`).map((e) => e.desired.imageRef)).toEqual(["app:1"]);
  });
});
