// The standby hand-over (handover: "standby"), on the fake engine: the next executable starts and parks
// beside the serving one before anything stops; the generation is recorded only once the old one stopped;
// a standby that cannot park is removed and the old one never touched; where a standby is not safe the
// routine is staged; a failure after the take-over reverts as before.
import { describe, expect, it } from "vitest";
import { META_RECORD, STATUS_RECORD, standbyStatusFile } from "@reseat/state/contract";
import { ReplacementRevertedError, StandbyNotParkedError, reseat } from "../../../src/replacement/reseat";
import { specHash } from "../../../src/plan/executablePlan";
import { FakeBackend } from "../../../src/backend/fake/fakeBackend";
import type { FleetMemberPlan } from "../../../src/plan/fleetPlan";
import { planRollout } from "../../../src/plan/rollout";
import { rollFleet } from "../../../src/replacement/fleetRollout";
import { desiredFor, engineWithVolume } from "./fixtures";

const standby = (peId: string, overrides: Record<string, unknown> = {}) => desiredFor(peId, { handover: "standby", ...overrides });

describe("standby hand-over", () => {
  it("starts the standby and sees it parked before the old one stops; the generation is recorded only after the stop", async () => {
    const v1 = standby("pe-a");
    const backend = await engineWithVolume(v1);
    const first = await reseat(backend, v1, { holder: "t" });
    // Started alone on the volume, a standby takes the lock at once and serves.
    expect(await backend.readWorkloadStatus(v1.volumeName)).toMatchObject({ generation: 1, phase: "serving" });

    // What the engine looks like the moment the old executable is told to stop.
    let atStop: { standbyRunning: boolean; parked?: string; meta?: number } | undefined;
    backend.faults.beforeCall = (operation, args) => {
      if (operation !== "stop" || args[0] !== first.executableId || atStop) return;
      const standbyExec = [...backend.executables.values()].find((e) => e.generation === 2)!;
      const parked = backend.volumeFile(v1.volumeName, standbyStatusFile(2));
      const meta = backend.volumeFile(v1.volumeName, META_RECORD.file);
      atStop = {
        standbyRunning: standbyExec.state === "running",
        parked: parked && STATUS_RECORD.decode(parked.text).phase,
        meta: meta && META_RECORD.decode(meta.text).generation,
      };
    };
    backend.calls.length = 0;
    const second = await reseat(backend, standby("pe-a", { env: { V: "2" } }), { holder: "t" });

    const at = (prefix: string) => backend.calls.findIndex((c) => c.startsWith(prefix));
    expect(at(`start ${second.executableId}`)).toBeGreaterThan(-1);
    expect(at(`start ${second.executableId}`)).toBeLessThan(at(`readStandbyStatus ${second.executableId} 2`));
    expect(at(`readStandbyStatus ${second.executableId} 2`)).toBeLessThan(at(`stop ${first.executableId}`));
    expect(atStop).toEqual({ standbyRunning: true, parked: "parked", meta: 1 });
    // reseat never records the generation before the old one stopped (it would fence its final commit).
    const recorded = backend.calls.findIndex((c) => c.startsWith("recordGeneration"));
    expect(recorded === -1 || recorded > at(`stop ${first.executableId}`)).toBe(true);
    expect(at(`waitReady ${second.executableId}`)).toBeGreaterThan(at(`stop ${first.executableId}`));
    // The standby took over: it serves as generation 2, its parked report is gone, the old one is removed.
    expect(await backend.readWorkloadStatus(v1.volumeName)).toMatchObject({ generation: 2, phase: "serving" });
    expect(await backend.readGeneration(v1.volumeName)).toMatchObject({ generation: 2 });
    expect(backend.volumeFile(v1.volumeName, standbyStatusFile(2))).toBeUndefined();
    expect(backend.running("pe-a").map((e) => e.id)).toEqual([second.executableId]);
    expect(backend.executables.size).toBe(1);
    // Two executables ran between the start of the standby and the stop: the memory cost.
    expect(backend.maxRunningOnVolume.get(v1.volumeName)).toBe(2);
    expect(second.generation).toBe(2);
  });

  it("a standby that exits at start is removed, the old one never stopped, and the error names it with its logs", async () => {
    const v1 = standby("pe-a");
    const backend = await engineWithVolume(v1);
    const first = await reseat(backend, v1, { holder: "t" });
    backend.faults.crashingImages.add("bad:1");
    backend.calls.length = 0;
    const error = await reseat(backend, standby("pe-a", { image: "bad:1" }), { holder: "t" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StandbyNotParkedError);
    const message = (error as Error).message;
    expect(message).toMatch(/the new executable reseat-pe-a-g2 did not park as a standby \(it exited with code 1 before it parked\)/);
    expect(message).toContain("reseat-pe-a-g1 (generation 1) still serves, never stopped");
    expect(message).toContain("Last log lines of reseat-pe-a-g2:\nfake logs");
    expect(backend.calls).not.toContain(`stop ${first.executableId}`);
    expect(backend.running("pe-a").map((e) => e.id)).toEqual([first.executableId]);
    expect(backend.executables.size).toBe(1);
    expect(await backend.readGeneration(v1.volumeName)).toMatchObject({ generation: 1 });
    expect(await backend.readRevert(v1.volumeName)).not.toMatchObject({ reverted: true });
  });

  it("a standby that never parks within its timeout is removed, the old one never stopped", async () => {
    const v1 = standby("pe-a", { readiness: { logLine: "ready", timeout: "1s" } });
    const backend = await engineWithVolume(v1);
    const first = await reseat(backend, v1, { holder: "t" });
    backend.faults.neverParkingImages = new Set(["stuck:1"]);
    backend.calls.length = 0;
    const error = await reseat(backend, standby("pe-a", { image: "stuck:1", readiness: { logLine: "ready", timeout: "1s" } }), { holder: "t" }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StandbyNotParkedError);
    expect((error as Error).message).toMatch(/reseat-pe-a-g2 did not park as a standby \(it was not parked within 1000 ms\)/);
    expect(backend.calls).not.toContain(`stop ${first.executableId}`);
    expect(backend.running("pe-a").map((e) => e.id)).toEqual([first.executableId]);
    expect(backend.executables.size).toBe(1);
  });

  it("a parked report left by an earlier attempt at the same generation does not count as parked", async () => {
    const v1 = standby("pe-a", { readiness: { logLine: "ready", timeout: "1s" } });
    const backend = await engineWithVolume(v1);
    const first = await reseat(backend, v1, { holder: "t" });
    const stale = { ...(await backend.readWorkloadStatus(v1.volumeName))!, generation: 2, phase: "parked" as const, updatedAt: "2000-01-01T00:00:00.000Z" };
    backend.putVolumeFiles(v1.volumeName, { [standbyStatusFile(2)]: STATUS_RECORD.encode(stale) });
    backend.faults.neverParkingImages = new Set(["stuck:1"]);
    await expect(reseat(backend, standby("pe-a", { image: "stuck:1", readiness: { logLine: "ready", timeout: "1s" } }), { holder: "t" })).rejects.toThrow(
      StandbyNotParkedError,
    );
    expect(backend.running("pe-a").map((e) => e.id)).toEqual([first.executableId]);
  });

  it("staged when the serving workload's status has no phase (a library without the writer lock), and says why", async () => {
    const v1 = desiredFor("pe-a");
    const backend = await engineWithVolume(v1);
    const first = await reseat(backend, v1, { holder: "t" });
    const { phase: _phase, ...old } = { version: 1, peId: "pe-a", generation: 1, phase: "serving", resumedFrom: "local", seq: 3 };
    backend.putVolumeFiles(v1.volumeName, { [STATUS_RECORD.file]: JSON.stringify(old) });
    const log: string[] = [];
    backend.calls.length = 0;
    const second = await reseat(backend, standby("pe-a"), { holder: "t", log: (m) => log.push(m) });
    const at = (prefix: string) => backend.calls.findIndex((c) => c.startsWith(prefix));
    expect(at(`stop ${first.executableId}`)).toBeLessThan(at(`start ${second.executableId}`));
    expect(backend.calls.some((c) => c.startsWith("readStandbyStatus"))).toBe(false);
    expect(log.join("\n")).toMatch(/PE "pe-a" is replaced staged, not by a standby: reseat-pe-a-g1 .*has no phase/);
    expect(backend.maxRunningOnVolume.get(v1.volumeName)).toBe(1);
    // Started alone, the new executable (a standby by its env) took the lock at once and serves.
    expect(await backend.readWorkloadStatus(v1.volumeName)).toMatchObject({ generation: 2, phase: "serving" });
  });

  it("staged when the workload's user changes (the volume changes hands with nothing running on it)", async () => {
    const v1 = standby("pe-a", { runAsUser: 1000 });
    const backend = await engineWithVolume(v1);
    const first = await reseat(backend, v1, { holder: "t" });
    const log: string[] = [];
    backend.calls.length = 0;
    const second = await reseat(backend, standby("pe-a", { runAsUser: 2000 }), { holder: "t", log: (m) => log.push(m) });
    const at = (prefix: string) => backend.calls.findIndex((c) => c.startsWith(prefix));
    expect(at(`stop ${first.executableId}`)).toBeLessThan(at("ownState"));
    expect(at("ownState")).toBeLessThan(at(`start ${second.executableId}`));
    expect(log.join("\n")).toMatch(/user changes/);
  });

  it("a failure after the take-over reverts to the previous spec", async () => {
    const v1 = standby("pe-a");
    const backend = await engineWithVolume(v1);
    const first = await reseat(backend, v1, { holder: "t" });
    const bad = standby("pe-a", { env: { V: "bad" } });
    // The standby parks and takes over, then dies before it is seen ready.
    backend.faults.beforeCall = (operation, args) => {
      const e = backend.executables.get(args[0] as string);
      if (operation === "waitReady" && e?.generation === 2 && e.state === "running") backend.crash(e.id, 1);
    };
    const error = await reseat(backend, bad, { holder: "t" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReplacementRevertedError);
    expect(backend.calls).toContain(`stop ${first.executableId}`);
    const running = backend.running("pe-a");
    expect(running).toHaveLength(1);
    expect(running[0]!.specHash).toBe(specHash(v1));
    expect(running[0]!.generation).toBe(3);
    expect(await backend.readWorkloadStatus(v1.volumeName)).toMatchObject({ generation: 3, phase: "serving" });
    expect(await backend.readRevert(v1.volumeName)).toMatchObject({ reverted: true, failedExecutable: "reseat-pe-a-g2", servingGeneration: 3 });
  });

  it("a standby left parked by an interrupted run is retired, not the writer, when the spec changed since", async () => {
    const v1 = standby("pe-a");
    const backend = await engineWithVolume(v1);
    const first = await reseat(backend, v1, { holder: "t" });
    // What a run killed right after its standby parked leaves: generation 2 parked beside the writer.
    const v2 = standby("pe-a", { env: { V: "2" } });
    const leftover = await backend.prepare(v2, { name: "reseat-pe-a-g2", generation: 2, specHash: specHash(v2) });
    await backend.start(leftover);
    expect(backend.executables.get(leftover)!.parked).toBe(true);
    backend.calls.length = 0;
    const third = await reseat(backend, standby("pe-a", { env: { V: "3" } }), { holder: "t" });
    const at = (prefix: string) => backend.calls.findIndex((c) => c.startsWith(prefix));
    expect(at(`stop ${leftover}`)).toBeGreaterThan(-1);
    expect(at(`stop ${leftover}`)).toBeLessThan(at(`stop ${first.executableId}`));
    expect(at(`readStandbyStatus ${third.executableId} 3`)).toBeLessThan(at(`stop ${first.executableId}`));
    expect(third.generation).toBe(3);
    expect(backend.running("pe-a").map((e) => e.id)).toEqual([third.executableId]);
    expect(await backend.readWorkloadStatus(v1.volumeName)).toMatchObject({ generation: 3, phase: "serving" });
  });

  it("a standby left parked with the desired spec is adopted: the old writer goes, the standby takes over", async () => {
    const v1 = standby("pe-a");
    const backend = await engineWithVolume(v1);
    const first = await reseat(backend, v1, { holder: "t" });
    const v2 = standby("pe-a", { env: { V: "2" } });
    const leftover = await backend.prepare(v2, { name: "reseat-pe-a-g2", generation: 2, specHash: specHash(v2) });
    await backend.start(leftover);
    const result = await reseat(backend, v2, { holder: "t" });
    expect(result).toMatchObject({ adopted: true, executableId: leftover, generation: 2 });
    expect(result.retired).toEqual([first.executableName]);
    expect(backend.running("pe-a").map((e) => e.id)).toEqual([leftover]);
    expect(await backend.readWorkloadStatus(v1.volumeName)).toMatchObject({ generation: 2, phase: "serving" });
    expect(await backend.readGeneration(v1.volumeName)).toMatchObject({ generation: 2 });
  });

  it("a fleet hands over member by member; a member whose standby cannot park stops the rollout with that member untouched", async () => {
    const members = (image: (ordinal: number) => string): FleetMemberPlan[] =>
      [0, 1, 2].map((ordinal) => {
        const desired = standby(`f-${ordinal}`, { image: image(ordinal) });
        return {
          ordinal,
          peId: desired.peId,
          desired,
          volume: { name: desired.volumeName, driver: "local", peId: desired.peId, owner: desired.owner! },
          held: false,
          controlChanged: false,
        };
      });
    const plan = planRollout({ group: "f", replicas: 3, maxUnavailable: 1, partition: 0 });
    const engine = new FakeBackend();
    await rollFleet(
      engine,
      plan,
      members(() => "app:1"),
      { holder: "t" },
    );
    const oldOf = (peId: string) => [...engine.executables.values()].find((e) => e.desired.peId === peId && e.state === "running")!.id;
    const old = new Map([0, 1, 2].map((o) => [o, oldOf(`f-${o}`)]));
    engine.faults.crashingImages.add("app:2-broken");
    const outcomes = await rollFleet(
      engine,
      plan,
      members((o) => (o === 1 ? "app:2-broken" : "app:2")),
      { holder: "t" },
    );
    expect(outcomes.map((o) => o.kind)).toEqual(["not-begun", "failed", "done"]);
    const failure = outcomes[1] as Extract<(typeof outcomes)[number], { kind: "failed" }>;
    expect(failure.error).toBeInstanceOf(StandbyNotParkedError);
    // Member 2 took over from a parked standby; member 1 was never stopped; member 0 was not begun.
    expect(engine.running("f-2").map((e) => e.desired.imageRef)).toEqual(["app:2"]);
    expect(engine.calls).not.toContain(`stop ${old.get(1)}`);
    expect(engine.calls).not.toContain(`stop ${old.get(0)}`);
    for (const o of [0, 1]) expect(engine.running(`f-${o}`).map((e) => e.id)).toEqual([old.get(o)]);
    for (const o of [0, 1]) expect([...engine.executables.values()].filter((e) => e.desired.peId === `f-${o}`)).toHaveLength(1);
  });

  it("handover is part of what runs: changing it replaces, and absent keeps the spec hash of a staged spec", () => {
    expect(specHash(desiredFor("pe-a"))).toBe(specHash(desiredFor("pe-a", { handover: "staged" })));
    expect(specHash(desiredFor("pe-a"))).not.toBe(specHash(standby("pe-a")));
    expect(desiredFor("pe-a", { handover: "staged" })).not.toHaveProperty("handover");
  });
});
