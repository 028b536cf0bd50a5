// standby_handoff: the state library's own part of a standby hand-over, with plain processes on a local
// directory (no engine): a writer serving under write load, a standby of the next generation parked on the
// same volume (openState({standby: true})), then the writer stopped. Wall-clock times come from the
// processes themselves (performance.timeOrigin + now: one clock on one machine).
//
//   graceful:  SIGTERM to the writer -> the standby serving (final commit + exit + hand-off + open)
//   handoff:   the writer's exit (after its final commit; the lock is released just before) -> the standby serving
//   kill:      SIGKILL to the writer -> the standby serving (no final commit: the kernel releases the lock)
//   baseline:  the staged way: the writer's exit -> a successor started only then serving (node start + open)
//   staged gap: SIGTERM -> that successor serving (the staged analogue of "graceful")
//
// Run: npm run bench -- standby_handoff (RESEAT_BENCH_RUNS, default 25). Medians and p99 in
// bench/results/standby_handoff.json.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type CaseResult, median, percentile, result, round, writeResult } from "./results";

const METRIC = "standby_handoff";
const RUNS = Number(process.env.RESEAT_BENCH_RUNS) || 25;

const SCRIPT = `
const { openState } = require(process.argv[2]);
const { performance } = require("node:perf_hooks");
const { writeSync } = require("node:fs");
const now = () => (performance.timeOrigin + performance.now()).toFixed(3);
const say = (line) => writeSync(1, line + "\\n");
process.on("exit", () => say("exit " + now()));
const env = process.env;
openState({
  stateDir: env.STATE_DIR, peId: "bench", generation: Number(env.GENERATION),
  store: { kind: "directory", path: env.STORE_DIR }, commitIntervalMs: 1000,
  handleSignals: true, standby: env.STANDBY === "1", onParked: () => say("parked " + now()), env: {},
}).then(async (state) => {
  say("serving " + now());
  setInterval(() => undefined, 1 << 30);
  let n = 0;
  const writer = async () => {
    for (;;) {
      try { await state.put("k" + (n++ % 1000), { n, pad: "x".repeat(200) }); } catch { return; }
      if (n === 200) say("loaded " + now());
    }
  };
  await Promise.all([writer(), writer(), writer(), writer()]);
}, (error) => { process.stderr.write(String(error && error.stack) + "\\n"); process.exit(3); });
`;

interface Proc {
  child: ChildProcess;
  event(word: string): Promise<number>;
  closed: Promise<void>;
}

function startProc(script: string, library: string, env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [script, library], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  const seen = new Map<string, number>();
  const waiters: Array<() => void> = [];
  let buffer = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    buffer += chunk;
    const lines = buffer.split("\n");
    buffer = lines.pop() ?? "";
    for (const line of lines) {
      const [word, at] = line.split(" ");
      if (word && !seen.has(word)) seen.set(word, Number(at));
    }
    for (const wake of waiters.splice(0)) wake();
  });
  const closed = new Promise<void>((resolve) => child.on("close", () => (waiters.splice(0).forEach((wake) => wake()), resolve())));
  let exited = false;
  void closed.then(() => (exited = true));
  return {
    child,
    closed,
    event: (word) =>
      new Promise<number>((resolve, reject) => {
        const check = () => {
          if (seen.has(word)) return resolve(seen.get(word)!);
          if (exited) return reject(new Error(`process exited before "${word}"`));
          waiters.push(check);
        };
        check();
      }),
  };
}

const nowMs = () => performance.timeOrigin + performance.now();

export async function benchStandbyHandoff(): Promise<string> {
  // RESEAT_BENCH_STATE_LIB: another build of the library (its index.js) to measure.
  const library = process.env.RESEAT_BENCH_STATE_LIB ?? require.resolve("@reseat/state");
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-bench-handoff-"));
  const script = path.join(work, "workload.js");
  fs.writeFileSync(script, SCRIPT);
  const graceful: number[] = [];
  const handoff: number[] = [];
  const kill: number[] = [];
  const staged: number[] = [];
  const stagedGap: number[] = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      for (const mode of ["graceful", "kill", "staged"] as const) {
        const stateDir = fs.mkdtempSync(path.join(work, "state-"));
        const env = { STATE_DIR: stateDir, STORE_DIR: fs.mkdtempSync(path.join(work, "store-")) };
        const writer = startProc(script, library, { ...env, GENERATION: "1" });
        await writer.event("loaded");
        let successor: Proc | undefined;
        if (mode !== "staged") {
          successor = startProc(script, library, { ...env, GENERATION: "2", STANDBY: "1" });
          await successor.event("parked");
        }
        const signalAt = nowMs();
        writer.child.kill(mode === "kill" ? "SIGKILL" : "SIGTERM");
        if (mode === "staged") {
          await writer.closed;
          const exitAt = await writer.event("exit");
          successor = startProc(script, library, { ...env, GENERATION: "2" });
          const servingAt = await successor.event("serving");
          staged.push(servingAt - exitAt);
          stagedGap.push(servingAt - signalAt);
        } else {
          const servingAt = await successor!.event("serving");
          await writer.closed;
          if (mode === "kill") kill.push(servingAt - signalAt);
          else {
            graceful.push(servingAt - signalAt);
            handoff.push(servingAt - (await writer.event("exit")));
          }
        }
        successor!.child.kill("SIGKILL");
        await successor!.closed;
        fs.rmSync(stateDir, { recursive: true, force: true });
      }
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const spread = (values: number[]) => ({ p99: round(percentile(values, 99), 2), min: round(Math.min(...values), 2), max: round(Math.max(...values), 2) });
  const cases: CaseResult[] = [
    { ...result(METRIC, "ms", handoff, staged, spread(handoff)), case: "handoff (writer exit -> standby serving) vs staged (exit -> new process serving)" },
    {
      ...result(METRIC, "ms", graceful, stagedGap, spread(graceful)),
      case: "graceful (SIGTERM -> standby serving, incl. final commit) vs staged (SIGTERM -> new process serving)",
    },
    { ...result(METRIC, "ms", kill, staged, spread(kill)), case: "kill (SIGKILL -> standby serving)" },
  ];
  for (const c of cases) console.log(`${c.case}: median ${c.value} ms, p99 ${c.p99} ms (staged median ${c.baseline} ms)`);
  console.log(
    `staged: exit -> serving p99 ${round(percentile(staged, 99), 2)} ms; SIGTERM -> serving median ${round(median(stagedGap), 2)} ms, p99 ${round(percentile(stagedGap, 99), 2)} ms`,
  );
  return writeResult(METRIC, { metric: METRIC, cases });
}

if (require.main === module) {
  benchStandbyHandoff().then(
    (file) => console.log(`wrote ${file}`),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
