// A damaged record of one PE (its controller record, its lock lease) or of the engine (the controller's
// presence lease) is reported where it belongs, and breaks neither `reseat status` nor the controller
// for the other PEs.
import { describe, expect, it } from "vitest";
import { controllerPresence, gatherStatus } from "../../../src/controller/status";
import { CONTROLLER_LEASE, WatchEvent, watch } from "../../../src/controller/watch";
import { reseat } from "../../../src/replacement/reseat";
import { desiredFor, engineWithVolume, until } from "../replacement/fixtures";

const CONTROLLER_RECORD_FILE = ".reseat/controller.json";

async function threePes() {
  const desired = ["pe-a", "pe-b", "pe-c"].map((peId) => desiredFor(peId));
  const backend = await engineWithVolume(...desired);
  for (const d of desired) await reseat(backend, d, { holder: "pulumi" });
  // pe-b's controller record is damaged (not JSON), as a torn or hand-edited file would be.
  backend.volumes.get(desired[1]!.volumeName)!.files.set(CONTROLLER_RECORD_FILE, { text: '{"restarts": 2, "state":', mode: 0o644 });
  return { backend, desired };
}

describe("corrupt records", () => {
  it("status reports each one for its PE (or for the engine) and lists the others normally", async () => {
    const { backend } = await threePes();
    // pe-c's lock lease and the controller's presence lease cannot be decoded.
    backend.faults.beforeCall = (operation, args) => {
      if (operation === "readLease" && (args[0] === "pe-pe-c" || args[0] === CONTROLLER_LEASE))
        throw new Error(`the lease record ${String(args[0])} is unreadable: not JSON`);
    };
    const rows = await gatherStatus(backend);
    expect(rows.map((r) => [r.peId, r.state, r.generation])).toEqual([
      ["pe-a", "running", 1],
      ["pe-b", "running", 1],
      ["pe-c", "running", 1],
    ]);
    expect(rows[0]!.recordErrors).toEqual([]);
    expect(rows[1]!.recordErrors).toEqual([expect.stringMatching(/^controller record: .*controller.*unreadable/)]);
    expect(rows[1]!.restarts).toBe(0);
    expect(rows[2]!.recordErrors).toEqual([expect.stringMatching(/^lock lease pe-pe-c: .*unreadable/)]);
    const presence = await controllerPresence(backend);
    expect(presence).toMatchObject({ watching: false, holder: null });
    expect(presence.error).toMatch(/presence lease could not be read/);
  });

  it("the controller reseats the other PEs, and the damaged one too (its record replaced)", async () => {
    const { backend, desired } = await threePes();
    const events: WatchEvent[] = [];
    const watcher = await watch({ backend, onEvent: (e) => events.push(e), resyncMs: 50, reconnectMs: 10, leaseMs: 200 });
    for (const peId of ["pe-a", "pe-b"]) backend.crash(backend.running(peId)[0]!.id);
    await until(() => ["pe-a", "pe-b"].every((peId) => events.some((e) => e.kind === "reseated" && e.peId === peId)), 10_000, "both reseats");
    await watcher.idle();
    await watcher.stop();
    const rows = await gatherStatus(backend);
    expect(rows.map((r) => [r.peId, r.generation, r.restarts, r.recordErrors])).toEqual([
      ["pe-a", 2, 1, []],
      ["pe-b", 2, 1, []], // the damaged record was replaced by a good one (its old count lost)
      ["pe-c", 1, 0, []],
    ]);
    expect(desired).toHaveLength(3);
  });
});
