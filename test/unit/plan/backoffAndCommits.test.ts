import { describe, expect, it } from "vitest";
import { backoffDelay, nextFailureCount } from "../../../src/plan/backoff";
import { commitOutputs, restoreFailure } from "../../../src/plan/commitStatus";
import { formatStatusTable, type PeStatus } from "../../../src/controller/status";
import { needsReseat } from "../../../src/controller/watch";
import type { ObservedExecutable } from "../../../src/backend/backend";

const backoff = { initialMs: 200, maxMs: 800, resetAfterMs: 60_000 };

describe("failure backoff", () => {
  it("reseats the first failure at once, then doubles up to the cap", () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, backoff))).toEqual([0, 200, 400, 800, 800, 800]);
  });
  it("counts failures as consecutive unless the PE ran for the reset window", () => {
    expect(nextFailureCount(4, 1_000, 2_000, backoff)).toBe(5);
    expect(nextFailureCount(4, 1_000, 61_000, backoff)).toBe(1);
    expect(nextFailureCount(0, undefined, 5, backoff)).toBe(1);
  });
});

describe("commit outputs", () => {
  const status = {
    generation: 3,
    resumedFrom: "local" as const,
    resumedSeq: 10,
    seq: 15,
    commitIntervalMs: 1000,
    lastCommit: { seq: 12, at: "2026-01-01T00:00:00.000Z", bytes: 100 },
    lastCommitError: null,
    updatedAt: "2026-01-01T00:00:01.000Z",
  };
  it("lag is the age of the last commit while writes wait for the store", () => {
    const out = commitOutputs(status, 3, new Date("2026-01-01T00:00:05.000Z"));
    expect(out.commitLagMs).toBe(5000);
    expect(out.lastCommit).toEqual({ seq: 12, at: "2026-01-01T00:00:00.000Z", bytes: 100 });
    expect(out.resumedFrom).toBe("local");
  });
  it("lag is 0 when the last commit holds every write", () => {
    expect(commitOutputs({ ...status, seq: 12 }, 3, new Date("2026-01-01T01:00:00.000Z")).commitLagMs).toBe(0);
  });
  it("a status left by an older generation says nothing about how this one resumed", () => {
    const out = commitOutputs(status, 4, new Date());
    expect(out.resumedFrom).toBeNull();
    expect(out.lastCommit?.seq).toBe(12);
  });
  it("no status, no figures", () => expect(commitOutputs(undefined, 1, new Date()).commitLagMs).toBeNull());
});

describe("restore-failed", () => {
  const refused = {
    generation: 5,
    resumedFrom: null,
    resumedSeq: 0,
    seq: 0,
    commitIntervalMs: 1000,
    lastCommit: null,
    lastCommitError: null,
    restoreFailed: { reasons: ["g1-s2.commit: sha256 does not match the record"], at: "2026-01-01T00:00:00.000Z" },
    updatedAt: "2026-01-01T00:00:00.000Z",
  };
  it("the current generation refused to start: its reasons", () => {
    expect(restoreFailure(refused, 5)).toEqual(["g1-s2.commit: sha256 does not match the record"]);
  });
  it("a generation that started (empty, as allowed) or an older generation's status: nothing to report", () => {
    expect(restoreFailure({ ...refused, resumedFrom: "empty" }, 5)).toBeNull();
    expect(restoreFailure(refused, 6)).toBeNull();
    expect(restoreFailure({ ...refused, restoreFailed: undefined }, 5)).toBeNull();
  });
  it("reseat status shows the state and the reasons under the table", () => {
    const row: PeStatus = {
      peId: "orders",
      generation: 5,
      executable: null,
      state: "restore-failed",
      volume: "reseat-orders-state",
      lastCommit: null,
      commitLagMs: null,
      resumedFrom: null,
      resumedSeq: null,
      lastCommitError: null,
      restarts: 0,
      controller: null,
      group: null,
      reverted: false,
      failedSpecHash: null,
      restoreFailed: refused.restoreFailed.reasons,
      lockHolder: null,
      recordErrors: [],
    };
    const table = formatStatusTable([row]);
    expect(table.split("\n")[1]).toMatch(/^orders\s+-\s+5\s+restore-failed\s/);
    expect(table).toContain("orders: restore failed, refusing to start empty:\n  g1-s2.commit: sha256 does not match the record");
  });
});

describe("needsReseat", () => {
  const e = (running: boolean): ObservedExecutable => ({
    id: "x",
    name: "n",
    peId: "p",
    generation: 1,
    specHash: "h",
    volumeName: "v",
    state: running ? "running" : "exited",
    running,
  });
  it("a failed executable still there, none running", () => expect(needsReseat([e(false)])).toBe(true));
  it("nothing there: removed on purpose", () => expect(needsReseat([])).toBe(false));
  it("one running: nothing to do", () => expect(needsReseat([e(false), e(true)])).toBe(false));
});
