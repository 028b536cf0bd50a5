import { describe, expect, it } from "vitest";
import { SpecError } from "../../../src/schema/processingElement";
import { parseGroup, resolveMaxUnavailable } from "../../../src/schema/group";

const template = {
  image: "reseat-demo-workload:v1",
  network: "host",
  env: { PORT: "{{ordinal + 18300}}", SHARD: "{{peId}}" },
  readiness: { httpGet: { port: "{{ordinal + 18300}}", path: "/healthz" } },
};

function problemsOf(input: unknown): { field: string; expected: string }[] {
  try {
    parseGroup(input);
  } catch (error) {
    if (error instanceof SpecError) return error.problems;
    throw error;
  }
  throw new Error("expected the group to be rejected");
}

describe("parseGroup", () => {
  it("expands members <group>-<ordinal> with placeholders substituted; numeric fields become numbers", () => {
    const group = parseGroup({ name: "orders", replicas: 3, template });
    expect(group.members.map((m) => m.peId)).toEqual(["orders-0", "orders-1", "orders-2"]);
    expect(group.members[2]!.spec.env).toEqual({ PORT: "18302", SHARD: "orders-2" });
    expect(group.members[2]!.spec.readiness?.httpGet?.port).toBe(18302);
    expect(group.rollout).toEqual({ maxUnavailable: 1, maxUnavailableInput: 1, partition: 0 });
    expect(group.members[0]!.input.peId).toBe("orders-0");
  });

  it("supports {{ordinal - N}} and {{group}}, and leaves other strings alone", () => {
    const group = parseGroup({ name: "g", replicas: 2, template: { image: "app:v1", env: { A: "{{ordinal - 1}}", B: "{{group}}/x", C: "plain" } } });
    expect(group.members[0]!.spec.env).toEqual({ A: "-1", B: "g/x", C: "plain" });
  });

  it("resolves maxUnavailable percentages like Kubernetes: rounded down, at least 1", () => {
    expect(resolveMaxUnavailable("25%", 10)).toBe(2);
    expect(resolveMaxUnavailable("10%", 5)).toBe(1);
    expect(resolveMaxUnavailable(3, 100)).toBe(3);
    expect(parseGroup({ name: "g", replicas: 8, template: { image: "app:v1" }, rollout: { maxUnavailable: "50%" } }).rollout.maxUnavailable).toBe(4);
  });

  it("reports template problems with their path, once, naming the members when only some are affected", () => {
    const problems = problemsOf({
      name: "g",
      replicas: 3,
      template: { ...template, commitInterval: "soon", env: { PORT: "{{ordinal + 65534}}" }, readiness: { httpGet: { port: "{{ordinal + 65534}}" } } },
    });
    expect(problems).toContainEqual({ field: "template.commitInterval", expected: expect.stringContaining("duration") });
    expect(problems).toContainEqual({ field: "template.readiness.httpGet.port", expected: "expected a port from 1 to 65535 (member 2)" });
    expect(problems.filter((p) => p.field === "template.commitInterval")).toHaveLength(1);
  });

  it("rejects unknown placeholders, peId in the template, unknown fields and bad rollout values", () => {
    expect(problemsOf({ name: "g", replicas: 1, template: { image: "app:v1", env: { X: "{{shard}}" } } })).toEqual([
      { field: "template.env.X", expected: expect.stringContaining('unknown placeholder "{{shard}}"') },
    ]);
    expect(problemsOf({ name: "g", replicas: 1, template: { image: "app:v1", peId: "x" } })).toEqual([
      { field: "template.peId", expected: expect.stringContaining("set by the group") },
    ]);
    expect(problemsOf({ name: "g", replicas: 1, template: { image: "app:v1" }, rolout: {} })).toEqual([
      { field: "rolout", expected: expect.stringContaining("unknown field") },
    ]);
    const rollout = problemsOf({ name: "g", replicas: 1, template: { image: "app:v1" }, rollout: { maxUnavailable: 0, partition: -1 } });
    expect(rollout.map((p) => p.field).sort()).toEqual(["rollout.maxUnavailable", "rollout.partition"]);
  });

  it("reports the group's own fields and the template's together", () => {
    const problems = problemsOf({ name: "g", replicas: 2, template: { image: "UPPER", volume: { name: "x" } }, rollout: { partition: -1 } });
    expect(problems.map((p) => p.field).sort()).toEqual(["rollout.partition", "template.image"]);
  });

  it("says required fields are required", () => {
    expect(problemsOf({ name: "g" })).toEqual([
      { field: "replicas", expected: "required (expected a whole number of members)" },
      { field: "template", expected: expect.stringMatching(/^required/) },
    ]);
  });

  it("refuses members that would share a volume or a host-network readiness port", () => {
    expect(problemsOf({ name: "g", replicas: 2, template: { image: "app:v1", volume: { name: "shared" } } })).toEqual([
      { field: "template.volume.name", expected: expect.stringContaining('members 0 and 1 both use "shared"') },
    ]);
    expect(problemsOf({ name: "g", replicas: 2, template: { image: "app:v1", network: "host", readiness: { httpGet: { port: 8080 } } } })).toEqual([
      { field: "template.readiness.httpGet.port", expected: expect.stringContaining("members 0 and 1 both use 8080") },
    ]);
    expect(
      parseGroup({ name: "g", replicas: 2, template: { image: "app:v1", volume: { name: "data-{{ordinal}}" } } }).members.map((m) => m.spec.volume.name),
    ).toEqual(["data-0", "data-1"]);
  });

  it("keeps member peIds within 40 characters", () => {
    const name = "a".repeat(38);
    expect(problemsOf({ name, replicas: 11, template: { image: "app:v1" } })).toEqual([
      { field: "name", expected: expect.stringContaining("at most 37 characters") },
    ]);
    expect(parseGroup({ name, replicas: 10, template: { image: "app:v1" } }).members[9]!.peId).toHaveLength(40);
  });

  it("validates the template even with zero replicas", () => {
    expect(problemsOf({ name: "g", replicas: 0, template: { image: "UPPER" } }).map((p) => p.field)).toEqual(["template.image"]);
    expect(parseGroup({ name: "g", replicas: 0, template: { image: "app:v1" } }).members).toEqual([]);
  });

  it("the message reads like a PE spec error, subject the group", () => {
    expect(() => parseGroup({ name: "g", replicas: -1, template: { image: "app:v1" } })).toThrow(
      /invalid processing element group "g":\n {2}- replicas: expected 0 or more members/,
    );
  });
});
