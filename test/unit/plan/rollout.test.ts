import { describe, expect, it } from "vitest";
import { classifyChange, fingerprint, planRollout, planScale, progressLines } from "../../../src/plan/rollout";

describe("planRollout", () => {
  it("rolls from the highest ordinal down; with maxUnavailable 1 each member waits for the one above it", () => {
    const plan = planRollout({ group: "orders", replicas: 5, maxUnavailable: 1, partition: 0 });
    expect(plan.order).toEqual([4, 3, 2, 1, 0]);
    expect(plan.members.map((m) => m.after)).toEqual([1, 2, 3, 4, undefined]);
    expect(plan.members.map((m) => m.name)).toEqual(["orders-0", "orders-1", "orders-2", "orders-3", "orders-4"]);
    expect(plan.members.map((m) => m.position)).toEqual([5, 4, 3, 2, 1]);
    expect(plan.chains).toEqual([[4, 3, 2, 1, 0]]);
    expect(plan.updated).toEqual([4, 3, 2, 1, 0]);
    expect(plan.held).toEqual([]);
  });

  it("maxUnavailable k makes k chains: ordinal o waits for o + k", () => {
    const plan = planRollout({ group: "g", replicas: 7, maxUnavailable: 3, partition: 0 });
    expect(plan.chains).toEqual([
      [6, 3, 0],
      [5, 2],
      [4, 1],
    ]);
    expect(plan.members[0]!.after).toBe(3);
    expect(plan.members[3]!.after).toBe(6);
    expect(plan.members[4]!.after).toBeUndefined();
    // At any point, the members without a finished predecessor (chain heads, or those whose
    // predecessor is done) number at most k: every chain runs one member at a time.
    const heads = plan.members.filter((m) => m.after === undefined).map((m) => m.ordinal);
    expect(heads.sort()).toEqual([4, 5, 6]);
  });

  it("maxUnavailable above replicas: every member is a chain head (all at once)", () => {
    const plan = planRollout({ group: "g", replicas: 3, maxUnavailable: 10, partition: 0 });
    expect(plan.members.every((m) => m.after === undefined)).toBe(true);
    expect(plan.chains).toHaveLength(3);
  });

  it("partition p: ordinals >= p take the template, the others are held", () => {
    const plan = planRollout({ group: "g", replicas: 5, maxUnavailable: 1, partition: 3 });
    expect(plan.updated).toEqual([4, 3]);
    expect(plan.held).toEqual([2, 1, 0]);
    expect(plan.members.map((m) => m.track)).toEqual(["held", "held", "held", "update", "update"]);
  });

  it("partition above replicas holds every member; zero replicas plans nothing", () => {
    expect(planRollout({ group: "g", replicas: 2, maxUnavailable: 1, partition: 9 }).updated).toEqual([]);
    const empty = planRollout({ group: "g", replicas: 0, maxUnavailable: 1, partition: 0 });
    expect(empty.order).toEqual([]);
    expect(empty.chains).toEqual([]);
  });
});

describe("planScale", () => {
  it("adds and removes only the members beyond the smaller size", () => {
    expect(planScale([0, 1, 2, 3, 4], 7)).toEqual({ added: [5, 6], removed: [], kept: [0, 1, 2, 3, 4] });
    expect(planScale([0, 1, 2, 3, 4, 5, 6], 4)).toEqual({ added: [], removed: [4, 5, 6], kept: [0, 1, 2, 3] });
    expect(planScale([], 2)).toEqual({ added: [0, 1], removed: [], kept: [] });
  });
});

describe("fingerprint and classifyChange", () => {
  const base = {
    peId: "g-0",
    volumeName: "reseat-g-0-state",
    imageRef: "app:v1",
    imageId: "sha256:aaa",
    env: { PORT: "1" },
    command: undefined,
    stop: { signal: "SIGTERM", graceSeconds: 5 },
    commitIntervalMs: 5000,
    store: { kind: "none" },
  };

  it("ignores identity fields, key order and undefined values", () => {
    const a = fingerprint(base);
    const b = fingerprint({ ...base, peId: "g-1", volumeName: "x", imageId: "sha256:bbb", stop: { graceSeconds: 5, signal: "SIGTERM" } });
    const { command: _c, ...withoutCommand } = base;
    expect(b).toEqual(a);
    expect(fingerprint(withoutCommand)).toEqual(a);
    expect(a.image).toBe("app:v1");
  });

  it("leaves a store password out", () => {
    const pg = { kind: "postgres", host: "db", password: "one" };
    expect(fingerprint({ ...base, store: pg })).toEqual(fingerprint({ ...base, store: { ...pg, password: "two" } }));
  });

  it("an image or env change is a replacement, a commit interval change an in-place update", () => {
    const before = fingerprint(base);
    expect(classifyChange(before, fingerprint({ ...base, imageRef: "app:v2" }), "update")).toBe("replace");
    expect(classifyChange(before, fingerprint({ ...base, env: { PORT: "2" } }), "update")).toBe("replace");
    expect(classifyChange(before, fingerprint({ ...base, commitIntervalMs: 7000 }), "update")).toBe("update");
    expect(classifyChange(before, fingerprint(base), "update")).toBe("same");
    expect(classifyChange(undefined, fingerprint(base), "update")).toBe("create");
  });

  it("a held member that would change is held; one that would not is the same", () => {
    const before = fingerprint(base);
    expect(classifyChange(before, fingerprint({ ...base, imageRef: "app:v2" }), "held")).toBe("held");
    expect(classifyChange(before, before, "held")).toBe("same");
  });
});

describe("progressLines", () => {
  const v1 = (o: number) => fingerprint({ imageRef: "app:v1", env: { PORT: String(o) } });
  const v2 = (o: number) => fingerprint({ imageRef: "app:v2", env: { PORT: String(o) } });

  it("numbers the changing members in rollout order: replacing member g-4 (1 of 2)", () => {
    const plan = planRollout({ group: "g", replicas: 5, maxUnavailable: 1, partition: 3 });
    const previous = new Map([0, 1, 2, 3, 4].map((o) => [o, v1(o)]));
    const lines = progressLines(plan, [0, 1, 2, 3, 4].map(v2), previous, 3);
    expect(lines.map((l) => l.message)).toEqual([
      "replacing member g-4 (1 of 2): image app:v1 -> app:v2",
      "replacing member g-3 (2 of 2): image app:v1 -> app:v2",
      "holding member g-2 at its deployed spec (ordinal < partition 3)",
      "holding member g-1 at its deployed spec (ordinal < partition 3)",
      "holding member g-0 at its deployed spec (ordinal < partition 3)",
    ]);
  });

  it("says nothing for unchanged members, and announces new ones as created", () => {
    const plan = planRollout({ group: "g", replicas: 7, maxUnavailable: 1, partition: 0 });
    const previous = new Map([0, 1, 2, 3, 4].map((o) => [o, v1(o)]));
    const lines = progressLines(plan, [0, 1, 2, 3, 4, 5, 6].map(v1), previous, 0);
    expect(lines.map((l) => l.message)).toEqual(["creating member g-6 (1 of 2)", "creating member g-5 (2 of 2)"]);
  });

  it("without the previous deployment, announces every updating member as rolling", () => {
    const plan = planRollout({ group: "g", replicas: 3, maxUnavailable: 1, partition: 1 });
    const lines = progressLines(plan, [0, 1, 2].map(v2), undefined, 1);
    expect(lines.map((l) => l.message)).toEqual([
      "rolling member g-2 (1 of 2): replaced if its spec changed",
      "rolling member g-1 (2 of 2): replaced if its spec changed",
    ]);
  });
});
