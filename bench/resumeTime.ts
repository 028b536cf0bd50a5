// resume_time: a PE's process killed with SIGKILL -> the service answering again with its resumed state,
// for 1 MiB, 64 MiB and 512 MiB of state (one case each). The session-context service (workload/session, the
// staged image context: server.js + the compiled state library) runs as a plain process on a directory of the
// same disk the Docker volumes live on; this process is its supervisor and restarts it the moment it died
// (what `reseat watch` or a restart policy does, minus the engine's constant cost, which recovery_time measures).
//
//   value:    kill -9 -> GET of the session written (and acknowledged) just before the kill answers with it
//   baseline: the same for the 1 MiB case, measured in the same run (cases interleave run by run)
//   ratio:    value / baseline (goal for 512 MiB: <= 1.5)
//   rss:      the resumed process's resident set (VmRSS) and peak (VmHWM), MiB, once answering (goal at 512 MiB:
//             <= 150 MiB)
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openState } from "@reseat/state";
import { type CaseResult, median, result, round, writeResult } from "./results";

const METRIC = "resume_time";
const MiB = 1024 * 1024;
const ROOT = path.resolve(__dirname, "..", "..");
const CACHE = process.env.RESEAT_CACHE ?? path.join(os.homedir(), ".cache", "reseat");
const SIZES_MIB = (process.env.RESEAT_BENCH_RESUME_SIZES ?? "1,64,512").split(",").map(Number);
const RUNS = Number(process.env.RESEAT_BENCH_RUNS) || 7;
const PORT_BASE = 18820;
/** A session context of ~4 KiB, the unit the state is made of. */
const DOC_BYTES = 4096;
const RSS_GOAL_MIB = 150;

interface Case {
  sizeMiB: number;
  stateDir: string;
  storeDir: string;
  port: number;
  child?: ChildProcess;
  times: number[];
  rss: number[];
  peak: number[];
}

export async function benchResumeTime(): Promise<string> {
  const server = stagedServer();
  fs.mkdirSync(CACHE, { recursive: true });
  const work = fs.mkdtempSync(path.join(CACHE, "bench-resume-"));
  const cases: Case[] = SIZES_MIB.map((sizeMiB, i) => ({
    sizeMiB,
    stateDir: path.join(work, `${sizeMiB}mib`, "state"),
    storeDir: path.join(work, `${sizeMiB}mib`, "store"),
    port: PORT_BASE + i,
    times: [],
    rss: [],
    peak: [],
  }));
  try {
    for (const c of cases) {
      const started = performance.now();
      await populate(c);
      process.stderr.write(`resume_time: ${c.sizeMiB} MiB of state written in ${Math.round(performance.now() - started)} ms\n`);
      c.child = startServer(server, c);
      await waitFor(() => get(c.port, "/healthz").then((r) => r?.status === 200), `the ${c.sizeMiB} MiB service to answer`);
    }
    for (let run = 0; run < RUNS; run++) {
      for (const c of run % 2 ? [...cases].reverse() : cases) {
        const { ms, rss, peak } = await killAndResume(server, c, run);
        c.times.push(ms);
        c.rss.push(rss);
        c.peak.push(peak);
        process.stderr.write(`resume_time run ${run + 1}/${RUNS} ${c.sizeMiB} MiB: ${ms} ms, RSS ${rss} MiB (peak ${peak} MiB)\n`);
      }
    }
  } finally {
    for (const c of cases) c.child?.kill("SIGKILL");
    fs.rmSync(work, { recursive: true, force: true });
  }
  const baseline = cases[0]!;
  const results: CaseResult[] = cases.map((c) => ({
    ...result(METRIC, "ms", c.times, baseline.times, {
      case: `${c.sizeMiB}MiB`,
      baselineHow: `the ${baseline.sizeMiB} MiB case, same run`,
      rssMiB: round(median(c.rss)),
      peakRssMiB: round(median(c.peak)),
      goal: c === baseline ? "baseline" : `ratio <= 1.5 (512 MiB), RSS <= ${RSS_GOAL_MIB} MiB`,
      goalMet: median(c.times) / median(baseline.times) <= 1.5 && median(c.peak) <= RSS_GOAL_MIB,
      stateBytes: c.sizeMiB * MiB,
      samples: { value: c.times, rssMiB: c.rss, peakRssMiB: c.peak },
    }),
  }));
  return writeResult(METRIC, { metric: METRIC, cases: results });
}

/** The session service as its image runs it (staged by scripts/images.sh: @reseat/state installed by npm ci from its packed tarball). */
function stagedServer(): string {
  const server = path.join(ROOT, ".work", "images", "session", "server.js");
  if (!fs.existsSync(server)) throw new Error(`${server} is missing: run scripts/images.sh (npm run bench bootstraps it)`);
  return server;
}

/** `sizeMiB` of session contexts through the state library itself, then one commit to the store. */
async function populate(c: Case): Promise<void> {
  const state = await openState({
    stateDir: c.stateDir,
    peId: `bench-resume-${c.sizeMiB}`,
    generation: 1,
    store: { kind: "directory", path: c.storeDir },
    commitIntervalMs: 3_600_000,
    env: {},
  });
  const docs = Math.round((c.sizeMiB * MiB) / DOC_BYTES);
  const batch = 512;
  for (let first = 0; first < docs; first += batch) {
    const puts: Promise<number>[] = [];
    for (let n = first; n < Math.min(docs, first + batch); n++)
      puts.push(state.put(`user-${n}`, { n, cart: [n % 7, n % 11], notes: "x".repeat(DOC_BYTES - 64) }));
    await Promise.all(puts); // one transaction per batch (group commit)
  }
  await state.close(); // final commit
}

function startServer(server: string, c: Case): ChildProcess {
  const child = spawn(process.execPath, [server], {
    env: {
      ...process.env,
      PORT: String(c.port),
      RESEAT_STATE_DIR: c.stateDir,
      RESEAT_PE_ID: `bench-resume-${c.sizeMiB}`,
      RESEAT_GENERATION: "1",
      RESEAT_COMMIT_INTERVAL_MS: "3600000",
      RESEAT_STORE: JSON.stringify({ kind: "directory", path: c.storeDir }),
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  return child;
}

/** Acknowledged write, SIGKILL, restart at once, poll until that write reads back. */
async function killAndResume(server: string, c: Case, run: number): Promise<{ ms: number; rss: number; peak: number }> {
  const key = `marker-${run}`;
  const value = { run, at: Date.now() };
  const put = await request(c.port, `/sessions/${key}`, "PUT", JSON.stringify(value));
  if (put?.status !== 200) throw new Error(`PUT ${key} failed on the ${c.sizeMiB} MiB service`);
  const old = c.child!;
  const exited = new Promise((resolve) => old.once("exit", resolve));
  const started = performance.now();
  old.kill("SIGKILL");
  await exited;
  c.child = startServer(server, c);
  await waitFor(async () => {
    const answer = await get(c.port, `/sessions/${key}`);
    return answer?.status === 200 && JSON.stringify(answer.body) === JSON.stringify(value);
  }, `the ${c.sizeMiB} MiB service to answer with ${key}`);
  const ms = Math.round(performance.now() - started);
  const { rss, peak } = memoryOf(c.child.pid!);
  return { ms, rss, peak };
}

function memoryOf(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rss: round(kib("VmRSS") / 1024), peak: round(kib("VmHWM") / 1024) };
}

async function get(port: number, urlPath: string) {
  return request(port, urlPath, "GET");
}

async function request(port: number, urlPath: string, method: string, body?: string): Promise<{ status: number; body: unknown } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, { method, body, signal: AbortSignal.timeout(5000) });
    return { status: res.status, body: await res.json() };
  } catch {
    return undefined;
  }
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = performance.now() + 120_000;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
