// `reseat status` of a fleet on the fake engine: every member listed with its fleet, generation and commit
// lag, in a number of engine list calls that does not grow with the fleet (one executable list, one
// volume list), the per-member reads at most STATUS_LANES at a time. An engine with a bulk read
// (Backend.readStatusRecords; Kubernetes) is asked once, never member by member.
import { describe, expect, it } from "vitest";
import type { PeStatusRecords } from "../../../src/backend/backend";
import { FakeBackend } from "../../../src/backend/fake/fakeBackend";
import { STATUS_LANES, formatStatusTable, gatherStatus } from "../../../src/controller/status";
import { reseat } from "../../../src/replacement/reseat";
import { STATUS_RECORD, type WorkloadStatus } from "@reseat/state/contract";
import { desiredFor, engineWithVolume } from "../replacement/fixtures";

/** A fleet's members on the engine: "<fleet>-<ordinal>", each with its volume and a running executable. */
async function fleetOn<B extends FakeBackend = FakeBackend>(backend: B | undefined, fleet: string, replicas: number): Promise<B> {
  const desired = Array.from({ length: replicas }, (_, ordinal) => desiredFor(`${fleet}-${ordinal}`));
  const engine = backend ?? ((await engineWithVolume(...desired)) as B);
  if (backend) for (const d of desired) await engine.claimVolume({ name: d.volumeName, driver: "local", peId: d.peId, owner: d.owner! });
  for (const d of desired) await reseat(engine, d, { holder: "pulumi" });
  return engine;
}

/** The member's workload reports `seq` writes, `committed` of them in its last commit (made at `at`). */
function reports(backend: FakeBackend, peId: string, at: string, seq = 5, committed = 3): void {
  const status: WorkloadStatus = {
    peId,
    generation: 1,
    phase: "serving",
    resumedFrom: "empty",
    resumedSeq: 0,
    seq,
    commitIntervalMs: 1000,
    lastCommit: { seq: committed, at, bytes: 42, sha256: "0".repeat(64), generation: 1 },
    lastCommitError: null,
    lastCommitAttemptAt: at,
    restoreFailed: null,
    updatedAt: new Date().toISOString(),
  };
  backend.putVolumeFiles(`reseat-${peId}-state`, { [STATUS_RECORD.file]: STATUS_RECORD.encode(status) });
}

/** The calls gatherStatus makes, by operation, and the most engine calls it had in flight at once. */
async function measuredStatus(backend: FakeBackend) {
  backend.calls.length = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  backend.faults.beforeCall = async () => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    // Yield to the event loop, so that calls made in parallel really overlap here.
    await new Promise((resolve) => setImmediate(resolve));
    inFlight--;
  };
  const rows = await gatherStatus(backend);
  backend.faults.beforeCall = undefined;
  const byOperation: Record<string, number> = {};
  for (const call of backend.calls) {
    const operation = call.split(" ")[0]!;
    byOperation[operation] = (byOperation[operation] ?? 0) + 1;
  }
  const lists = Object.entries(byOperation)
    .filter(([operation]) => operation.startsWith("list"))
    .reduce((sum, [, n]) => sum + n, 0);
  return { rows, byOperation, lists, total: backend.calls.length, maxInFlight };
}

describe("reseat status of a fleet", () => {
  it("lists every member with its fleet, generation and commit lag", async () => {
    const backend = await fleetOn(undefined, "orders", 3);
    const lastCommitAt = new Date(Date.now() - 60_000).toISOString();
    reports(backend, "orders-0", lastCommitAt, 3, 3);
    reports(backend, "orders-1", lastCommitAt);
    const before = Date.now();
    const { rows } = await measuredStatus(backend);
    const after = Date.now();
    expect(rows.map((r) => [r.peId, r.group, r.generation, r.state])).toEqual([
      ["orders-0", "orders", 1, "running"],
      ["orders-1", "orders", 1, "running"],
      ["orders-2", "orders", 1, "running"],
    ]);
    // Every write in the last commit: no lag. Writes waiting since the last commit: now − that commit.
    // No status reported yet: no lag known.
    expect(rows[0]!.commitLagMs).toBe(0);
    expect(rows[2]!.commitLagMs).toBeNull();
    expect(rows[1]!.lastCommit).toEqual({ seq: 3, at: lastCommitAt, bytes: 42 });
    expect(rows[1]!.commitLagMs).toBeGreaterThanOrEqual(before - Date.parse(lastCommitAt));
    expect(rows[1]!.commitLagMs).toBeLessThanOrEqual(after - Date.parse(lastCommitAt));
    const table = formatStatusTable(rows).split("\n");
    expect(table[0]).toMatch(/^PE\s+FLEET\/GROUP\s+GEN\s+STATE\s/);
    expect(table[2]).toMatch(/^orders-1\s+orders\s+1\s+running\s.*#3 .*\s\d+ms\s/);
    // Under the table, one line per fleet: what runs, the generations, the member lagging most.
    expect(table.slice(4)).toEqual(["", `orders: 3 members, 3 running, generation 1, largest commit lag ${rows[1]!.commitLagMs}ms (orders-1)`]);
  });

  it("N = 10 and N = 100: the same list calls, per-member reads growing with N only, at most STATUS_LANES in flight", async () => {
    const ten = await measuredStatus(await fleetOn(undefined, "small", 10));
    const hundred = await measuredStatus(await fleetOn(undefined, "large", 100));
    expect(ten.rows).toHaveLength(10);
    expect(hundred.rows).toHaveLength(100);
    expect(hundred.rows.every((r) => r.group === "large" && r.generation === 1 && r.state === "running")).toBe(true);
    // In ordinal order ("large-2" before "large-10").
    expect(hundred.rows.map((r) => r.peId)).toEqual(Array.from({ length: 100 }, (_, ordinal) => `large-${ordinal}`));
    // One executable list and one volume list, whatever N: never a list per member.
    expect(ten.byOperation.listExecutables).toBe(1);
    expect(ten.byOperation.listStateVolumes).toBe(1);
    expect(hundred.lists).toBe(ten.lists);
    // Each member's records and lock lease: one read each, so the rest is exactly linear in N.
    for (const operation of ["readWorkloadStatus", "readControllerRecord", "readRevert", "readLease"]) {
      expect([ten.byOperation[operation], hundred.byOperation[operation]]).toEqual([10, 100]);
    }
    expect(hundred.total - hundred.lists).toBe(10 * (ten.total - ten.lists));
    // Bounded parallelism: more than one read at a time, never more than the lanes.
    expect(hundred.maxInFlight).toBeGreaterThan(1);
    expect(hundred.maxInFlight).toBeLessThanOrEqual(STATUS_LANES);
  });

  it("an engine with a bulk read of the records is asked once for all members, never member by member", async () => {
    /** The fake with a bulk read, as the Kubernetes backend has one (one pod list, one record list). */
    class BulkFake extends FakeBackend {
      bulkReads: { volumes: number; lanes: number }[] = [];
      async readStatusRecords(volumeNames: string[], options: { lanes: number }): Promise<Map<string, PeStatusRecords>> {
        this.bulkReads.push({ volumes: volumeNames.length, lanes: options.lanes });
        const answer = new Map<string, PeStatusRecords>();
        for (const volume of volumeNames) {
          const text = this.volumeFile(volume, STATUS_RECORD.file)?.text;
          answer.set(volume, {
            workload: text ? STATUS_RECORD.decode(text) : undefined,
            corrupt: volume.includes("-7-") ? { "revert record": "not JSON" } : {},
          });
        }
        return answer;
      }
    }
    const backend = await fleetOn(new BulkFake(), "bulk", 20);
    reports(backend, "bulk-3", new Date(Date.now() - 5_000).toISOString());
    const { rows, byOperation } = await measuredStatus(backend);
    expect(backend.bulkReads).toEqual([{ volumes: 20, lanes: STATUS_LANES }]);
    for (const operation of ["readWorkloadStatus", "readControllerRecord", "readRevert"]) expect(byOperation[operation]).toBeUndefined();
    expect(byOperation.readLease).toBe(20);
    expect(rows.find((r) => r.peId === "bulk-3")!.commitLagMs).toBeGreaterThan(0);
    expect(rows.find((r) => r.peId === "bulk-7")!.recordErrors).toEqual(["revert record: not JSON"]);
    expect(rows.filter((r) => r.recordErrors.length)).toHaveLength(1);
  });
});
