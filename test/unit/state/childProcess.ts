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
