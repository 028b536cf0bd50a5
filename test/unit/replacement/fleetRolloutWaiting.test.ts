// A fleet member whose volume's host cannot take a new executable (on Kubernetes: its claim's node gone,
// not Ready or cordoned) waits: left as it runs, never moved, while the other members roll.
import { describe, expect, it } from "vitest";
import { FakeBackend } from "../../../src/backend/fake/fakeBackend";
import { FleetMemberPlan } from "../../../src/plan/fleetPlan";
import { planRollout } from "../../../src/plan/rollout";
import { describeFailedRollout, rollFleet } from "../../../src/replacement/fleetRollout";
import { desiredFor } from "./fixtures";

const N = 4;

function members(image: string): FleetMemberPlan[] {
  return Array.from({ length: N }, (_, ordinal) => {
    const desired = desiredFor(`w-${ordinal}`, { image });
    return {
      ordinal,
      peId: desired.peId,
      desired,
      volume: { name: desired.volumeName, driver: "local", peId: desired.peId, owner: desired.owner! },
      held: false,
      controlChanged: false,
    };
  });
}

const running = (engine: FakeBackend, peId: string) => [...engine.executables.values()].filter((e) => e.desired.peId === peId && e.state === "running");

describe("a member whose node is gone", () => {
  it("waits, untouched, while the members after it on its chain and the other chains roll", async () => {
    const engine = new FakeBackend();
    const plan = planRollout({ group: "w", replicas: N, maxUnavailable: 1, partition: 0 });
    await rollFleet(engine, plan, members("app:1"), { holder: "test" });
    const kept = running(engine, "w-2")[0]!.id;
    const gone = "node node2, which holds claim reseat-w-2-state, is gone";
    Object.assign(engine, { volumeHostUnavailable: async (volume: string) => (volume === "reseat-w-2-state" ? gone : undefined) });

    const next = members("app:2");
    const outcomes = await rollFleet(engine, plan, next, { holder: "test" });
    expect(outcomes.map((o) => o.kind)).toEqual(["done", "done", "waiting", "done"]);
    expect(running(engine, "w-2").map((e) => e.id)).toEqual([kept]);
    for (const o of [0, 1, 3]) expect(running(engine, `w-${o}`).map((e) => e.desired.imageRef)).toEqual(["app:2"]);
    const message = describeFailedRollout("w", next, outcomes, plan.order);
    expect(message).toContain('fleet "w": members wait for their node: w-2.');
    expect(message).toContain(`w-2 waits (left as it runs, never moved to another node): ${gone}`);
    expect(message).toContain("rolled (running the new spec): w-3, w-1, w-0");

    // The node is back: the next rollout rolls it, on its volume.
    Object.assign(engine, { volumeHostUnavailable: async () => undefined });
    const after = await rollFleet(engine, plan, next, { holder: "test" });
    expect(after.map((o) => o.kind)).toEqual(["done", "done", "done", "done"]);
    expect(running(engine, "w-2").map((e) => [e.desired.imageRef, e.desired.volumeName])).toEqual([["app:2", "reseat-w-2-state"]]);
  });
});
