// Issue 23, item 4: a fleet's input holes, judged without Pulumi or an engine — unknown top-level
// fields, a fleet member and a ProcessingElement of one peId / state volume, maxUnavailable bounds.
import { afterEach, describe, expect, it } from "vitest";
import { SpecError, parseProcessingElement } from "../../../src/schema/processingElement";
import { parseGroup, unknownGroupFields, withGroupFieldsChecked } from "../../../src/schema/group";
import { declareFleetInProgram, declareInProgram, forgetDeclaredPes } from "../../../src/schema/uniqueness";
import { validateProcessingElementFleet } from "../../../components/processingElementFleet";
import { validateProcessingElementGroup } from "../../../components/processingElementGroup";

const template = { image: "reseat-demo-workload:v1", network: "host", env: { PORT: "{{ordinal + 18300}}" } };

function problemsOf(run: () => unknown): { field: string; expected: string }[] {
  try {
    run();
  } catch (error) {
    if (error instanceof SpecError) return error.problems;
    throw error;
  }
  throw new Error("expected a SpecError");
}

describe("unknown fields at a fleet's or group's top level", () => {
  it("a fleet refuses a misspelled top-level field, naming it as inside template and rollout", () => {
    const problems = problemsOf(() => validateProcessingElementFleet("orders", { replicas: 2, template, rolout: { maxUnavailable: 2 } }));
    expect(problems).toEqual([{ field: "rolout", expected: expect.stringContaining("unknown field") }]);
  });

  it("lists the unknown field with the template's problems, in one error", () => {
    const problems = problemsOf(() => validateProcessingElementFleet("orders", { replicas: 2, template: { ...template, imgae: "x" }, replica: 3 }));
    expect(problems.map((p) => p.field).sort()).toEqual(["replica", "template.imgae"]);
  });

  it("a group refuses one too (its spec is strict at the top level)", () => {
    expect(problemsOf(() => validateProcessingElementGroup("orders", { replicas: 2, template, partition: 1 }))).toEqual([
      { field: "partition", expected: expect.stringContaining("unknown field") },
    ]);
  });

  it("the known fields pass; a non-object is left to the spec's own checks", () => {
    expect(unknownGroupFields({ name: "a", replicas: 1, template: {}, rollout: {} })).toEqual([]);
    expect(unknownGroupFields(undefined)).toEqual([]);
    expect(withGroupFieldsChecked({ replicas: 1 }, "fleet", () => 7)).toBe(7);
  });
});

describe("maxUnavailable bounds", () => {
  const group = (replicas: number, maxUnavailable: unknown) => () => parseGroup({ name: "g", replicas, template, rollout: { maxUnavailable } });

  it("a count above replicas is refused with the bounds, not clamped", () => {
    const [problem] = problemsOf(group(2, 5));
    expect(problem!.field).toBe("rollout.maxUnavailable");
    expect(problem!.expected).toContain("expected at most replicas (2) members, got 5");
    expect(problem!.expected).toContain('from 1 to replicas, or a percentage of replicas from "1%" to "100%"');
    expect(problem!.expected).toContain("here 1 to 2");
  });

  it('"150%" and "0%" are refused saying the bounds, not suggesting "25%"', () => {
    for (const value of ["150%", "0%", "12.5%", "a lot"]) {
      const [problem] = problemsOf(group(4, value));
      expect(problem!.field).toBe("rollout.maxUnavailable");
      expect(problem!.expected).toContain('"1%" to "100%"');
      expect(problem!.expected).not.toContain("25%");
    }
    expect(problemsOf(group(4, 0))[0]!.expected).toMatch(/at least 1 member.*from 1 to replicas/);
  });

  it("the bounds themselves pass; replicas 0 keeps any count (nothing rolls; the scale back up uses it)", () => {
    expect(parseGroup({ name: "g", replicas: 4, template, rollout: { maxUnavailable: 4 } }).rollout.maxUnavailable).toBe(4);
    expect(parseGroup({ name: "g", replicas: 4, template, rollout: { maxUnavailable: "100%" } }).rollout.maxUnavailable).toBe(4);
    expect(parseGroup({ name: "g", replicas: 4, template, rollout: { maxUnavailable: "1%" } }).rollout.maxUnavailable).toBe(1);
    expect(parseGroup({ name: "g", replicas: 0, template, rollout: { maxUnavailable: 3 } }).replicas).toBe(0);
  });
});

describe("a fleet's members and the program's PEs", () => {
  afterEach(() => forgetDeclaredPes());
  const members = (name: string, replicas: number) => parseGroup({ name, replicas, template }).members;
  const pe = (peId: string, extra: Record<string, unknown> = {}) => parseProcessingElement({ peId, image: "reseat-demo-workload:v1", ...extra });

  it("a PE declared after a fleet, with a member's peId: refused naming its peId and volume, and the member", () => {
    expect(declareFleetInProgram("orders", members("orders", 2))).toEqual([]);
    const problems = declareInProgram({ subject: '"orders-1"', spec: pe("orders-1") });
    expect(problems).toEqual([
      { field: '"orders-1".peId', expected: 'expected a peId unique in the program; "orders-1" is already used by fleet "orders" member orders-1' },
      {
        field: '"orders-1".volume.name',
        expected: expect.stringContaining('"reseat-orders-1-state" is already the state volume of fleet "orders" member orders-1 (one writer per volume)'),
      },
    ]);
  });

  it("a fleet declared after the PE: refused naming the fleet's own fields (name, template.volume.name)", () => {
    expect(declareInProgram({ subject: '"orders-1"', spec: pe("orders-1") })).toEqual([]);
    const problems = declareFleetInProgram("orders", members("orders", 2));
    expect(problems).toEqual([
      { field: "name", expected: 'member orders-1: expected a peId unique in the program; "orders-1" is already used by "orders-1"' },
      { field: "template.volume.name", expected: expect.stringContaining('member orders-1: expected a state volume of its own; "reseat-orders-1-state"') },
    ]);
  });

  it("a PE on a member's volume under another peId is refused too; a refused fleet declares none of its members", () => {
    expect(declareInProgram({ subject: '"audit"', spec: pe("audit", { volume: { name: "reseat-orders-0-state" } }) })).toEqual([]);
    expect(declareFleetInProgram("orders", members("orders", 2)).map((p) => p.field)).toEqual(["template.volume.name"]);
    // Nothing of the refused fleet was recorded: a PE "orders-1" alone is fine.
    expect(declareInProgram({ subject: '"orders-1"', spec: pe("orders-1") })).toEqual([]);
  });

  it("two fleets and a PE with distinct peIds and volumes pass", () => {
    expect(declareFleetInProgram("orders", members("orders", 2))).toEqual([]);
    expect(declareFleetInProgram("billing", members("billing", 2))).toEqual([]);
    expect(declareInProgram({ subject: '"orders-2"', spec: pe("orders-2") })).toEqual([]);
  });
});
