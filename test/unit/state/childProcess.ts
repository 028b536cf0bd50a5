import { spawn, type ChildProcess } from "node:child_process";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import ts from "typescript";

const STATE_SRC = path.resolve(__dirname, "../../../packages/state/src");

/**
 * Transpile the state library (packages/state/src) to CommonJS JavaScript in `outDir` (no type-check, no whole-project build), so a
 * plain `node` child can require it without depending on anyone else's files compiling.
 */
export async function compileStateLibrary(outDir: string): Promise<string> {
  for (const file of await listTs(STATE_SRC)) {
    const source = await fs.readFile(file, "utf8");
    const { outputText } = ts.transpileModule(source, {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    });
    const target = path.join(outDir, path.relative(STATE_SRC, file)).replace(/\.ts$/, ".js");
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.writeFile(target, outputText);
  }
  return path.join(outDir, "index.js");
}

async function listTs(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await listTs(full)));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) found.push(full);
  }
  return found;
}

/**
 * The child workload: opens the state and keeps 8 writers putting `<prefix>-<n>` = {n, pad} forever,
 * printing "ack <n> <seq>" only after each put resolved (i.e. the write is durable).
 */
export const WRITER_SCRIPT = `
const { openState } = require(process.argv[2]);
(async () => {
  const env = process.env;
  const state = await openState({
    stateDir: env.STATE_DIR,
    peId: "pe-1",
    generation: Number(env.GENERATION),
    store: env.STORE_DIR ? { kind: "directory", path: env.STORE_DIR } : null,
    commitIntervalMs: Number(env.INTERVAL_MS || 60000),
    handleSignals: env.HANDLE_SIGNALS === "1",
    env: {},
  });
  process.stdout.write("ready " + state.resumedFrom + " " + state.seq + "\\n");
  let next = 0;
  const writer = async () => {
    for (;;) {
      const n = next++;
      let seq;
      try {
        seq = await state.put(env.PREFIX + "-" + n, { n, pad: "p".repeat(n % 300) });
      } catch (error) {
        if (error && error.name === "StateClosedError") return; // shutting down on a signal
        throw error;
      }
      process.stdout.write("ack " + n + " " + seq + "\\n");
    }
  };
  await Promise.all(Array.from({ length: 8 }, writer));
})().catch((error) => {
  process.stderr.write(String(error && error.stack) + "\\n");
  process.exit(2);
});
`;

export interface Ack {
  n: number;
  seq: number;
}

export interface RunningWriter {
  child: ChildProcess;
  acks: Ack[];
  ready: Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  /** Resolves once at least `count` acks have been printed. */
  waitForAcks(count: number, timeoutMs?: number): Promise<void>;
}

export function startWriter(scriptFile: string, libraryIndex: string, env: Record<string, string>): RunningWriter {
  const child = spawn(process.execPath, [scriptFile, libraryIndex], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const acks: Ack[] = [];
  let stderr = "";
  let pending = "";
  let resolveReady: (line: string) => void = () => undefined;
  const ready = new Promise<string>((resolve) => (resolveReady = resolve));
  const waiters: Array<{ count: number; resolve: () => void }> = [];

  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop() ?? ""; // keep a partial last line for the next chunk
    for (const line of lines) {
      const [word, a, b] = line.split(" ");
      if (word === "ready") resolveReady(line);
      if (word === "ack") acks.push({ n: Number(a), seq: Number(b) });
    }
    for (const waiter of waiters.splice(0)) {
      if (acks.length >= waiter.count) waiter.resolve();
      else waiters.push(waiter);
    }
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, stderr })),
  );

  return {
    child,
    acks,
    ready,
    exited,
    waitForAcks(count, timeoutMs = 20_000) {
      if (acks.length >= count) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${acks.length}/${count} acks; stderr: ${stderr}`)), timeoutMs);
        waiters.push({ count, resolve: () => (clearTimeout(timer), resolve()) });
        void exited.then(({ code }) => reject(new Error(`writer exited (${code}) after ${acks.length} acks: ${stderr}`)));
      });
    },
  };
}

/**
 * A workload for the hand-over tests: opens the state (as a standby with STANDBY=1), then runs WRITERS
 * writers (default 4) putting `<PREFIX>-<n>` until WRITES puts were made (default: for ever), then idles.
 * Prints, each with a wall-clock time in ms (performance.timeOrigin + now, comparable across processes):
 * "parked <t>", "serving <resumedFrom> <seq> <t>", "ack <n> <seq>" (after the put resolved: durable),
 * "fenced <t>" (a put refused as stale: it stops writing and stays alive), "failed <error name> <t>"
 * (openState rejected: exits 3), "exit <t>" (as the process exits, e.g. after a signal's final commit).
 */
export const HANDOVER_SCRIPT = `
const { openState } = require(process.argv[2]);
const { performance } = require("node:perf_hooks");
const { writeSync } = require("node:fs");
const now = () => (performance.timeOrigin + performance.now()).toFixed(3);
const say = (line) => writeSync(1, line + "\\n"); // synchronous: nothing is lost when the process exits or is killed
process.on("exit", () => say("exit " + now()));
const env = process.env;
(async () => {
  let state;
  try {
    state = await openState({
      stateDir: env.STATE_DIR,
      peId: "pe-1",
      generation: Number(env.GENERATION),
      store: env.STORE_DIR ? { kind: "directory", path: env.STORE_DIR } : null,
      commitIntervalMs: Number(env.INTERVAL_MS || 600000),
      handleSignals: env.HANDLE_SIGNALS === "1",
      standby: env.STANDBY === "1",
      lockPollMs: env.LOCK_POLL_MS ? Number(env.LOCK_POLL_MS) : undefined,
      onParked: () => say("parked " + now()),
      env: {},
    });
  } catch (error) {
    say("failed " + (error && error.name) + " " + now());
    process.stderr.write(String(error && error.stack) + "\\n");
    process.exit(3);
  }
  say("serving " + state.resumedFrom + " " + state.seq + " " + now());
  setInterval(() => undefined, 1 << 30); // stay alive once done writing (or fenced)
  const limit = env.WRITES === undefined ? Infinity : Number(env.WRITES);
  let next = 0;
  let fenced = false;
  const writer = async () => {
    while (!fenced && next < limit) {
      const n = next++;
      let seq;
      try {
        seq = await state.put(env.PREFIX + "-" + n, { n });
      } catch (error) {
        if (error && error.name === "StateClosedError") return; // shutting down on a signal
        if (error && error.name === "StaleGenerationError") {
          if (!fenced) say("fenced " + now());
          fenced = true;
          return;
        }
        throw error;
      }
      say("ack " + n + " " + seq);
    }
  };
  await Promise.all(Array.from({ length: Number(env.WRITERS || 4) }, writer));
})().catch((error) => {
  process.stderr.write(String(error && error.stack) + "\\n");
  process.exit(2);
});
`;

export interface WorkloadEvent {
  word: string;
  args: string[];
  /** The child's wall-clock time of the event (ms), where it printed one. */
  at: number;
}

export interface RunningWorkload {
  child: ChildProcess;
  pid: number;
  events: WorkloadEvent[];
  acks: Ack[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  /** The first event `word` (already seen or the next one); rejects after timeoutMs or if the child exits first. */
  event(word: string, timeoutMs?: number): Promise<WorkloadEvent>;
  /** Resolves once at least `count` acks have been printed. */
  waitForAcks(count: number, timeoutMs?: number): Promise<void>;
  has(word: string): boolean;
}

export function startWorkload(scriptFile: string, libraryIndex: string, env: Record<string, string>): RunningWorkload {
  const child = spawn(process.execPath, [scriptFile, libraryIndex], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const events: WorkloadEvent[] = [];
  const acks: Ack[] = [];
  const listeners = new Set<() => void>();
  let stderr = "";
  let pending = "";
  let exitedFlag = false;
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      const [word = "", ...args] = line.split(" ");
      if (word === "ack") acks.push({ n: Number(args[0]), seq: Number(args[1]) });
      else events.push({ word, args, at: Number(args[args.length - 1]) });
    }
    for (const listener of [...listeners]) listener();
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    // "close": the process exited and its stdout was read to the end (its last lines are in).
    child.on("close", (code, signal) => {
      exitedFlag = true;
      for (const listener of [...listeners]) listener();
      resolve({ code, signal, stderr });
    }),
  );
  const until = <T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const attempt = () => {
        const value = check();
        if (value !== undefined) return done(() => resolve(value));
        if (exitedFlag) done(() => reject(new Error(`child ${child.pid} exited before ${what}; stderr: ${stderr}`)));
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`timed out after ${timeoutMs}ms waiting for ${what} of child ${child.pid}; stderr: ${stderr}`))),
        timeoutMs,
      );
      const done = (settle: () => void) => {
        clearTimeout(timer);
        listeners.delete(attempt);
        settle();
      };
      listeners.add(attempt);
      attempt();
    });
  return {
    child,
    pid: child.pid!,
    events,
    acks,
    exited,
    event: (word, timeoutMs = 20_000) => until(() => events.find((e) => e.word === word), `"${word}"`, timeoutMs),
    waitForAcks: (count, timeoutMs = 20_000) => until(() => (acks.length >= count ? true : undefined), `${count} acks`, timeoutMs).then(() => undefined),
    has: (word) => events.some((e) => e.word === word),
  };
}
