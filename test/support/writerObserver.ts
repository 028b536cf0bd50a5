// An observer of a state volume's writers from outside reseat and outside the workloads: the host kernel's own
// view. Who holds the volume's writer lock (the host's /proc/locks: a POSIX WRITE lock over WRITER_LOCK_RANGE on the
// inode of `.reseat/writer.lock`), which processes have the state database (`data/state.db`) open, and open for
// writing (/proc/<pid>/fd and fdinfo), which container or pod each is (/proc/<pid>/cgroup) and which generation
// (its own environment, /proc/<pid>/environ), and what the workloads report (status.json, standby-g<N>.json).
//
// The volume is found on the host: Docker's `Mountpoint` of the named volume; on the local Kubernetes cluster
// (which runs on this host) the directory of the claim's PersistentVolume (`local` or `hostPath`). Processes in
// containers see other paths (their mount), so open files are matched by device and inode, not by name.
//
// A sampler records continuously, in worker threads (the test's event loop and its clients keep running): every
// few ms the whole lock table and the open files of the lock's holders and of every process known to have state.db
// open; beside that, over and over, every process of the host (tens of ms a scan on a busy host: a process that
// opened state.db without the lock is found there). It checks on every sample and every scan:
//   - at most one process holds the writer lock;
//   - at most one process has state.db open for writing;
//   - at most one process is either (holder ∪ writable opener): never two distinct writers;
//   - a parked standby (a process whose generation has a parked report and that does not hold the lock) has
//     nothing of state.db open at all.
// Each sample is a consistent cut: the open files are scanned, then /proc/locks is read (the sample's instant T),
// then every process found with state.db open is checked again — it is counted only when the same descriptor
// still names the same file, so it had it open across T. A sample never claims two processes at once that were
// not both there at T. Sampling is an observation: nothing waits on it for synchronization.
import type Dockerode from "dockerode";
import * as fs from "node:fs";
import * as path from "node:path";
import { Worker } from "node:worker_threads";
import { RECORD_DIR, STATUS_RECORD, WRITER_LOCK_FILE, WRITER_LOCK_RANGE, type WorkloadStatus } from "../../packages/state/src/contract";
import { docker } from "./harness";
import { kubectlJson } from "./kubernetes";

/** The state database inside the volume (the state library's layout). */
export const STATE_DB_FILE = path.join("data", "state.db");

/** The host directory of a Docker named volume on a local engine (its Mountpoint: `/var/lib/docker/volumes/<name>/_data`). */
export async function dockerVolumeDir(volume: string, engine: Dockerode = docker): Promise<string> {
  const info = (await engine.getVolume(volume).inspect()) as { Driver: string; Mountpoint: string };
  if (info.Driver !== "local" || !info.Mountpoint) throw new Error(`volume ${volume}: driver ${info.Driver} has no host directory to observe`);
  return info.Mountpoint;
}

/** The host directory of a Kubernetes claim on the local cluster: its bound PersistentVolume's `local` or `hostPath` path. */
export async function kubernetesClaimDir(namespace: string, claim: string): Promise<string> {
  const pvc = await kubectlJson<{ spec: { volumeName?: string } }>("-n", namespace, "get", "pvc", claim);
  if (!pvc.spec.volumeName) throw new Error(`claim ${namespace}/${claim} is not bound to a volume yet`);
  const pv = await kubectlJson<{ spec: { local?: { path: string }; hostPath?: { path: string } } }>("get", "pv", pvc.spec.volumeName);
  const dir = pv.spec.local?.path ?? pv.spec.hostPath?.path;
  if (!dir) throw new Error(`volume ${pvc.spec.volumeName} of claim ${namespace}/${claim} is neither local nor hostPath: no host directory`);
  return dir;
}

/** `<maj>:<min>:<inode>` as /proc/locks prints a file (major and minor in hex, two digits at least). */
export function procLocksId(file: string): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return undefined; // not made yet
  }
  const major = Math.floor(st.dev / 256) & 0xfff;
  const minor = (st.dev & 0xff) | ((Math.floor(st.dev / 4096) & 0xfff00) >>> 0);
  return `${major.toString(16).padStart(2, "0")}:${minor.toString(16).padStart(2, "0")}:${st.ino}`;
}

/** The pids holding the volume's writer lock, as the host kernel reports them (waiters blocked in F_SETLKW excluded). */
export function writerLockHolders(volumeDir: string): number[] {
  return holdersIn(fs.readFileSync("/proc/locks", "utf8"), procLocksId(path.join(volumeDir, WRITER_LOCK_FILE)));
}

function holdersIn(locks: string, fileId: string | undefined): number[] {
  if (!fileId) return [];
  const holders: number[] = [];
  for (const line of locks.split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === "->") continue;
    const [, kind, , mode, pid, id, start, end] = fields;
    if (
      kind === "POSIX" &&
      mode === "WRITE" &&
      id === fileId &&
      Number(start) <= WRITER_LOCK_RANGE.start &&
      (end === "EOF" || Number(end) >= WRITER_LOCK_RANGE.end)
    )
      holders.push(Number(pid));
  }
  return holders;
}

export interface OpenDatabase {
  pid: number;
  fd: number;
  /** Opened O_WRONLY or O_RDWR (fdinfo flags & O_ACCMODE). */
  writable: boolean;
}

/** Every process of the host with the volume's state.db open (by device and inode, whatever path its mount gives it). */
export function stateDbOpeners(volumeDir: string): OpenDatabase[] {
  let st: fs.Stats;
  try {
    st = fs.statSync(path.join(volumeDir, STATE_DB_FILE));
  } catch {
    return [];
  }
  const found: OpenDatabase[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue; // exited, or a kernel thread
    }
    for (const fd of fds) {
      try {
        if (!fs.readlinkSync(`/proc/${entry}/fd/${fd}`).includes("state.db")) continue;
        const target = fs.statSync(`/proc/${entry}/fd/${fd}`);
        if (target.dev !== st.dev || target.ino !== st.ino) continue;
        const flags = parseInt(/^flags:\s*(\d+)/m.exec(fs.readFileSync(`/proc/${entry}/fdinfo/${fd}`, "utf8"))![1]!, 8);
        found.push({ pid: Number(entry), fd: Number(fd), writable: (flags & 3) !== 0 });
      } catch {
        // closed meanwhile
      }
    }
  }
  return found;
}

/** The container (Docker) or pod container (Kubernetes) a host process runs in: the 64-hex id in its cgroup, if any. */
export function containerOfPid(pid: number): string | undefined {
  try {
    return /([0-9a-f]{64})/.exec(fs.readFileSync(`/proc/${pid}/cgroup`, "utf8"))?.[1];
  } catch {
    return undefined;
  }
}

/** A process's own RESEAT_GENERATION and RESEAT_STANDBY, from its environment as it was started. */
export function workloadIdentity(pid: number): { generation?: number; standby: boolean } {
  try {
    const env = fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    const value = (name: string) => env.find((line) => line.startsWith(`${name}=`))?.slice(name.length + 1);
    const generation = value("RESEAT_GENERATION");
    return { generation: generation === undefined ? undefined : Number(generation), standby: value("RESEAT_STANDBY") === "1" };
  } catch {
    return { standby: false };
  }
}

export interface WorkloadReports {
  /** The writer's status.json (undefined before any writer served). */
  status?: WorkloadStatus;
  /** Every parked report (`.reseat/standby-g<N>.json`) present. */
  parked: WorkloadStatus[];
}

/** What the workloads report on the volume themselves: the serving writer's status and the parked standbys. */
export function readReports(volumeDir: string): WorkloadReports {
  const dir = path.join(volumeDir, RECORD_DIR);
  const decode = (file: string) => {
    try {
      return STATUS_RECORD.decode(fs.readFileSync(path.join(dir, file), "utf8"));
    } catch {
      return undefined; // absent, or being replaced (records are written by rename; a vanished file is gone)
    }
  };
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    // no records yet
  }
  return {
    status: decode("status.json"),
    parked: names
      .filter((name) => /^standby-g\d+\.json$/.test(name))
      .map(decode)
      .filter((status): status is WorkloadStatus => status !== undefined),
  };
}

/** One process the sampler saw holding the lock or having state.db open. */
export interface ObservedProcess {
  pid: number;
  container?: string;
  generation?: number;
  standby: boolean;
  /** Sample indexes (first, last) in which it held the writer lock / had state.db open for writing; null: never. */
  held: [number, number] | null;
  wrote: [number, number] | null;
  /** First and last sample (wall-clock ms) in which it held the lock. */
  heldAt: [number, number] | null;
  /** First and last sample (wall-clock ms) in which it had the lock file open without holding the lock: waiting for it. */
  waitedAt: [number, number] | null;
}

export interface SampledState {
  index: number;
  /** Wall-clock ms (the sample's instant T: /proc/locks read). */
  at: number;
  holders: number[];
  writable: number[];
  /** Processes with state.db open read-only. */
  readOnly: number[];
  /** Generations with a parked report at the sample's start. */
  parked: number[];
}

export interface SamplerReport {
  samples: number;
  /** Scans of every process of the host, beside the samples (which scan the lock's holders and known openers). */
  fullScans: number;
  /** The longest time between two full scans (ms). */
  longestFullScanGapMs: number;
  maxHolders: number;
  maxWritable: number;
  /** The most distinct processes at once holding the lock or having state.db open writable. */
  maxWriters: number;
  /** Each sample breaking an invariant, described (at most 50 kept). */
  violations: string[];
  /** Generations ever seen parked, each with the pids seen for it while parked (from /proc/<pid>/environ). */
  parkedGenerations: number[];
  processes: ObservedProcess[];
  /** Every sample in which the holders, writers or parked reports changed (the first and last always). */
  changes: SampledState[];
  /** The longest time between two samples (ms): what the sampler could have missed. */
  longestGapMs: number;
}

export interface WriterSampler {
  /** The changes seen so far (holders, writers, parked reports), in order. */
  readonly changes: SampledState[];
  /** Resolves with the first sample (already taken or to come) for which `check` holds. */
  seen(check: (sample: SampledState) => boolean, what: string, timeoutMs?: number): Promise<SampledState>;
  stop(): Promise<SamplerReport>;
}

/**
 * Starts sampling the volume's writers (see the top of this file): one worker samples `intervalMs` (2) after each
 * sample ends — the whole lock table, and the open files of the lock's holders and of the processes known to have
 * state.db open (well under a ms) —, another scans every process of the host `fullScanIntervalMs` (50) after each
 * scan ends (tens of ms on a busy host, hundreds while Pulumi runs). Resolves once both took their first sample.
 */
export async function startWriterSampler(volumeDir: string, options: { intervalMs?: number; fullScanIntervalMs?: number } = {}): Promise<WriterSampler> {
  const files = { lockFile: path.join(volumeDir, WRITER_LOCK_FILE), dbFile: path.join(volumeDir, STATE_DB_FILE), recordDir: path.join(volumeDir, RECORD_DIR) };
  const start = (full: boolean, intervalMs: number) =>
    new Worker(SAMPLER_SOURCE, { eval: true, workerData: { ...files, range: WRITER_LOCK_RANGE, full, intervalMs } });
  const targeted = start(false, options.intervalMs ?? 2);
  const full = start(true, options.fullScanIntervalMs ?? 50);
  const changes: SampledState[] = [];
  const listeners = new Set<() => void>();
  let failure: Error | undefined;
  const reports = new Map<Worker, (value: SamplerReport) => void>();
  let firstSamples = 0;
  let firstSample: () => void = () => undefined;
  const first = new Promise<void>((resolve) => (firstSample = resolve));
  for (const worker of [targeted, full]) {
    type Message = { kind: "first" } | { kind: "found"; pids: number[] } | { kind: "change"; sample: SampledState } | { kind: "report"; report: SamplerReport };
    worker.on("message", (message: Message) => {
      if (message.kind === "found") targeted.postMessage({ known: message.pids });
      else if (message.kind === "first") {
        if (++firstSamples === 2) firstSample();
      } else if (message.kind === "change") {
        changes.push(message.sample);
        for (const listener of [...listeners]) listener();
      } else reports.get(worker)?.(message.report);
    });
    worker.on("error", (error) => {
      failure = error;
      firstSample();
      for (const listener of [...listeners]) listener();
    });
  }
  await first;
  if (failure) throw failure;
  const reportOf = async (worker: Worker) => {
    const done = new Promise<SamplerReport>((resolve) => reports.set(worker, resolve));
    worker.postMessage("stop");
    const result = await done;
    await worker.terminate();
    return result;
  };
  return {
    changes,
    seen: (check, what, timeoutMs = 60_000) =>
      new Promise<SampledState>((resolve, reject) => {
        const attempt = () => {
          const found = changes.find(check);
          if (found) finish(() => resolve(found));
          else if (failure) finish(() => reject(failure));
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`the sampler did not see ${what} within ${timeoutMs} ms`))), timeoutMs);
        const finish = (settle: () => void) => {
          clearTimeout(timer);
          listeners.delete(attempt);
          settle();
        };
        listeners.add(attempt);
        attempt();
      }),
    stop: async () => {
      if (failure) throw failure;
      const [often, whole] = await Promise.all([reportOf(targeted), reportOf(full)]);
      return mergeReports(often, whole);
    },
  };
}

/** The targeted sampler's report, with what the full scans found besides (their violations, processes it never saw). */
function mergeReports(often: SamplerReport, whole: SamplerReport): SamplerReport {
  const processes = new Map(often.processes.map((p) => [p.pid, { ...p }]));
  for (const p of whole.processes) {
    const known = processes.get(p.pid);
    if (!known)
      processes.set(p.pid, { ...p, held: null, wrote: null }); // sample indexes are the targeted sampler's
    else {
      const span = (a: [number, number] | null, b: [number, number] | null): [number, number] | null =>
        a && b ? [Math.min(a[0], b[0]), Math.max(a[1], b[1])] : (a ?? b);
      known.heldAt = span(known.heldAt, p.heldAt);
      known.waitedAt = span(known.waitedAt, p.waitedAt);
    }
  }
  return {
    ...often,
    fullScans: whole.samples,
    longestFullScanGapMs: whole.longestGapMs,
    maxHolders: Math.max(often.maxHolders, whole.maxHolders),
    maxWritable: Math.max(often.maxWritable, whole.maxWritable),
    maxWriters: Math.max(often.maxWriters, whole.maxWriters),
    violations: [...often.violations, ...whole.violations.map((v) => `(full scan) ${v}`)],
    parkedGenerations: [...new Set([...often.parkedGenerations, ...whole.parkedGenerations])].sort((a, b) => a - b),
    processes: [...processes.values()],
  };
}

/** Formats a report's findings for an assertion message. */
export function describeReport(report: SamplerReport): string {
  const processes = report.processes.map(
    (p) =>
      `pid ${p.pid} g${p.generation ?? "?"}${p.standby ? " standby" : ""} ${p.container?.slice(0, 12) ?? "host"} held ${JSON.stringify(p.held)} wrote ${JSON.stringify(p.wrote)}`,
  );
  const summary = `${report.samples} samples (longest gap ${report.longestGapMs.toFixed(1)} ms) and ${report.fullScans} scans of every process (longest gap ${report.longestFullScanGapMs.toFixed(0)} ms)`;
  return [summary, ...processes, ...report.violations.slice(0, 10)].join("\n");
}

// The sampler itself, run in a worker thread (plain JavaScript: a worker evaluates it as is). Synchronous scans
// (fast, and a consistent order), a timer between samples so that "stop" is heard.
const SAMPLER_SOURCE = `
const fs = require("node:fs");
const { parentPort, workerData } = require("node:worker_threads");
const { lockFile, dbFile, recordDir, range, intervalMs, full } = workerData;
const now = () => performance.timeOrigin + performance.now();

function locksId(file) {
  let st;
  try { st = fs.statSync(file); } catch { return undefined; }
  const major = Math.floor(st.dev / 256) & 0xfff;
  const minor = (st.dev & 0xff) | ((Math.floor(st.dev / 4096) & 0xfff00) >>> 0);
  return major.toString(16).padStart(2, "0") + ":" + minor.toString(16).padStart(2, "0") + ":" + st.ino;
}
function holdersIn(locks, id) {
  const holders = new Set();
  if (!id) return holders;
  for (const line of locks.split("\\n")) {
    const f = line.trim().split(/\\s+/);
    if (f[1] === "->") continue; // a waiter blocked in F_SETLKW
    if (f[1] === "POSIX" && f[3] === "WRITE" && f[5] === id && Number(f[6]) <= range.start && (f[7] === "EOF" || Number(f[7]) >= range.end)) holders.add(Number(f[4]));
  }
  return holders;
}
// Every inode state.db has had (it is replaced by rename on a restore or migration): a process may hold an old one.
const dbInodes = new Set();
function noteDbInode() {
  try { const st = fs.statSync(dbFile); dbInodes.add(st.dev + ":" + st.ino); } catch {}
}
function dbFd(pid, fd) {
  try {
    if (!fs.readlinkSync("/proc/" + pid + "/fd/" + fd).includes("state.db")) return undefined;
    const st = fs.statSync("/proc/" + pid + "/fd/" + fd);
    const key = st.dev + ":" + st.ino;
    if (!dbInodes.has(key)) return undefined;
    const flags = parseInt(/^flags:\\s*(\\d+)/m.exec(fs.readFileSync("/proc/" + pid + "/fdinfo/" + fd, "utf8"))[1], 8);
    return { key, writable: (flags & 3) !== 0 };
  } catch { return undefined; }
}
// The lock file's inode: a process with it open that does not hold the lock is waiting for it (a standby between
// its tries keeps it open), or letting go.
let lockInode = "";
function isLockFd(pid, fd) {
  try {
    if (!lockInode || !fs.readlinkSync("/proc/" + pid + "/fd/" + fd).includes("writer.lock")) return false;
    const st = fs.statSync("/proc/" + pid + "/fd/" + fd);
    return st.dev + ":" + st.ino === lockInode;
  } catch { return false; }
}
function scanOpeners(pids) {
  const found = [];
  const lockOpen = new Set();
  for (const entry of pids) {
    let fds;
    try { fds = fs.readdirSync("/proc/" + entry + "/fd"); } catch { continue; }
    for (const fd of fds) {
      const open = dbFd(entry, fd);
      if (open) found.push({ pid: Number(entry), fd, key: open.key, writable: open.writable });
      else if (isLockFd(entry, fd)) lockOpen.add(Number(entry));
    }
  }
  found.lockOpen = lockOpen;
  return found;
}
function parkedGenerations() {
  let names = [];
  try { names = fs.readdirSync(recordDir); } catch {}
  return names.map((n) => /^standby-g(\\d+)\\.json$/.exec(n)).filter(Boolean).map((m) => Number(m[1]));
}
function identity(pid) {
  const out = { pid, standby: false };
  try { out.container = /([0-9a-f]{64})/.exec(fs.readFileSync("/proc/" + pid + "/cgroup", "utf8"))?.[1]; } catch {}
  try {
    const env = fs.readFileSync("/proc/" + pid + "/environ", "utf8").split("\\0");
    const g = env.find((l) => l.startsWith("RESEAT_GENERATION="));
    if (g) out.generation = Number(g.slice("RESEAT_GENERATION=".length));
    out.standby = env.includes("RESEAT_STANDBY=1");
  } catch {}
  return out;
}

const processes = new Map();
const violations = [];
const changes = [];
const parkedEver = new Set();
let samples = 0, maxHolders = 0, maxWritable = 0, maxWriters = 0, longestGapMs = 0, lastAt = 0, lastKey = "";
let last;
function processOf(pid) {
  let p = processes.get(pid);
  if (!p) { p = { ...identity(pid), held: null, wrote: null, heldAt: null, waitedAt: null }; processes.set(pid, p); }
  return p;
}
function violation(text) { if (violations.length < 50) violations.push(text); }

const allPids = () => fs.readdirSync("/proc").filter((entry) => entry.charCodeAt(0) <= 57);
const reported = new Set(); // pids the full scans told the targeted sampler about
let known = new Set(); // pids seen with state.db open or holding the lock: the targeted samples' candidates
function sample() {
  const parked = parkedGenerations();
  noteDbInode();
  const lockId = locksId(lockFile);
  try { const st = fs.statSync(lockFile); lockInode = st.dev + ":" + st.ino; } catch {}
  // The full sampler scans every process of the host (a process that opened state.db without the lock shows up
  // there); the targeted one the processes known to have it open and the lock's holders (cheap).
  const candidates = full ? allPids() : [...new Set([...known, ...holdersIn(fs.readFileSync("/proc/locks", "utf8"), lockId)].map(String))];
  const scanned = scanOpeners(candidates);
  const locks = fs.readFileSync("/proc/locks", "utf8");
  const at = now(); // T: the lock table as of now; every opener below is confirmed open across it
  const holders = holdersIn(locks, lockId);
  const confirmed = scanned.filter((o) => { const again = dbFd(o.pid, o.fd); return again && again.key === o.key && again.writable === o.writable; });
  const writable = new Set(confirmed.filter((o) => o.writable).map((o) => o.pid));
  const readOnly = new Set(confirmed.filter((o) => !o.writable && !writable.has(o.pid)).map((o) => o.pid));
  const index = samples++;
  const waiting = new Set([...scanned.lockOpen].filter((pid) => !holders.has(pid)));
  known = new Set([...holders, ...waiting, ...scanned.map((o) => o.pid), ...[...known].filter((pid) => fs.existsSync("/proc/" + pid))]);
  if (lastAt) longestGapMs = Math.max(longestGapMs, at - lastAt);
  lastAt = at;
  for (const g of parked) parkedEver.add(g);

  const writers = new Set([...holders, ...writable]);
  maxHolders = Math.max(maxHolders, holders.size);
  maxWritable = Math.max(maxWritable, writable.size);
  maxWriters = Math.max(maxWriters, writers.size);
  const state = { index, at, holders: [...holders], writable: [...writable], readOnly: [...readOnly], parked };
  const describe = () => JSON.stringify(state);
  if (holders.size > 1) violation("two lock holders: " + describe());
  if (writable.size > 1) violation("two processes with state.db open writable: " + describe());
  if (writers.size > 1 && holders.size <= 1 && writable.size <= 1) violation("a lock holder and another process with state.db open writable: " + describe());
  for (const pid of holders) { const p = processOf(pid); p.held = p.held ? [p.held[0], index] : [index, index]; p.heldAt = p.heldAt ? [p.heldAt[0], at] : [at, at]; }
  for (const pid of waiting) { const p = processOf(pid); p.waitedAt = p.waitedAt ? [p.waitedAt[0], at] : [at, at]; }
  for (const pid of writable) { const p = processOf(pid); p.wrote = p.wrote ? [p.wrote[0], index] : [index, index]; }
  // A parked standby has nothing of the state open: a process of a parked generation that does not hold the lock.
  for (const pid of new Set([...writable, ...readOnly])) {
    const p = processOf(pid);
    if (p.generation !== undefined && parked.includes(p.generation) && !holders.has(pid)) violation("a parked standby (pid " + pid + ", generation " + p.generation + ") has state.db open: " + describe());
  }
  const key = JSON.stringify([state.holders.sort(), state.writable.sort(), state.readOnly.sort(), parked.sort()]);
  if (index === 0) parentPort.postMessage({ kind: "first" });
  if (full) {
    const found = [...new Set([...writable, ...readOnly, ...waiting])].filter((pid) => !reported.has(pid));
    for (const pid of found) reported.add(pid);
    if (found.length) parentPort.postMessage({ kind: "found", pids: found });
  }
  if (key !== lastKey && !full) { lastKey = key; changes.push(state); parentPort.postMessage({ kind: "change", sample: state }); }
  last = state;
}

let stopping = false;
parentPort.on("message", (m) => {
  if (m === "stop") stopping = true;
  else for (const pid of m.known) known.add(pid); // found by the full scans: followed in every sample from now on
});
function loop() {
  sample();
  if (!stopping) return setTimeout(loop, intervalMs);
  if (changes[changes.length - 1] !== last) changes.push(last);
  parentPort.postMessage({ kind: "report", report: {
    samples, fullScans: 0, longestFullScanGapMs: 0, maxHolders, maxWritable, maxWriters, violations, longestGapMs,
    parkedGenerations: [...parkedEver].sort((a, b) => a - b),
    processes: [...processes.values()], changes,
  } });
}
loop();
`;
