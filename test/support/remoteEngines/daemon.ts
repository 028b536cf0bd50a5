// Long-running helper processes a test owns (a second dockerd, an sshd, a registry): started as this
// process's children with their output in a log file, waited on until they answer, and stopped by
// signal and awaited (never left for PID 1 to reap). A record per daemon lets the next test run stop
// and clean up what a killed test run left behind.
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

/** Records of running test daemons: { pid, ownerPid, command, dirs }. */
const RECORDS = path.join(os.tmpdir(), "reseat-test-daemons");

export interface DaemonOptions {
  /** Shown in errors and used in the record's file name. */
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  /** Answers true once the daemon serves; polled every 100 ms. */
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
  /** Directories (and mounts below them) to remove when an orphan of this daemon is cleaned up. */
  dirs?: string[];
  /** What the process's command line contains once running (when `command` execs another program). */
  runningAs?: string;
}

export class Daemon {
  private exitCode: number | null | undefined;
  private readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly logFile: string,
    private readonly recordFile: string,
  ) {
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        resolve();
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** SIGTERM (or the given signal), then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 60_000): Promise<void> {
    if (this.running) {
      this.child.kill(signal);
      const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    fs.rmSync(this.recordFile, { force: true });
  }

  /** The log's last lines, for error messages. */
  tail(lines = 30): string {
    try {
      return fs.readFileSync(this.logFile, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }
}

/** Starts a daemon and waits until `ready` answers true; throws with the log's tail otherwise. */
export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  fs.mkdirSync(RECORDS, { recursive: true });
  await sweepOrphans();
  fs.mkdirSync(path.dirname(options.logFile), { recursive: true });
  const log = fs.openSync(options.logFile, "a");
  const child = spawn(options.command, options.args, { env: options.env ?? process.env, stdio: ["ignore", log, log] });
  fs.closeSync(log);
  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once("spawn", () => resolve(undefined));
    child.once("error", resolve);
  });
  if (spawned) throw new Error(`${options.name}: cannot start ${options.command}: ${spawned.message}`);
  const recordFile = path.join(RECORDS, `${options.name}-${child.pid}.json`);
  fs.writeFileSync(
    recordFile,
    JSON.stringify({ pid: child.pid, ownerPid: process.pid, command: options.runningAs ?? options.command, dirs: options.dirs ?? [] }),
  );
  const daemon = new Daemon(options.name, child, options.logFile, recordFile);

  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (!daemon.running) {
      await daemon.stop();
      throw new Error(`${options.name} exited before it was ready. Log tail:\n${daemon.tail()}`);
    }
    if (await options.ready().catch(() => false)) return daemon;
    if (Date.now() > deadline) {
      await daemon.stop();
      throw new Error(`${options.name} did not answer within ${options.readyTimeoutMs ?? 60_000} ms. Log tail:\n${daemon.tail()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Daemons whose owning test process is gone: stopped (SIGTERM, then SIGKILL), awaited by polling (they
 * are not our children), their mounts unmounted and their directories removed.
 */
export async function sweepOrphans(): Promise<void> {
  let files: string[];
  try {
    files = fs.readdirSync(RECORDS).filter((f) => f.endsWith(".json"));
  } catch {
    return;
  }
  for (const file of files) {
    const recordFile = path.join(RECORDS, file);
    let record: { pid: number; ownerPid: number; command: string; dirs: string[] };
    try {
      record = JSON.parse(fs.readFileSync(recordFile, "utf8"));
    } catch {
      continue; // being written right now
    }
    if (alive(record.ownerPid)) continue;
    if (alive(record.pid) && commandOf(record.pid).includes(path.basename(record.command))) {
      process.kill(record.pid, "SIGTERM");
      if (!(await gone(record.pid, 30_000))) {
        process.kill(record.pid, "SIGKILL");
        await gone(record.pid, 30_000);
      }
    }
    for (const dir of record.dirs) removeTree(dir);
    fs.rmSync(recordFile, { force: true });
  }
}

/** Unmounts whatever is mounted below `dir` (deepest first), then removes it without crossing mounts. */
export function removeTree(dir: string): void {
  if (!dir.startsWith(os.tmpdir() + path.sep) && !dir.startsWith("/run/reseat-")) throw new Error(`refusing to remove ${dir}: not a test directory`);
  const mounts = fs
    .readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[1]?.replace(/\\040/g, " "))
    .filter((mountPoint): mountPoint is string => !!mountPoint && (mountPoint === dir || mountPoint.startsWith(dir + path.sep)))
    .sort((a, b) => b.length - a.length);
  for (const mountPoint of mounts) {
    // umount(8) is the simplest way from Node; lazy so that a busy mount cannot block the cleanup.
    spawnSync("umount", ["-l", mountPoint], { stdio: "ignore" });
  }
  spawnSync("rm", ["-rf", "--one-file-system", dir], { stdio: "ignore" });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** True once the process is gone or a zombie (waiting for its parent to reap it). */
async function gone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    let state = "";
    try {
      state = fs.readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "")[0] ?? "";
    } catch {
      return true;
    }
    if (state === "Z") return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

function commandOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return "";
  }
}

/** A loopback TCP port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A short id for this process's test objects: unique among concurrently running test processes. */
let counter = 0;
export function uniqueId(prefix: string): string {
  return `${prefix}-${process.pid.toString(36)}${(counter++).toString(36)}${Date.now().toString(36).slice(-3)}`;
}

/** A private (0700) directory under the OS temp dir for one test daemon's files. */
export function privateDir(id: string): string {
  const dir = path.join(os.tmpdir(), `reseat-${id}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}
