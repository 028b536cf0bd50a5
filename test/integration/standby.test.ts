// The standby hand-over (handover: "standby") on Docker, through the real Pulumi CLI: the session workload's
// successor starts beside the serving executable and parks on the volume's writer lock; only then is the old
// one stopped, and the standby takes over with every acknowledged write. A release whose executable exits at
// start fails the `up` naming it, and costs nothing: the serving executable is never stopped, nothing reverts.
// A standby that fails after it took over is reverted, as a staged replacement is.
// Observed from outside reseat: the engine's events and the workload's own parked report in the volume.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STATUS_RECORD, RECORD_DIR, REVERT_RECORD, standbyStatusFile, type WorkloadStatus } from "@reseat/state/contract";
import {
  Project,
  cleanup,
  containersOf,
  docker,
  lastAcked,
  makeProject,
  mustSucceed,
  peOutputs,
  recordLiveness,
  reseatCli,
  sessionSpec,
  sessions,
  setSpecs,
  startPersistentWriters,
  waitFor,
} from "../support/harness";

const PE = `it-standby-${process.pid}`;
const PORT = 20100 + (process.pid % 300);

function spec(overrides: Record<string, unknown> = {}) {
  return sessionSpec(PE, PORT, { handover: "standby", ...overrides });
}

/** The volume's folder on this host (the local engine's volume driver). */
async function volumeDir(volumeName: string): Promise<string> {
  return ((await docker.getVolume(volumeName).inspect()) as { Mountpoint: string }).Mountpoint;
}

/**
 * Watches the volume's record folder (inotify) for a standby's parked report, as the workload writes it, and
 * keeps the first one seen for each generation (the standby removes it once it serves).
 */
function watchParkedReports(dir: string): { reports: Map<number, WorkloadStatus>; close: () => void } {
  const reports = new Map<number, WorkloadStatus>();
  const records = path.join(dir, RECORD_DIR);
  const look = (file: string | null) => {
    const match = file && /^standby-g(\d+)\.json$/.exec(file);
    if (!match) return;
    const generation = Number(match[1]);
    if (reports.has(generation)) return;
    try {
      reports.set(generation, STATUS_RECORD.decode(fs.readFileSync(path.join(dir, standbyStatusFile(generation)), "utf8")));
    } catch {
      // gone again before it was read (the standby served at once), or mid-write: a later event reads it
    }
  };
  const watcher = fs.watch(records, (_event, file) => look(file));
  return { reports, close: () => watcher.close() };
}

async function inspect(id: string): Promise<{ Id: string; State: { Running: boolean; StartedAt: string } }> {
  return (await docker.getContainer(id).inspect()) as never;
}

describe("standby hand-over (Docker, real Pulumi CLI)", () => {
  let project: Project;

  beforeAll(async () => {
    await cleanup([PE]);
    project = makeProject("standby", [spec({ env: { PORT: String(PORT), RELEASE: "a" } })]);
  });
  afterAll(async () => {
    await cleanup([PE]);
  });

  it('a handover that is neither "standby" nor "staged" is refused, naming the field', async () => {
    setSpecs(project, [spec({ handover: "bogus" })]);
    const result = await reseatCli(project, "up");
    expect(result.code).not.toBe(0);
    expect(result.doc.error).toMatch(/handover: expected "standby" or "staged"/);
    expect(await containersOf(PE)).toHaveLength(0);
  });

  it("a changed release is started as a standby, parks beside the serving executable, and takes over with every acknowledged write", async () => {
    setSpecs(project, [spec({ env: { PORT: String(PORT), RELEASE: "a" } })]);
    const first = peOutputs(await mustSucceed(project, "up"), PE);
    const dir = await volumeDir(first.volumeName);
    const parked = watchParkedReports(dir);
    const liveness = await recordLiveness(PE);
    const writers = startPersistentWriters(PORT, 4, "standby");
    try {
      await waitFor("100 acknowledged writes", async () => (writers.acks.length >= 100 ? true : undefined));
      setSpecs(project, [spec({ env: { PORT: String(PORT), RELEASE: "b" } })]);
      const second = peOutputs(await mustSucceed(project, "up"), PE);
      const acked = writers.acks.length;
      await waitFor("writes acknowledged by the new executable", async () => (writers.acks.length >= acked + 50 ? true : undefined));
      await writers.stop();
      const { events } = await liveness.stop();

      expect(second.generation).toBe(first.generation + 1);
      expect(second.executableId).not.toBe(first.executableId);
      // The engine's order: the standby started before the old executable died.
      const startNew = events.find((e) => e.action === "start" && e.id === second.executableId);
      const dieOld = events.find((e) => e.action === "die" && e.id === first.executableId);
      expect(startNew, JSON.stringify(events)).toBeDefined();
      expect(dieOld, JSON.stringify(events)).toBeDefined();
      expect(startNew!.timeNano).toBeLessThan(dieOld!.timeNano);
      // The workload's own report: parked, as the new generation, written while the old one still ran.
      const report = parked.reports.get(second.generation);
      expect(report, "the standby's parked report").toMatchObject({ phase: "parked", generation: second.generation, peId: PE });
      expect(Date.parse(report!.updatedAt) * 1e6).toBeLessThan(dieOld!.timeNano);
      // Once it serves, its report is gone and the status record names it.
      expect(fs.existsSync(path.join(dir, standbyStatusFile(second.generation)))).toBe(false);
      const status = STATUS_RECORD.decode(fs.readFileSync(path.join(dir, STATUS_RECORD.file), "utf8"));
      expect(status).toMatchObject({ phase: "serving", generation: second.generation, resumedFrom: "local" });
      // Every acknowledged write survived the hand-over.
      const seen = (await sessions(PORT)).sessions;
      for (const [key, value] of lastAcked(writers.acks)) expect(seen[key]?.n, key).toBeGreaterThanOrEqual(value);
      // One executable is left: the old one was removed after the new one was ready.
      const left = await containersOf(PE);
      expect(left.map((c) => c.Id)).toEqual([second.executableId]);
    } finally {
      parked.close();
      await writers.stop();
    }
  });

  it("a release that exits at start fails the up naming the executable; the serving one is never stopped and nothing reverts", async () => {
    const before = (await containersOf(PE, false)).map((c) => c.Id);
    expect(before).toHaveLength(1);
    const serving = await inspect(before[0]!);
    const generation = Number((await containersOf(PE, false))[0]!.Labels["io.reseat.generation"]);
    const dir = await volumeDir(`reseat-${PE}-state`);
    const revertBefore = fs.existsSync(path.join(dir, REVERT_RECORD.file)) ? fs.readFileSync(path.join(dir, REVERT_RECORD.file), "utf8") : undefined;
    const liveness = await recordLiveness(PE);

    // The same image and user (a change of user would be replaced staged), a command that exits at once.
    setSpecs(project, [
      spec({ image: "reseat-session-workload:v2", command: ["node", "-e", "console.error('bad release: exits at start'); process.exit(3)"] }),
    ]);
    const result = await reseatCli(project, "up");
    const { events } = await liveness.stop();

    expect(result.code).not.toBe(0);
    const failed = `reseat-${PE}-g${generation + 1}`;
    expect(result.doc.error).toContain(`the new executable ${failed} did not park as a standby (it exited with code 3 before it parked)`);
    expect(result.doc.error).toMatch(new RegExp(`Last log lines of ${failed}:\\n[^]*bad release: exits at start`));
    expect(result.doc.error).not.toMatch(/reverted/);
    // The serving executable: the same container, still running, never restarted, never told to stop.
    const after = await inspect(serving.Id);
    expect(after.State.Running).toBe(true);
    expect(after.State.StartedAt).toBe(serving.State.StartedAt);
    expect(events.filter((e) => e.id === serving.Id)).toEqual([]);
    expect((await containersOf(PE)).map((c) => c.Id)).toEqual([serving.Id]);
    // No revert happened: the record is as it was.
    const revertAfter = fs.existsSync(path.join(dir, REVERT_RECORD.file)) ? fs.readFileSync(path.join(dir, REVERT_RECORD.file), "utf8") : undefined;
    expect(revertAfter).toBe(revertBefore);
    // It still serves its sessions.
    expect((await sessions(PORT)).seq).toBeGreaterThan(0);
  });

  it("a standby that takes over and then is never ready is reverted, with every acknowledged write", async () => {
    const serving = (await containersOf(PE, false))[0]!;
    const generation = Number(serving.Labels["io.reseat.generation"]);
    const writers = startPersistentWriters(PORT, 2, "revert");
    try {
      await waitFor("50 acknowledged writes", async () => (writers.acks.length >= 50 ? true : undefined));
      setSpecs(project, [spec({ image: "reseat-session-workload:v2", readiness: { httpGet: { port: PORT, path: "/never-ready" }, timeout: "3s" } })]);
      const result = await reseatCli(project, "up");
      expect(result.code).not.toBe(0);
      expect(result.doc.error).toMatch(
        new RegExp(`PE "${PE}" was reverted: the new executable reseat-${PE}-g${generation + 1} .*was not ready within 3000 ms`),
      );
      const acked = writers.acks.length;
      await waitFor("writes acknowledged after the revert", async () => (writers.acks.length >= acked + 20 ? true : undefined));
      await writers.stop();
      // The previous spec serves again, as the next generation, with every acknowledged write.
      const now = await containersOf(PE, false);
      expect(now).toHaveLength(1);
      expect(Number(now[0]!.Labels["io.reseat.generation"])).toBe(generation + 2);
      const seen = (await sessions(PORT)).sessions;
      for (const [key, value] of lastAcked(writers.acks)) expect(seen[key]?.n, key).toBeGreaterThanOrEqual(value);
    } finally {
      await writers.stop();
    }
  });
});
