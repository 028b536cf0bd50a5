import { mkdtempSync, promises as fs, readFileSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DirectoryStore, openState, statePaths, WriterLockTimeoutError } from "../../../packages/state/src/index";
import { META_RECORD, STATUS_RECORD, WRITER_LOCK_RANGE, type WorkloadStatus } from "../../../packages/state/src/contract";
import { compileStateLibrary, HANDOVER_SCRIPT, startWorkload, type Ack, type RunningWorkload } from "./childProcess";
import { latestValid, tempDir, writeMeta } from "./helpers";

// The standby hand-over, with real processes: a writer serving the volume, standbys parked on it, and
// observers outside the library — the kernel's /proc/locks (who holds the volume's writer lock), the
// processes' open files (/proc/<pid>/fd, fdinfo), the files' inodes, sizes and mtimes, the workloads'
// own reports. Every wait is on an event; the only fixed durations are observation windows in which
// something must NOT happen.

let libraryIndex = "";
let scriptFile = "";
const buildDir = mkdtempSync(path.join(tmpdir(), "reseat-state-build-"));
const running: RunningWorkload[] = [];

beforeAll(async () => {
  libraryIndex = await compileStateLibrary(buildDir);
  scriptFile = path.join(buildDir, "handover.js");
  await fs.writeFile(scriptFile, HANDOVER_SCRIPT);
});
afterAll(() => fs.rm(buildDir, { recursive: true, force: true }));
afterEach(async () => {
  for (const workload of running.splice(0)) {
    workload.child.kill("SIGKILL");
    await workload.exited;
  }
});

function start(env: Record<string, string>): RunningWorkload {
  const workload = startWorkload(scriptFile, libraryIndex, env);
  running.push(workload);
  return workload;
}

/** The pids holding a POSIX write lock on `file`'s writer-lock bytes, as the kernel reports them (blocked waiters excluded). */
function lockHolders(file: string): number[] {
  const st = statSync(file);
  const major = Math.floor(st.dev / 256) & 0xfff;
  const minor = (st.dev & 0xff) | ((Math.floor(st.dev / 4096) & 0xfff00) >>> 0);
  const device = `${major.toString(16).padStart(2, "0")}:${minor.toString(16).padStart(2, "0")}:${st.ino}`;
  const holders: number[] = [];
  for (const line of readFileSync("/proc/locks", "utf8").split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === "->") continue; // a waiter blocked in F_SETLKW, not a holder
    const [, kind, , mode, pid, dev, startByte, endByte] = fields;
    if (kind === "POSIX" && mode === "WRITE" && dev === device && Number(startByte) <= WRITER_LOCK_RANGE.start && Number(endByte) >= WRITER_LOCK_RANGE.end)
      holders.push(Number(pid));
  }
  return holders;
}

/** Every lock line of /proc/locks that names `pid` (any kind, any file). */
function locksOf(pid: number): string[] {
  return readFileSync("/proc/locks", "utf8")
    .split("\n")
    .filter((line) => line.trim().split(/\s+/)[line.includes("->") ? 5 : 4] === String(pid));
}

/** The files under `dir` a process has open, with whether each is open for writing (from /proc/<pid>/fdinfo). */
function openFilesUnder(pid: number, dir: string): Array<{ file: string; writable: boolean }> {
  const found: Array<{ file: string; writable: boolean }> = [];
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return found; // exited
  }
  for (const fd of fds) {
    try {
      const file = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (!file.startsWith(dir + path.sep)) continue;
      const flags = parseInt(/^flags:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"))![1]!, 8);
      found.push({ file: path.relative(dir, file), writable: (flags & 3) !== 0 });
    } catch {
      // closed meanwhile
    }
  }
  return found;
}

/** Every file in the volume: inode, size and mtime, to show that nothing was written. */
function fingerprintVolume(dir: string, skip: (name: string) => boolean): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (sub: string) => {
    for (const entry of readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const rel = path.join(sub, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (!skip(entry.name)) {
        const st = statSync(path.join(dir, rel), { bigint: true });
        out[rel] = `${st.ino}:${st.size}:${st.mtimeNs}`;
      }
    }
  };
  walk("");
  return out;
}

function readStatus(file: string): WorkloadStatus {
  return STATUS_RECORD.decode(readFileSync(file, "utf8"));
}

/** Watch for `ms`, sampling every 10 ms: `check` must hold throughout (a window in which nothing may change). */
async function holdsFor(ms: number, check: () => void): Promise<number> {
  const end = Date.now() + ms;
  let samples = 0;
  while (Date.now() < end) {
    check();
    samples++;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  check();
  return samples + 1;
}

/** Reopen the volume in this process (a later generation) and check that every acknowledged write is there. */
async function expectAllAcked(stateDir: string, generation: number, prefix: string, acks: Ack[]): Promise<void> {
  expect(acks.length).toBeGreaterThan(0);
  const state = await openState({ stateDir, peId: "pe-1", generation, store: null, env: {} });
  try {
    for (const { n, seq } of acks) {
      expect(state.get(`${prefix}-${n}`), `acknowledged write ${prefix}-${n}`).toEqual({ n });
      expect(seq).toBeLessThanOrEqual(state.seq);
    }
  } finally {
    await state.close();
  }
}

const maxSeq = (acks: Ack[]) => Math.max(...acks.map((ack) => ack.seq));

describe("the volume's writer lock", () => {
  it("is held by the serving writer alone (in /proc/locks), and another opener waits, then gives up", async () => {
    const stateDir = tempDir();
    const writer = start({ STATE_DIR: stateDir, GENERATION: "1", PREFIX: "w", WRITES: "10" });
    await writer.event("serving");
    const { lockFile } = statePaths(stateDir);
    expect(lockHolders(lockFile)).toEqual([writer.pid]);
    // The lock file carries no data: the lock is the kernel's, on its inode.
    expect(statSync(lockFile).size).toBe(0);
    const error = await openState({ stateDir, peId: "pe-1", generation: 2, store: null, lockTimeoutMs: 200, env: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WriterLockTimeoutError);
    expect(readStatus(statePaths(stateDir).statusFile)).toMatchObject({ generation: 1, phase: "serving" });
    writer.child.kill("SIGKILL");
    await writer.exited;
    expect(lockHolders(lockFile)).toEqual([]); // released by the kernel at the holder's death
    const next = await openState({ stateDir, peId: "pe-1", generation: 2, store: null, lockTimeoutMs: 200, env: {} });
    expect(lockHolders(lockFile)).toEqual([process.pid]);
    await next.close();
    expect(lockHolders(lockFile)).toEqual([]); // close() lets go
  });
});

describe("standby hand-over with real processes", () => {
  it("(a) a standby parks while the writer lives: reports parked, opens nothing writable but the lock file, writes nothing", async () => {
    const stateDir = tempDir();
    const paths = statePaths(stateDir);
    const writer = start({ STATE_DIR: stateDir, GENERATION: "1", PREFIX: "w", WRITES: "300" });
    await writer.event("serving");
    await writer.waitForAcks(300); // then idle: from here on nothing should change on the volume
    const before = fingerprintVolume(stateDir, (name) => name.startsWith("standby-g2.json"));

    const standby = start({ STATE_DIR: stateDir, GENERATION: "2", PREFIX: "s", STANDBY: "1" });
    await standby.event("parked");
    const parked = readStatus(paths.standbyStatusFile(2));
    expect(parked).toMatchObject({ peId: "pe-1", generation: 2, phase: "parked", resumedFrom: null });
    // The writer's own status is untouched: it still says who serves.
    expect(readStatus(paths.statusFile)).toMatchObject({ generation: 1, phase: "serving" });

    const samples = await holdsFor(500, () => {
      expect(lockHolders(paths.lockFile)).toEqual([writer.pid]);
      expect(locksOf(standby.pid)).toEqual([]); // between its tries it holds no lock of any kind
      expect(locksOf(writer.pid).length).toBeGreaterThanOrEqual(2); // the writer lock and the database's own
      // At most the lock file, between two tries; never the database, its WAL or a record.
      for (const open of openFilesUnder(standby.pid, stateDir)) expect(open.file).toBe(path.relative(stateDir, paths.lockFile));
      expect(standby.has("serving")).toBe(false);
    });
    expect(samples).toBeGreaterThan(10);
    expect(fingerprintVolume(stateDir, (name) => name.startsWith("standby-g2.json"))).toEqual(before);
    // The writer still has the database open for writing; the standby had nothing of the state open at all.
    expect(openFilesUnder(writer.pid, stateDir)).toContainEqual({ file: path.join("data", "state.db"), writable: true });
  });

  it("(b) the writer's graceful stop (final commit, exit) hands over: the standby serves with every acknowledged write", async () => {
    const stateDir = tempDir();
    const storeDir = tempDir();
    const paths = statePaths(stateDir);
    await writeMeta(stateDir, 1);
    const writer = start({ STATE_DIR: stateDir, STORE_DIR: storeDir, GENERATION: "1", PREFIX: "w", HANDLE_SIGNALS: "1" });
    await writer.event("serving");
    const standby = start({ STATE_DIR: stateDir, STORE_DIR: storeDir, GENERATION: "2", PREFIX: "s", STANDBY: "1", WRITES: "50" });
    await standby.event("parked");
    await writer.waitForAcks(300);

    writer.child.kill("SIGTERM");
    const serving = await standby.event("serving");
    const { code } = await writer.exited;
    expect(code).toBe(0);
    // The standby serves from the volume, past every acknowledged write.
    expect(serving.args[0]).toBe("local");
    expect(Number(serving.args[1])).toBeGreaterThanOrEqual(maxSeq(writer.acks));
    // The final commit was not fenced out: the standby claimed the store only once it held the lock.
    const latest = await latestValid(new DirectoryStore(storeDir, "pe-1"));
    expect(latest?.record.generation).toBe(1);
    expect(latest!.record.seq).toBeGreaterThanOrEqual(maxSeq(writer.acks));

    await standby.waitForAcks(50);
    expect(lockHolders(paths.lockFile)).toEqual([standby.pid]);
    expect(readStatus(paths.statusFile)).toMatchObject({ generation: 2, phase: "serving", resumedFrom: "local" });
    expect(META_RECORD.decode(readFileSync(paths.metaFile, "utf8")).generation).toBe(2); // recorded under the lock
    await expect(fs.access(paths.standbyStatusFile(2))).rejects.toThrow(); // its parked report is gone
    standby.child.kill("SIGKILL");
    await standby.exited;
    await expectAllAcked(stateDir, 3, "w", writer.acks);
    await expectAllAcked(stateDir, 3, "s", standby.acks);
  });

  it("(c) the writer killed (kill -9) mid-write hands over: the standby serves with every acknowledged write", async () => {
    const stateDir = tempDir();
    const paths = statePaths(stateDir);
    const writer = start({ STATE_DIR: stateDir, GENERATION: "1", PREFIX: "w", WRITERS: "8" });
    await writer.event("serving");
    const standby = start({ STATE_DIR: stateDir, GENERATION: "2", PREFIX: "s", STANDBY: "1", WRITES: "20" });
    await standby.event("parked");
    await writer.waitForAcks(500);
    writer.child.kill("SIGKILL");
    const serving = await standby.event("serving");
    await writer.exited;
    expect(serving.args[0]).toBe("local");
    expect(Number(serving.args[1])).toBeGreaterThanOrEqual(maxSeq(writer.acks));
    await standby.waitForAcks(20);
    expect(lockHolders(paths.lockFile)).toEqual([standby.pid]);
    standby.child.kill("SIGKILL");
    await standby.exited;
    await expectAllAcked(stateDir, 3, "w", writer.acks);
  });

  it("(d) a standby older than the newest generation never serves, even once the writer is gone", async () => {
    const stateDir = tempDir();
    const paths = statePaths(stateDir);
    const writer = start({ STATE_DIR: stateDir, GENERATION: "1", PREFIX: "w" });
    await writer.event("serving");
    const older = start({ STATE_DIR: stateDir, GENERATION: "4", PREFIX: "o", STANDBY: "1" });
    await older.event("parked");
    await writer.waitForAcks(100);
    // A newer replacement fixed generation 5 meanwhile (as the routine records it): 4 is stale now.
    await writeMeta(stateDir, 5);
    const statusBefore = readFileSync(paths.statusFile, "utf8");
    writer.child.kill("SIGKILL");
    const failed = await older.event("failed");
    expect(failed.args[0]).toBe("StaleGenerationError");
    const { code } = await older.exited;
    expect(code).toBe(3);
    expect(older.has("serving")).toBe(false);
    expect(lockHolders(paths.lockFile)).toEqual([]); // it let go: a newer standby can take over
    expect(readFileSync(paths.statusFile, "utf8")).toBe(statusBefore); // never wrote the writer's status
    expect(META_RECORD.decode(readFileSync(paths.metaFile, "utf8")).generation).toBe(5);
    await expect(fs.access(paths.standbyStatusFile(4))).rejects.toThrow();

    // And one that is already stale when it starts does not even park.
    const stale = start({ STATE_DIR: stateDir, GENERATION: "3", PREFIX: "x", STANDBY: "1" });
    expect((await stale.event("failed")).args[0]).toBe("StaleGenerationError");
    expect(stale.has("parked")).toBe(false);
    await expectAllAcked(stateDir, 5, "w", writer.acks);
  });

  it("(e) two standbys racing for one writer's lock: exactly one serves, the other stays parked while it lives", async () => {
    for (let round = 0; round < 3; round++) {
      const stateDir = tempDir();
      const paths = statePaths(stateDir);
      const writer = start({ STATE_DIR: stateDir, GENERATION: "1", PREFIX: "w" });
      await writer.event("serving");
      const standbys = [
        start({ STATE_DIR: stateDir, GENERATION: "2", PREFIX: "a", STANDBY: "1", LOCK_POLL_MS: "1" }),
        start({ STATE_DIR: stateDir, GENERATION: "2", PREFIX: "b", STANDBY: "1", LOCK_POLL_MS: "1" }),
      ];
      await Promise.all(standbys.map((standby) => standby.event("parked")));
      await writer.waitForAcks(100);
      writer.child.kill("SIGKILL");
      const winner = await Promise.any(standbys.map((standby) => standby.event("serving").then(() => standby)));
      const loser = standbys.find((standby) => standby !== winner)!;
      await winner.waitForAcks(200); // the winner serves on and on ...
      expect(loser.has("serving")).toBe(false); // ... and the loser is still parked
      expect(lockHolders(paths.lockFile)).toEqual([winner.pid]);
      for (const open of openFilesUnder(loser.pid, stateDir)) expect(open.file).toBe(path.relative(stateDir, paths.lockFile));
      for (const workload of [winner, loser]) {
        workload.child.kill("SIGKILL");
        await workload.exited;
      }
      await expectAllAcked(stateDir, 3, "w", writer.acks);
    }
  });

  it("(f) a stopped (SIGSTOP) writer keeps the lock: the standby waits until it is killed; woken, it is fenced", async () => {
    const stateDir = tempDir();
    const paths = statePaths(stateDir);
    const writer = start({ STATE_DIR: stateDir, GENERATION: "1", PREFIX: "w" });
    await writer.event("serving");
    const standby = start({ STATE_DIR: stateDir, GENERATION: "2", PREFIX: "s", STANDBY: "1", WRITES: "10" });
    await standby.event("parked");
    await writer.waitForAcks(100);

    writer.child.kill("SIGSTOP");
    // The routine records the newer generation: the paused writer must never write again once it wakes.
    await writeMeta(stateDir, 2);
    await holdsFor(400, () => {
      expect(lockHolders(paths.lockFile)).toEqual([writer.pid]); // the kernel does not release a stopped process's lock
      expect(standby.has("serving")).toBe(false);
    });

    writer.child.kill("SIGCONT");
    await writer.event("fenced"); // it woke, tried to write, and was refused by the fence ...
    await holdsFor(200, () => {
      expect(lockHolders(paths.lockFile)).toEqual([writer.pid]); // ... but, alive, it still holds the lock
      expect(standby.has("serving")).toBe(false);
    });

    writer.child.kill("SIGKILL"); // what reseat must do with a paused (or woken, fenced) old executable
    const serving = await standby.event("serving");
    await writer.exited;
    expect(Number(serving.args[1])).toBeGreaterThanOrEqual(maxSeq(writer.acks));
    await standby.waitForAcks(10);
    expect(lockHolders(paths.lockFile)).toEqual([standby.pid]);
    standby.child.kill("SIGKILL");
    await standby.exited;
    await expectAllAcked(stateDir, 3, "w", writer.acks);
  });

  it("(g) a parked standby told to stop (SIGTERM) just exits: the writer never noticed", async () => {
    const stateDir = tempDir();
    const paths = statePaths(stateDir);
    const writer = start({ STATE_DIR: stateDir, GENERATION: "1", PREFIX: "w", HANDLE_SIGNALS: "1" });
    await writer.event("serving");
    const standby = start({ STATE_DIR: stateDir, GENERATION: "2", PREFIX: "s", STANDBY: "1", HANDLE_SIGNALS: "1" });
    await standby.event("parked");
    standby.child.kill("SIGTERM"); // a standby that is given up on (e.g. the release is withdrawn)
    const { signal } = await standby.exited;
    expect(signal).toBe("SIGTERM"); // nothing to commit: no handler runs while parked
    const acked = writer.acks.length;
    await writer.waitForAcks(acked + 100); // the writer serves on, still the lock's only holder
    expect(lockHolders(paths.lockFile)).toEqual([writer.pid]);
    await expect(fs.access(paths.metaFile)).rejects.toThrow(); // it never recorded its generation
  });
});
