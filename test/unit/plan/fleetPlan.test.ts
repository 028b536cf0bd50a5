import { describe, expect, it } from "vitest";
import { FleetChecked, parseFleet, planFleetDiff, planFleetMembers, removedMembers } from "../../../src/plan/fleetPlan";
import { SpecError } from "../../../src/schema/processingElement";

const template = {
  image: "app:v1",
  network: "host",
  env: { PORT: "{{ordinal + 9000}}" },
  readiness: { httpGet: { port: "{{ordinal + 9000}}", path: "/healthz" } },
};

function fleet(overrides: Partial<FleetChecked> = {}, templateOverrides: Record<string, unknown> = {}): FleetChecked {
  const t = { ...template, ...templateOverrides };
  return {
    name: "f",
    replicas: 4,
    template: t,
    rollout: { maxUnavailable: 1, partition: 0 },
    project: "proj",
    stack: "dev",
    engine: { kind: "docker" },
    imageIds: { [t.image as string]: `sha256:${"1".repeat(64)}` },
    ...overrides,
  };
}

function problemsOf(run: () => unknown): { field: string; expected: string }[] {
  try {
    run();
  } catch (error) {
    if (error instanceof SpecError) return error.problems;
    throw error;
  }
  return [];
}

describe("parseFleet", () => {
  it("takes a group spec on Docker", () => {
    const parsed = parseFleet(fleet());
    expect(parsed.members.map((m) => m.peId)).toEqual(["f-0", "f-1", "f-2", "f-3"]);
    expect(parsed.engine).toEqual({ kind: "docker" });
  });

  it("refuses what a fleet does not do, naming each field", () => {
    const fields = problemsOf(() => parseFleet(fleet({}, { persistentStore: { kind: "postgres", host: "db", database: "d", user: "u", password: "p" } }))).map(
      (p) => p.field,
    );
    expect(fields).toEqual(["template.persistentStore.kind"]);
    const onEngines = problemsOf(() => parseFleet(fleet({}, { docker: { host: "tcp://10.0.0.{{ordinal}}:2375" } })));
    expect(onEngines.map((p) => p.field)).toEqual(["template.docker.host"]);
  });
});

describe("planFleetMembers", () => {
  it("each member: its owner, its own volume, the resolved image; held below the partition", () => {
    const { members, rollout } = planFleetMembers(fleet({ rollout: { maxUnavailable: 2, partition: 2 } }));
    expect(members.map((m) => [m.peId, m.desired.owner, m.volume.name, m.held])).toEqual([
      ["f-0", "proj/dev/f-0", "reseat-f-0-state", true],
      ["f-1", "proj/dev/f-1", "reseat-f-1-state", true],
      ["f-2", "proj/dev/f-2", "reseat-f-2-state", false],
      ["f-3", "proj/dev/f-3", "reseat-f-3-state", false],
    ]);
    expect(members[3]!.desired.env).toEqual({ PORT: "9003" });
    expect(members.every((m) => m.desired.imageId === `sha256:${"1".repeat(64)}`)).toBe(true);
    expect(rollout.chains).toEqual([
      [3, 1],
      [2, 0],
    ]);
  });

  it("marks the control file changed when only in-place settings change", () => {
    const olds = fleet();
    expect(planFleetMembers(fleet({}, { commitInterval: "7s" }), olds).members.every((m) => m.controlChanged)).toBe(true);
    expect(planFleetMembers(fleet(), olds).members.some((m) => m.controlChanged)).toBe(false);
  });

  it("refuses an image that check did not resolve", () => {
    expect(() => planFleetMembers(fleet({ imageIds: {} }))).toThrow(/image "app:v1" of member f-0 was not resolved/);
  });
});

describe("planFleetDiff", () => {
  it("a template change is an in-place update; the same spec is no change", () => {
    expect(planFleetDiff(fleet(), fleet()).changes).toBe(false);
    const next = fleet({ imageIds: { "app:v2": `sha256:${"2".repeat(64)}` } }, { image: "app:v2" });
    expect(planFleetDiff(fleet(), next)).toEqual({ changes: true, changed: ["template", "imageIds"] });
  });

  it("members left behind by a stopped rollout, or running nothing, are rolled again", () => {
    const member = (ordinal: number, updated = true) => ({ ordinal, updated }) as never;
    expect(planFleetDiff({ ...fleet(), members: [0, 1, 2, 3].map((o) => member(o)) }, fleet()).changes).toBe(false);
    expect(planFleetDiff({ ...fleet(), members: [member(0), member(1, false), member(2), member(3)] }, fleet()).changed).toEqual(["members"]);
    expect(planFleetDiff({ ...fleet(), members: [member(0), member(2), member(3)] }, fleet()).changed).toEqual(["members"]);
  });

  it("refuses a rename (other PEs), naming the field", () => {
    expect(problemsOf(() => planFleetDiff(fleet(), fleet({ name: "g" })))[0]!.field).toBe("name");
  });
});

describe("removedMembers", () => {
  it("scaling 4 -> 2 removes members 2 and 3", () => {
    expect(removedMembers(fleet(), { name: "f", replicas: 2 }).map((m) => m.peId)).toEqual(["f-2", "f-3"]);
    expect(removedMembers(fleet(), { name: "f", replicas: 5 })).toEqual([]);
  });
});
