// Single writer across the standby hand-over, proven from outside reseat: an observer on the host (the kernel's
// /proc/locks for the volume's writer lock, every process's open state.db from /proc/<pid>/fd and fdinfo, the
// workloads' own reports; test/support/writerObserver.ts) samples throughout while a client PUTs continuously and
// the hand-over is hit with faults: kill -9 of either side at each step, a paused (SIGSTOP) old writer, two
// successors racing. After each case: every acknowledged write is there, the sampler never saw two writers, and
// a parked standby never had state.db open. Real Docker Engine, the real session workload image.
import Dockerode from "dockerode";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { META_RECORD, RECORD_DIR, RESEAT_ENV, STORE_MOUNT, WRITER_LOCK_FILE, standbyStatusFile } from "../../packages/state/src/contract";
import {
  CLI,
  cleanup,
  docker,
  expectOk,
  lastAcked,
  makeProject,
  mustSucceed,
  reseatCli,
  runningOf,
  sessionSpec,
  setSpecs,
  startPersistentWriters,
  type Ack,
  type Project,
} from "../support/harness";
import { freePort } from "../support/remoteEngines/daemon";
import { expectSingleWriter, holderSequence, until } from "../support/writerVerdicts";
import { TestEngine } from "../support/remoteEngines/testEngine";
import {
  containerOfPid,
  describeReport,
  dockerVolumeDir,
  kubernetesClaimDir,
  readReports,
  workloadIdentity,
  startWriterSampler,
  writerLockHolders,
  type SamplerReport,
  type WriterSampler,
} from "../support/writerObserver";

const IMAGE = "reseat-session-workload:v1";
const RUN = `it-swh-${process.pid}`;
/** The workload's user (the image's USER): it must own the volume's root, as reseat's volume preparation makes it. */
const WORKLOAD_UID = 1000;

const madeContainers = new Set<string>();
const madeVolumes = new Set<string>();

afterEach(async () => {
  for (const id of madeContainers)
    await docker
      .getContainer(id)
      .remove({ force: true })
      .catch(() => undefined);
  madeContainers.clear();
});
afterAll(async () => {
  for (const name of madeVolumes)
    await docker
      .getVolume(name)
      .remove()
      .catch(() => undefined);
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
  expect(body.seq).toBeGreaterThanOrEqual(acks.reduce((max, a) => Math.max(max, a.seq), 0)); // (no spread: acks run to 10⁵)
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

  it("is not blind: a process with state.db open writable beside the writer, and one of a parked generation, are reported", async () => {
    const pe = await makePe("control");
    const writer = await runSession(pe, 1);
    await serving(pe, 1);
    sampler = await startWriterSampler(pe.dir);
    // A rogue executable of generation 7 that opens the database without the lock (as a workload without the
    // library, or a broken one, could), while a parked report of its generation is on the volume.
    const status = JSON.parse(fs.readFileSync(path.join(pe.dir, RECORD_DIR, "status.json"), "utf8")) as Record<string, unknown>;
    fs.writeFileSync(path.join(pe.dir, standbyStatusFile(7)), JSON.stringify({ ...status, generation: 7, phase: "parked" }));
    const rogue = await docker.createContainer({
      name: `${pe.name}-rogue`,
      Image: IMAGE,
      Entrypoint: ["node", "-e", 'require("fs").openSync("/state/data/state.db", "r+"); setInterval(() => {}, 1e9)'],
      Env: [`${RESEAT_ENV.generation}=7`, `${RESEAT_ENV.standby}=1`],
      Labels: { "io.reseat.test": RUN },
      HostConfig: { NetworkMode: "none", Mounts: [{ Type: "volume", Source: pe.volume, Target: "/state" }] },
    });
    madeContainers.add(rogue.id);
    await rogue.start();
    const roguePid = (await rogue.inspect()).State.Pid;
    await sampler.seen((s) => s.writable.includes(roguePid) && s.holders.includes(writer.pid), "the rogue opener beside the writer");
    const report = await sampler.stop();
    sampler = undefined;
    expect(report.maxWritable).toBe(2);
    expect(report.maxWriters).toBe(2);
    expect(report.maxHolders).toBe(1);
    expect(report.violations.join("\n")).toContain("two processes with state.db open writable");
    expect(report.violations.join("\n")).toContain(`a parked standby (pid ${roguePid}, generation 7) has state.db open`);
    expect(report.processes.find((p) => p.pid === roguePid)).toMatchObject({ generation: 7, standby: true, container: rogue.id, held: null });
  });

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
    const killed = report.processes.find((p) => p.pid === next.pid);
    expect(killed?.held ?? null, "the killed standby never held the lock").toBeNull();
    expect(killed?.wrote ?? null, "the killed standby never opened state.db").toBeNull();
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
    const loserSeen = report.processes.find((p) => p.pid === loser.pid);
    expect(loserSeen, "the loser never held the lock nor opened state.db").toMatchObject({ held: null, wrote: null });
    expect(loserSeen?.waitedAt, "the loser was seen waiting on the lock file").not.toBeNull();
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
    expect(refused.status).toBe(503);
    expect(await refused.text()).toMatch(/generation 1 is stale/);
    for (let probe = 0; probe < 20; probe++) {
      const res = await fetch(`http://127.0.0.1:${pe.port}/sessions/probe`, { method: "PUT", body: JSON.stringify({ n: probe }) });
      expect(res.status, "every write refused once fenced").toBe(503);
    }
    // The client's writes too: acknowledged since the pause are at most those in flight at the pause, one per client
    // writer (applied before it; their answers can come after the wake, even after the first refusal).
    expect(client.acks.length).toBeLessThanOrEqual(ackedWhilePaused + 4);
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

describe("the standby hand-over by reseat under faults (real Pulumi CLI), observed", () => {
  const peId = `${RUN}-pe`;
  let port = 0;
  let project: Project;
  let dir = "";
  let release = 0;
  let client: ReturnType<typeof startPersistentWriters>;

  const spec = () =>
    sessionSpec(peId, port, {
      handover: "standby",
      env: { PORT: String(port), RELEASE: String(release) },
      // No periodic commit: a commit under way after the stop is the old writer's final one.
      commitInterval: "10m",
      stop: { graceSeconds: 3 },
    });
  /** The next release: a changed env, so the next `up` replaces the executable. */
  const nextRelease = () => {
    release++;
    setSpecs(project, [spec()]);
  };

  beforeAll(async () => {
    await cleanup([peId]);
    port = await freePort();
    project = makeProject("single-writer-handover", []);
    nextRelease();
    await mustSucceed(project, "up");
    dir = await dockerVolumeDir(`reseat-${peId}-state`);
    client = startPersistentWriters(port, 4, "routine");
    await until("writes acknowledged", () => (client.acks.length >= 50 ? true : undefined));
  });
  afterAll(async () => {
    await client?.stop();
    await cleanup([peId]);
  });

  /** The serving writer: the lock's one holder, as the kernel says, and its container. */
  async function writer(): Promise<Session> {
    const [pid] = await until("a lock holder", () => {
      const holders = writerLockHolders(dir);
      return holders.length === 1 ? holders : undefined;
    });
    const id = containerOfPid(pid!)!;
    return { id, pid: pid!, generation: workloadIdentity(pid!).generation! };
  }

  /** The running executable of the PE that is not `old`: the standby (parked, or taking over). */
  async function successor(old: Session): Promise<Session> {
    const id = await until("the successor running", async () => (await runningOf(peId)).find((c) => c.Id !== old.id)?.Id);
    const info = await docker.getContainer(id).inspect();
    return { id, pid: info.State.Pid, generation: workloadIdentity(info.State.Pid).generation! };
  }

  /** Runs `body` with the observer sampling; then: never two writers, every acknowledged write served. */
  async function observed(body: (sampler: WriterSampler) => Promise<void>): Promise<SamplerReport> {
    const sampler = await startWriterSampler(dir);
    try {
      await body(sampler);
    } catch (error) {
      await sampler.stop().catch(() => undefined);
      throw error;
    }
    // The PE converged: writes are acknowledged again (by whoever serves now) before the verdict.
    const acked = client.acks.length;
    await until("writes acknowledged after the case", () => (client.acks.length > acked + 20 ? true : undefined));
    const report = await sampler.stop();
    expectSingleWriter(report);
    await expectAllAcknowledged({ port } as Pe, client.acks);
    expect(await runningOf(peId)).toHaveLength(1);
    return report;
  }

  /** `up` stopped at a fault point: returns once the provider waits there, with a way to kill the whole run. */
  async function upToFault(point: string): Promise<{ kill: () => Promise<void> }> {
    const marker = path.join(project.dir, `fault-${point}-${release}`);
    const child = spawn(process.execPath, [CLI, "up", "--cwd", project.dir, "--stack", project.stack, "--json"], {
      detached: true,
      stdio: "ignore",
      env: { ...process.env, RESEAT_FAULT_POINT: point, RESEAT_FAULT_MARKER: marker },
    });
    await until(`the fault point ${point}`, () => (fs.existsSync(marker) ? true : undefined), 120_000);
    return {
      kill: async () => {
        const providerPid = Number(fs.readFileSync(marker, "utf8").split(" ")[1]);
        process.kill(-child.pid!, "SIGKILL"); // the reseat CLI, the Pulumi CLI and its plugins
        try {
          process.kill(providerPid, "SIGKILL");
        } catch {
          // gone with its process group
        }
      },
    };
  }

  /** The documented recovery after a killed run: release its stack lock, then up with refresh. */
  async function recover(): Promise<void> {
    await mustSucceed(project, "cancel");
    await mustSucceed(project, "up", "--clear-pending-creates", "--refresh");
  }

  it("kill -9 of the old executable before its successor parked (after-prepare); recovery serves every acknowledged write", async () => {
    await observed(async () => {
      nextRelease();
      const run = await upToFault("after-prepare");
      const old = await writer();
      process.kill(old.pid, "SIGKILL");
      await run.kill();
      await recover();
    });
  });

  it("kill -9 of the old executable while the successor is parked (after-parked): the standby takes over by itself", async () => {
    const report = await observed(async (sampler) => {
      nextRelease();
      const run = await upToFault("after-parked");
      const old = await writer();
      const next = await successor(old);
      expect(readReports(dir).parked.map((s) => s.generation)).toContain(next.generation);
      process.kill(old.pid, "SIGKILL");
      await sampler.seen((s) => s.holders.includes(next.pid), "the standby holding the lock");
      await run.kill();
      await recover();
    });
    expect(report.parkedGenerations.length).toBeGreaterThan(0);
  });

  it("kill -9 of the old executable during its final commit: the standby takes over, the up succeeds", async () => {
    await observed(async (sampler) => {
      nextRelease();
      const old = await writer();
      const dataDir = path.join(dir, "data");
      const commitScratch = () => fs.readdirSync(dataDir).find((name) => name.startsWith(".scratch-commit-"));
      const up = reseatCli(project, "up");
      await until("the successor parked", () => (readReports(dir).parked.length > 0 ? true : undefined), 120_000);
      expect(commitScratch()).toBeUndefined();
      await until("the old writer's final commit under way", commitScratch, 60_000);
      process.kill(old.pid, "SIGKILL");
      expectOk("up", await up);
      const next = await writer();
      expect(next.pid).not.toBe(old.pid);
      await sampler.seen((s) => s.holders.includes(next.pid), "the successor holding the lock");
    });
  });

  it("kill -9 of the parked standby (after-parked): the old executable serves on untouched; recovery replaces", async () => {
    await observed(async () => {
      nextRelease();
      const run = await upToFault("after-parked");
      const old = await writer();
      const next = await successor(old);
      process.kill(next.pid, "SIGKILL");
      await exited(next);
      const acked = client.acks.length;
      await until("the old writer serving on", () => (client.acks.length > acked + 50 ? true : undefined));
      expect(writerLockHolders(dir)).toEqual([old.pid]);
      await run.kill();
      await recover();
    });
  });

  it("kill -9 of the successor just after it took the lock: reverted or recovered, never two writers", async () => {
    await observed(async (sampler) => {
      nextRelease();
      const old = await writer();
      const up = reseatCli(project, "up");
      const takeOver = await sampler.seen((s) => s.holders.length === 1 && s.holders[0] !== old.pid, "a successor holding the lock", 120_000);
      process.kill(takeOver.holders[0]!, "SIGKILL");
      await up; // fails (reverted) or not: what matters is the single writer and the data
      nextRelease();
      await mustSucceed(project, "up");
    });
  });

  it("two ups racing on the PE: never two writers, and the PE converges", async () => {
    await observed(async () => {
      nextRelease();
      const results = await Promise.all([reseatCli(project, "up"), reseatCli(project, "up")]);
      expect(
        results.some((r) => r.code === 0 && r.doc.ok),
        JSON.stringify(results.map((r) => r.doc.error)),
      ).toBe(true);
      await mustSucceed(project, "up");
    });
  });

  for (const pause of ["SIGSTOP", "docker pause"] as const) {
    it(`the old executable paused (${pause}) during the hand-over: the standby waits while it holds the lock, serves only once it is gone`, async () => {
      const report = await observed(async () => {
        nextRelease();
        const old = await writer();
        const up = reseatCli(project, "up");
        await until("the successor parked", () => (readReports(dir).parked.length > 0 ? true : undefined), 120_000);
        if (pause === "SIGSTOP") process.kill(old.pid, "SIGSTOP");
        else await docker.getContainer(old.id).pause(); // the cgroup freezer
        // reseat stops it: SIGTERM stays pending in a stopped or frozen process; the grace runs out; SIGKILL ends it.
        expectOk("up", await up);
        expect(alive(old.pid)).toBe(false);
        const next = await writer();
        expect(next.pid).not.toBe(old.pid);
      });
      // The paused writer held the lock until it was gone; only then did the standby take it (and serve).
      const sequence = holderSequence(report);
      expect(sequence).toHaveLength(2);
      const [oldSeen, nextSeen] = sequence.map((pid) => report.processes.find((p) => p.pid === pid)!);
      expect(nextSeen!.heldAt![0]).toBeGreaterThan(oldSeen!.heldAt![1]);
    });
  }
});

// (d) A Docker Engine restart in the middle of the hand-over. The engine is one this test owns (a dockerd of its
// own, test/support/remoteEngines/testEngine.ts, as engineRestart.test.ts does): the machine's engine is never
// touched (~40 s: a second dockerd and containerd).
describe("the standby hand-over across an engine restart (a dockerd of the test's own), observed", () => {
  const peId = `${RUN}-restart`;
  let engine: TestEngine;
  let project: Project;
  let port = 0;
  let release = 0;

  const spec = () =>
    sessionSpec(peId, port, {
      handover: "standby",
      env: { PORT: String(port), RELEASE: String(release) },
      docker: { host: engine.unixHost },
      commitInterval: "10m",
      stop: { graceSeconds: 3 },
    });

  beforeAll(async () => {
    engine = await TestEngine.start();
    await engine.loadImages([IMAGE]);
    port = await freePort();
    release = 1;
    project = makeProject("single-writer-restart", [spec()]);
    await mustSucceed(project, "up");
  });
  afterAll(async () => {
    await engine?.destroy();
  });

  it("the engine stops (and with it both executables) while the standby is parked, and starts again: never two writers, every acknowledged write kept", async () => {
    const remote = new Dockerode({ socketPath: engine.socket });
    const dir = await dockerVolumeDir(`reseat-${peId}-state`, remote);
    const client = startPersistentWriters(port, 4, "restart");
    await until("writes acknowledged", () => (client.acks.length >= 50 ? true : undefined));
    const sampler = await startWriterSampler(dir);
    try {
      release++;
      setSpecs(project, [spec()]);
      const up = reseatCli(project, "up");
      await until("the successor parked", () => (readReports(dir).parked.length > 0 ? true : undefined), 120_000);
      await engine.stop(); // dockerd's shutdown stops every container: the old writer's final commit, the standby
      await up; // fails (the engine went away) or not: the next up converges
      await engine.start();
      await reseatCli(project, "cancel"); // nothing to cancel when the up ended by itself
      await mustSucceed(project, "up", "--refresh");
      const acked = client.acks.length;
      await until("writes acknowledged after the restart", () => (client.acks.length > acked + 20 ? true : undefined));
    } finally {
      await client.stop();
    }
    const report = await sampler.stop();
    expectSingleWriter(report);
    await expectAllAcknowledged({ port } as Pe, client.acks);
    expect((await remote.listContainers({ filters: { label: [`io.reseat.pe-id=${peId}`] } })).length).toBe(1);
  });
});
