// Single writer across the standby hand-over, proven from outside reseat: an observer on the host (the kernel's
// /proc/locks for the volume's writer lock, every process's open state.db from /proc/<pid>/fd and fdinfo, the
// workloads' own reports; test/support/writerObserver.ts) samples throughout while a client PUTs continuously and
// the hand-over is hit with faults: kill -9 of either side at each step, a paused (SIGSTOP) old writer, two
// successors racing. After each case: every acknowledged write is there, the sampler never saw two writers, and
// a parked standby never had state.db open. Real Docker Engine, the real session workload image.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { META_RECORD, RESEAT_ENV, STORE_MOUNT, WRITER_LOCK_FILE } from "../../packages/state/src/contract";
import { docker, lastAcked, startPersistentWriters, type Ack } from "../support/harness";
import { freePort } from "../support/remoteEngines/daemon";
import { describeReport, dockerVolumeDir, readReports, startWriterSampler, writerLockHolders, type SamplerReport, type WriterSampler } from "../support/writerObserver";

const IMAGE = "reseat-session-workload:v1";
const RUN = `it-swh-${process.pid}`;
/** The workload's user (the image's USER): it must own the volume's root, as reseat's volume preparation makes it. */
const WORKLOAD_UID = 1000;

const madeContainers = new Set<string>();
const madeVolumes = new Set<string>();

afterEach(async () => {
  for (const id of madeContainers) await docker.getContainer(id).remove({ force: true }).catch(() => undefined);
  madeContainers.clear();
});
afterAll(async () => {
  for (const name of madeVolumes) await docker.getVolume(name).remove().catch(() => undefined);
});

/** A fresh named volume owned by the workload's user; its host directory. */
async function makeVolume(name: string): Promise<string> {
  await docker.createVolume({ Name: name, Labels: { "io.reseat.test": RUN } });
  madeVolumes.add(name);
  const dir = await dockerVolumeDir(name);
  fs.chownSync(dir, WORKLOAD_UID, WORKLOAD_UID);
  return dir;
}

interface Session {
  id: string;
  /** The workload's process on the host (the container's init: node). */
  pid: number;
  generation: number;
}

interface Pe {
  name: string;
  volume: string;
  dir: string;
  storeVolume: string;
  port: number;
  commitIntervalMs: number;
}

async function makePe(tag: string, commitIntervalMs = 600_000): Promise<Pe> {
  const name = `${RUN}-${tag}`;
  const dir = await makeVolume(`${name}-state`);
  await makeVolume(`${name}-store`);
  return { name, volume: `${name}-state`, dir, storeVolume: `${name}-store`, port: await freePort(), commitIntervalMs };
}

/**
 * The session workload run as a standby executable of generation `generation` (what reseat's Docker backend makes
 * for handover "standby", without reseat): the state volume at /state, a directory store, host network.
 */
async function runSession(pe: Pe, generation: number): Promise<Session> {
  const env = {
    PORT: String(pe.port),
    [RESEAT_ENV.peId]: pe.name,
    [RESEAT_ENV.stateDir]: "/state",
    [RESEAT_ENV.generation]: String(generation),
    [RESEAT_ENV.commitIntervalMs]: String(pe.commitIntervalMs),
    [RESEAT_ENV.standby]: "1",
    [RESEAT_ENV.store]: JSON.stringify({ kind: "directory", path: STORE_MOUNT, keep: 5 }),
  };
  const container = await docker.createContainer({
    name: `${pe.name}-g${generation}-${madeContainers.size}`,
    Image: IMAGE,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: { "io.reseat.test": RUN },
    HostConfig: {
      NetworkMode: "host",
      Mounts: [
        { Type: "volume", Source: pe.volume, Target: "/state" },
        { Type: "volume", Source: pe.storeVolume, Target: STORE_MOUNT },
      ],
    },
  });
  madeContainers.add(container.id);
  await container.start();
  const info = await container.inspect();
  return { id: container.id, pid: info.State.Pid, generation };
}

/** Polls an observation (the workloads' reports, the kernel's tables, the engine) until it holds. */
async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const parked = (pe: Pe, generation: number) =>
  until(`generation ${generation} parked`, () => (readReports(pe.dir).parked.some((s) => s.generation === generation) ? true : undefined));

/** The status says this generation serves, and the service answers for it. */
async function serving(pe: Pe, generation: number): Promise<void> {
  await until(`generation ${generation} serving`, () => {
    const status = readReports(pe.dir).status;
    return status?.generation === generation && status.phase === "serving" ? true : undefined;
  });
  await until(`generation ${generation} answering`, async () => {
    const res = await fetch(`http://127.0.0.1:${pe.port}/healthz`).catch(() => undefined);
    if (res?.status !== 200) return undefined;
    const body = (await res.json()) as { generation: number };
    return body.generation === generation ? true : undefined;
  });
}

const alive = (pid: number) => fs.existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readProcStatus(pid));
function readProcStatus(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return "";
  }
}

/** A standby waiting for the lock keeps the lock file open between its tries (and holds nothing). */
function waitingOnLock(pid: number, volumeDir: string): boolean {
  const lock = fs.statSync(path.join(volumeDir, WRITER_LOCK_FILE));
  let fds: string[] = [];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  return fds.some((fd) => {
    try {
      const st = fs.statSync(`/proc/${pid}/fd/${fd}`);
      return st.dev === lock.dev && st.ino === lock.ino;
    } catch {
      return false;
    }
  });
}

async function exited(session: Session): Promise<void> {
  await docker.getContainer(session.id).wait();
}

/** Every acknowledged write is in what the serving writer answers (each key's newest acknowledged value or later). */
async function expectAllAcknowledged(pe: Pe, acks: Ack[]): Promise<void> {
  expect(acks.length, "the client had writes acknowledged").toBeGreaterThan(0);
  const res = await fetch(`http://127.0.0.1:${pe.port}/sessions`);
  const body = (await res.json()) as { seq: number; sessions: Record<string, { n: number }> };
  for (const [key, value] of lastAcked(acks)) expect(body.sessions[key]?.n, `acknowledged ${key} = ${value}`).toBeGreaterThanOrEqual(value);
  expect(body.seq).toBeGreaterThanOrEqual(Math.max(...acks.map((a) => a.seq)));
}

/** The observer's verdict: never two writers at once, never a parked standby with the state open. */
function expectSingleWriter(report: SamplerReport): void {
  const detail = describeReport(report);
  console.log(`observer: ${detail.split("\n")[0]}; at most ${report.maxHolders} holder(s), ${report.maxWriters} writer(s)`);
  expect(report.violations, detail).toEqual([]);
  expect(report.maxHolders, detail).toBe(1);
  expect(report.maxWriters, detail).toBe(1);
  expect(report.samples, detail).toBeGreaterThan(20);
}

/** The lock's holders in order, each a pid, from the sampler's record: the hand-over's sequence. */
function holderSequence(report: SamplerReport): number[] {
  const sequence: number[] = [];
  for (const change of report.changes) for (const pid of change.holders) if (sequence.at(-1) !== pid) sequence.push(pid);
  return sequence;
}

/** The first sample in which `pid` holds the lock, and the last in which `old` did: the new one only after. */
function expectHandedOver(report: SamplerReport, old: Session, next: Session): void {
  const before = report.processes.find((p) => p.pid === old.pid);
  const after = report.processes.find((p) => p.pid === next.pid);
  const detail = describeReport(report);
  expect(after?.held, detail).not.toBeNull();
  if (before?.held) expect(after!.held![0], detail).toBeGreaterThan(before.held[1]);
  expect(after?.generation).toBe(next.generation);
}

describe("the writer observer on session workloads run directly (two executables on one volume)", () => {
  let sampler: WriterSampler | undefined;
  afterEach(async () => {
    await sampler?.stop().catch(() => undefined);
    sampler = undefined;
  });

  /** A writer of generation 1 serving under load, the observer sampling, a standby of generation 2 parked beside it. */
  async function writerAndStandby(tag: string) {
    const pe = await makePe(tag);
    const old = await runSession(pe, 1);
    await serving(pe, 1);
    sampler = await startWriterSampler(pe.dir);
    const client = startPersistentWriters(pe.port, 4, "acked");
    await until("writes acknowledged", () => (client.acks.length >= 50 ? true : undefined));
    const next = await runSession(pe, 2);
    await parked(pe, 2);
    await sampler.seen((s) => s.parked.includes(2) && s.holders.includes(old.pid), "the standby parked while the writer holds the lock");
    return { pe, old, next, client };
  }

  it("sees the writer alone hold the lock and write, the parked standby open nothing; a graceful stop hands over", async () => {
    const { pe, old, next, client } = await writerAndStandby("graceful");
    expect(writerLockHolders(pe.dir)).toEqual([old.pid]);
    const acked = client.acks.length;
    await until("more writes while parked", () => (client.acks.length >= acked + 100 ? true : undefined));

    await docker.getContainer(old.id).stop({ t: 10 }); // SIGTERM: final commit, exit
    await serving(pe, 2);
    const handedOver = client.acks.length;
    await until("writes acknowledged by the successor", () => (client.acks.length > handedOver + 20 ? true : undefined));
    const report = await sampler!.stop();
    sampler = undefined;
    await client.stop();
    expectSingleWriter(report);
    expect(holderSequence(report)).toEqual([old.pid, next.pid]);
    expectHandedOver(report, old, next);
    expect(report.parkedGenerations).toContain(2);
    await expectAllAcknowledged(pe, client.acks);
  });

  it("kill -9 of the writer while the standby is parked: the standby takes over, every acknowledged write kept", async () => {
    const { pe, old, next, client } = await writerAndStandby("kill-old-parked");
    process.kill(old.pid, "SIGKILL");
    await serving(pe, 2);
    const acked = client.acks.length;
    await until("writes acknowledged by the successor", () => (client.acks.length > acked + 20 ? true : undefined));
    const report = await sampler!.stop();
    sampler = undefined;
    await client.stop();
    expectSingleWriter(report);
    expect(holderSequence(report)).toEqual([old.pid, next.pid]);
    expectHandedOver(report, old, next);
    await expectAllAcknowledged(pe, client.acks);
  });

  it("kill -9 of the old writer during its final commit (its commit's scratch file on the volume): the standby takes over", async () => {
    const { pe, old, next, client } = await writerAndStandby("kill-old-commit");
    const dataDir = path.join(pe.dir, "data");
    const commitScratch = () => fs.readdirSync(dataDir).find((name) => name.startsWith(".scratch-commit-"));
    expect(commitScratch(), "no periodic commit runs (interval 10 min): a scratch commit now is the final one").toBeUndefined();
    process.kill(old.pid, "SIGTERM");
    await until("the final commit under way", commitScratch, 30_000);
    process.kill(old.pid, "SIGKILL");
    await serving(pe, 2);
    const acked = client.acks.length;
    await until("writes acknowledged by the successor", () => (client.acks.length > acked + 20 ? true : undefined));
    const report = await sampler!.stop();
    sampler = undefined;
    await client.stop();
    expectSingleWriter(report);
    expect(holderSequence(report)).toEqual([old.pid, next.pid]);
    expectHandedOver(report, old, next);
    await expectAllAcknowledged(pe, client.acks);
  });

  it("kill -9 of the parked standby: the writer never noticed; kill -9 of the successor just after take-over: the next one takes over", async () => {
    const { pe, old, next, client } = await writerAndStandby("kill-standby");
    process.kill(next.pid, "SIGKILL");
    await exited(next);
    const acked = client.acks.length;
    await until("the writer serving on", () => (client.acks.length >= acked + 100 ? true : undefined));
    expect(writerLockHolders(pe.dir)).toEqual([old.pid]);

    // A new standby; the old writer stops; the successor is killed the moment the observer sees it hold the lock.
    const third = await runSession(pe, 3);
    await parked(pe, 3);
    await docker.getContainer(old.id).stop({ t: 10 });
    await sampler!.seen((s) => s.holders.includes(third.pid), "the successor holding the lock");
    process.kill(third.pid, "SIGKILL");
    await exited(third);
    // What comes next (a revert, or the next up): one more executable, which finds every acknowledged write.
    const fourth = await runSession(pe, 4);
    await serving(pe, 4);
    const after = client.acks.length;
    await until("writes acknowledged by the last one", () => (client.acks.length > after + 20 ? true : undefined));
    const report = await sampler!.stop();
    sampler = undefined;
    await client.stop();
    expectSingleWriter(report);
    expect(holderSequence(report)).toEqual([old.pid, third.pid, fourth.pid]);
    expect(report.processes.find((p) => p.pid === next.pid), "the killed standby never held the lock nor opened state.db").toBeUndefined();
    await expectAllAcknowledged(pe, client.acks);
  });

  it("two standbys of one generation racing for the lock: one serves, the other stays parked and opens nothing", async () => {
    const { pe, old, next, client } = await writerAndStandby("race");
    const twin = await runSession(pe, 2);
    await until("the twin parked (waiting on the lock file: open, not held)", () => (waitingOnLock(twin.pid, pe.dir) ? true : undefined));
    process.kill(old.pid, "SIGKILL");
    await serving(pe, 2);
    const acked = client.acks.length;
    await until("writes acknowledged by the winner", () => (client.acks.length > acked + 100 ? true : undefined));
    const report = await sampler!.stop();
    sampler = undefined;
    await client.stop();
    expectSingleWriter(report);
    const sequence = holderSequence(report);
    expect(sequence).toHaveLength(2);
    expect([next.pid, twin.pid]).toContain(sequence[1]);
    const loser = sequence[1] === next.pid ? twin : next;
    expect(alive(loser.pid), "the loser still parked, alive").toBe(true);
    expect(report.processes.find((p) => p.pid === loser.pid), "the loser never held the lock nor opened state.db").toBeUndefined();
    await expectAllAcknowledged(pe, client.acks);
  });

  it("a paused (SIGSTOP) old writer keeps the lock; woken after the newer generation was recorded, its writes are refused; the successor serves only once it is gone", async () => {
    const { pe, old, next, client } = await writerAndStandby("paused");
    process.kill(old.pid, "SIGSTOP");
    await until("the writer stopped", () => (/^State:\s+T/m.test(readProcStatus(old.pid)) ? true : undefined));
    const ackedWhilePaused = client.acks.length;
    // What the routine does when it replaces: the newer generation is recorded in the volume's meta record.
    const metaFile = path.join(pe.dir, META_RECORD.file);
    fs.writeFileSync(`${metaFile}.test`, META_RECORD.encode({ peId: pe.name, generation: 2, volume: pe.volume, updatedAt: new Date().toISOString() }));
    fs.renameSync(`${metaFile}.test`, metaFile);
    expect(writerLockHolders(pe.dir)).toEqual([old.pid]);

    process.kill(old.pid, "SIGCONT");
    // Woken, it answers — and refuses every write: it is fenced by the recorded generation.
    const refused = await until("a write refused by the woken writer", async () => {
      const res = await fetch(`http://127.0.0.1:${pe.port}/sessions/probe`, { method: "PUT", body: JSON.stringify({ n: 1 }) }).catch(() => undefined);
      return res && res.status !== 200 ? res : undefined;
    });
    const refusedAt = Date.now();
    expect(refused.status).toBe(503);
    expect(await refused.text()).toMatch(/generation 1 is stale/);
    for (let probe = 0; probe < 20; probe++) {
      const res = await fetch(`http://127.0.0.1:${pe.port}/sessions/probe`, { method: "PUT", body: JSON.stringify({ n: probe }) });
      expect(res.status, "every write refused once fenced").toBe(503);
    }
    // The client's writes too: none acknowledged once the fence refused one (its earlier ones were in flight at the pause).
    expect(client.acks.filter((ack) => ack.at >= refusedAt)).toEqual([]);
    expect(client.acks.length).toBeLessThanOrEqual(ackedWhilePaused + 4); // at most one in flight per client writer
    expect(writerLockHolders(pe.dir)).toEqual([old.pid]); // alive, it still holds the lock: the standby waits
    expect(readReports(pe.dir).parked.map((s) => s.generation)).toEqual([2]);

    process.kill(old.pid, "SIGKILL"); // what reseat must do with it: end it
    await serving(pe, 2);
    const acked = client.acks.length;
    await until("writes acknowledged by the successor", () => (client.acks.length > acked + 20 ? true : undefined));
    const report = await sampler!.stop();
    sampler = undefined;
    await client.stop();
    expectSingleWriter(report);
    expect(holderSequence(report)).toEqual([old.pid, next.pid]);
    expectHandedOver(report, old, next);
    const oldSeen = report.processes.find((p) => p.pid === old.pid)!;
    const nextSeen = report.processes.find((p) => p.pid === next.pid)!;
    expect(nextSeen.heldAt![0]).toBeGreaterThan(oldSeen.heldAt![1]);
    await expectAllAcknowledged(pe, client.acks);
  });
});
