// replacement_gap: old executable told to stop -> new one ready, for a one-PE image change inside
// `pulumi up` (the reseat CLI on the real Pulumi CLI), next to the naive floor measured in the same run:
// stop + remove + create + start on the same volume + the same readiness wait, straight through the
// Engine API. Three cases side by side, all on the session workload (the state library inside: the only
// workload that can park as a standby), each on a PE of its own in one stack:
//   standby: handover "standby" — the successor started and parked before the gap; the gap is the old one's
//            final commit + exit + the lock hand-off + the successor opening the state and answering;
//   staged:  today's routine — the successor created before the gap, started inside it;
//   naive:   the floor (stop + remove + create + start + ready through the Engine API).
// Goal: standby ≤ 0.35× the naive floor. Runs alternate (staged up, floor, standby up, …) so every case sees
// the same machine state. The gap is measured the same way for standby and staged: the provider's readyAt −
// the engine's `kill` event of the old container (its stop request).
//
// revert_time: a replacement whose new executable exits at start, inside `pulumi up`: from the failed
// executable's death (engine event) to the previous spec ready again (the revert record), against the
// same naive floor.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LABELS, executableName } from "../src/backend/backend";
import { DockerBackend } from "../src/backend/docker/dockerBackend";
import { followEvents } from "../src/backend/docker/events";
import { PROJECT_ROOT } from "../src/automation/stack";
import { parseProcessingElement, volumeNameOf } from "../src/schema/processingElement";
import { specHash } from "../src/plan/executablePlan";
import { executableDesired } from "../src/schema/desired";
import { type CaseResult, median, percentile, result, round, writeResult } from "./results";

const RUNS = Number(process.env.RESEAT_BENCH_RUNS ?? 20);
const PORT = 18790;
const PE = "bench-gap";
const IMAGES = ["reseat-demo-workload:v1", "reseat-demo-workload:v2"] as const;
const CLI = path.join(PROJECT_ROOT, "dist", "src", "cli", "main.js");

/** The bench's one PE: the demo workload on the host network, answering /healthz. */
export function benchPeSpec(peId: string, port: number, image: string) {
  return {
    peId,
    image,
    network: "host",
    env: { PORT: String(port) },
    stop: { graceSeconds: 5 },
    readiness: { httpGet: { port, path: "/healthz" }, timeout: "30s" },
  };
}

const spec = (image: string) => benchPeSpec(PE, PORT, image);

/** A fresh project folder for one bench, with the checkout's Pulumi.yaml (the program comes from the CLI). */
export function benchProject(name: string): string {
  const dir = path.join(PROJECT_ROOT, ".work", name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, "stacks"), { recursive: true });
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), fs.readFileSync(path.join(PROJECT_ROOT, "Pulumi.yaml"), "utf8").replace(/^main:.*\n/m, ""));
  return dir;
}

/** The bench stack's one PE, running `image`. */
function setImage(dir: string, image: string): void {
  fs.writeFileSync(path.join(dir, "stacks", "Pulumi.bench.yaml"), JSON.stringify({ config: { "reseat:processingElements": [spec(image)] } }));
}

/** The session workload as a bench PE on the host network; `handover` "standby" parks its successors. */
export function sessionPeSpec(peId: string, port: number, image: string, handover?: "standby" | "staged") {
  return {
    peId,
    image,
    network: "host",
    env: { PORT: String(port) },
    commitInterval: "1s",
    stop: { graceSeconds: 5 },
    readiness: { httpGet: { port, path: "/healthz" }, timeout: "30s" },
    ...(handover ? { handover } : {}),
  };
}

export const SESSION_IMAGES = ["reseat-session-workload:v1", "reseat-session-workload:v2"] as const;

/** Whether this checkout's spec knows `handover` (the standby cases are left out, and say so, where it does not). */
export function standbyAvailable(): boolean {
  try {
    parseProcessingElement(sessionPeSpec("bench-probe", 1, SESSION_IMAGES[0], "standby"));
    return true;
  } catch {
    return false;
  }
}

const GAP_CASES = {
  staged: { peId: PE, port: PORT },
  standby: { peId: `${PE}-standby`, port: PORT + 4 },
} as const;

export async function benchReplacementGap(): Promise<string> {
  const backend = new DockerBackend();
  const dir = benchProject("bench-replacement-gap");
  const withStandby = standbyAvailable();
  const images = { staged: SESSION_IMAGES[0] as string, standby: SESSION_IMAGES[0] as string };
  const specs = () => [
    sessionPeSpec(GAP_CASES.staged.peId, GAP_CASES.staged.port, images.staged),
    ...(withStandby ? [sessionPeSpec(GAP_CASES.standby.peId, GAP_CASES.standby.port, images.standby, "standby")] : []),
  ];
  const up = () => {
    fs.writeFileSync(path.join(dir, "stacks", "Pulumi.bench.yaml"), JSON.stringify({ config: { "reseat:processingElements": specs() } }));
    return runCli(dir, "up");
  };
  /** One image change of one case's PE through `pulumi up`: its gap (readyAt − the old one's kill event). */
  const gapOf = async (which: keyof typeof GAP_CASES, image: string) => {
    const { peId } = GAP_CASES[which];
    images[which] = image;
    const kills = await killEvents(backend, peId);
    const outputs = await up();
    const killedAt = await kills.first();
    const diedAt = kills.firstDie();
    if (diedAt !== undefined) exits[which].push(diedAt - killedAt);
    return Date.parse(outputs.processingElements[peId]!.readyAt) - killedAt;
  };

  const gaps = { staged: [] as number[], standby: [] as number[], naive: [] as number[] };
  /** The old executable's kill → die (its final commit and exit), per case: the part of the gap before the successor can take over. */
  const exits = { staged: [] as number[], standby: [] as number[] };
  const steps = Object.fromEntries(FLOOR_STEPS.map((step) => [step, [] as number[]])) as Record<FloorStep, number[]>;
  try {
    await up();
    for (let run = 0; run < RUNS; run++) {
      const image = SESSION_IMAGES[(run + 1) % 2]!;
      gaps.staged.push(await gapOf("staged", image));
      // The floor re-runs the image now serving on the staged PE, so that the next up (the other image) replaces it.
      gaps.naive.push(await rawFloor(backend, sessionPeSpec(GAP_CASES.staged.peId, GAP_CASES.staged.port, image), steps));
      if (withStandby) gaps.standby.push(await gapOf("standby", image));
      process.stderr.write(
        `run ${run + 1}/${RUNS}: staged ${gaps.staged.at(-1)} ms, naive floor ${gaps.naive.at(-1)} ms, standby ${gaps.standby.at(-1) ?? "-"} ms\n`,
      );
    }
  } finally {
    await runCli(dir, "destroy").catch(() => undefined);
    for (const { peId } of Object.values(GAP_CASES)) {
      for (const e of await backend.listExecutables(peId)) await backend.remove(e.id);
      await backend.removeVolume(volumeNameOf({ peId, volume: { name: undefined } as never })).catch(() => undefined);
    }
  }
  const naive = median(gaps.naive);
  const p99 = (values: number[]) => round(percentile(values, 99));
  const row = (name: string, values: number[], extra: Record<string, unknown>): CaseResult => ({
    case: name,
    ...result("replacement_gap", "ms", values, gaps.naive, { p99: p99(values), baselineP99: p99(gaps.naive), ...extra }),
  });
  const cases: CaseResult[] = [];
  if (withStandby) {
    cases.push(
      row("standby", gaps.standby, {
        baselineIs: "naive floor",
        goal: "≤ 0.35",
        ratioToStaged: round(median(gaps.standby) / median(gaps.staged), 3),
        oldKillToDieMs: exits.standby.length ? round(median(exits.standby)) : null,
        samples: gaps.standby,
      }),
    );
  }
  cases.push(
    row("staged", gaps.staged, { baselineIs: "naive floor", oldKillToDieMs: exits.staged.length ? round(median(exits.staged)) : null, samples: gaps.staged }),
  );
  cases.push(
    row("naive", gaps.naive, {
      baselineIs: "itself: stop + remove + create + start + ready through the Engine API",
      naiveFloorStepsMs: floorStepMedians(steps),
      samples: gaps.naive,
    }),
  );
  if (!withStandby) process.stderr.write("replacement_gap: the spec has no `handover` in this checkout: the standby case is left out\n");
  for (const c of cases) process.stderr.write(`${c.case}: median ${c.value} ms, p99 ${c.p99} ms, naive floor ${naive} ms, ratio ${c.ratio}\n`);
  return writeResult("replacement_gap", { metric: "replacement_gap", cases });
}

export async function benchRevertTime(): Promise<string> {
  const backend = new DockerBackend();
  const dir = benchProject("bench-revert-time");
  const up = async (image: string, expectFailure = false) => {
    setImage(dir, image);
    return runCli(dir, "up").then(
      (outputs) => {
        if (expectFailure) throw new Error("the bad image was not refused");
        return outputs;
      },
      (error: Error) => {
        if (!expectFailure) throw error;
        return undefined;
      },
    );
  };
  const revertTimes: number[] = [];
  const floorGaps: number[] = [];
  const volume = volumeNameOf({ peId: PE, volume: { name: undefined } as never });
  try {
    await up(IMAGES[0]);
    for (let run = 0; run < RUNS; run++) {
      const deaths = await dieEvents(backend);
      await up(BAD_IMAGE, true);
      const record = (await backend.readRevert(volume)) ?? { reverted: false };
      if (!record.readyAt) throw new Error("no revert recorded");
      revertTimes.push(Date.parse(record.readyAt) - (await deaths.of(record.failedExecutable!)));
      floorGaps.push(await rawFloor(backend, spec(IMAGES[run % 2]!)));
      process.stderr.write(`run ${run + 1}/${RUNS}: revert ${revertTimes.at(-1)} ms, naive floor ${floorGaps.at(-1)} ms\n`);
    }
  } finally {
    await runCli(dir, "destroy").catch(() => undefined);
    for (const e of await backend.listExecutables(PE)) await backend.remove(e.id);
    await backend.removeVolume(volume);
  }
  return writeResult(
    "revert_time",
    result("revert_time", "ms", revertTimes, floorGaps, { baseline_naive: median(floorGaps), samples: { revert: revertTimes, naive_floor: floorGaps } }),
  );
}

const BAD_IMAGE = "reseat-crash-at-start:1";

/** Engine time (ms) of each executable's death, by container name. */
async function dieEvents(backend: DockerBackend): Promise<{ of: (name: string) => Promise<number> }> {
  const seen = new Map<string, number>();
  const subscription = await followEvents(
    backend.docker,
    backend.connection.address,
    { type: ["container"], event: ["die"], label: [`${LABELS.peId}=${PE}`] },
    (e) => seen.set(e.Actor.Attributes.name ?? "", Math.round(e.timeNano / 1e6)),
  );
  return {
    of: async (name: string) => {
      const deadline = Date.now() + 5000;
      while (!seen.has(name) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      subscription.close();
      const at = seen.get(name);
      if (at === undefined) throw new Error(`no die event for ${name}`);
      return at;
    },
  };
}

/** The floor: the engine calls a replacement cannot avoid, timed from the stop request to ready. */
export async function rawFloor(
  backend: DockerBackend,
  peSpec: ReturnType<typeof spec> | ReturnType<typeof sessionPeSpec>,
  steps?: Record<FloorStep, number[]>,
): Promise<number> {
  const parsed = parseProcessingElement(peSpec);
  const desired = executableDesired(parsed, await backend.ensureImage(peSpec.image));
  const peId = peSpec.peId;

  const old = (await backend.listExecutables(peId)).find((e) => e.running);
  if (!old) throw new Error("no running executable to replace");
  const started = performance.now();
  let last = started;
  const mark = (step: FloorStep) => {
    const now = performance.now();
    steps?.[step].push(now - last);
    last = now;
  };
  await backend.stop(old.id, desired.stop);
  mark("stop");
  await backend.remove(old.id);
  mark("remove");
  // The routine's own name for the next generation: the engine reads an executable's generation from its name.
  const generation = old.generation + 1;
  const id = await backend.prepare(desired, { name: executableName(peId, generation), generation, specHash: specHash(desired) });
  mark("create");
  await backend.start(id);
  mark("start");
  await backend.waitReady(id, desired);
  mark("ready");
  return Math.round(performance.now() - started);
}

export type FloorStep = "stop" | "remove" | "create" | "start" | "ready";
export const FLOOR_STEPS: FloorStep[] = ["stop", "remove", "create", "start", "ready"];

/** Medians of each step of the floor: remove + create is what the staged routine takes out of the gap. */
export function floorStepMedians(steps: Record<FloorStep, number[]>): Record<FloorStep, number> {
  return Object.fromEntries(FLOOR_STEPS.map((step) => [step, Math.round(median(steps[step]))])) as Record<FloorStep, number>;
}

/**
 * Resolves to the engine time (ms) of the first stop signal sent to one of the PE's executables; `firstDie`: the
 * engine time of the first executable's death after it (the old one's exit: its final commit done), when seen.
 */
export async function killEvents(backend: DockerBackend, peId = PE): Promise<{ first: () => Promise<number>; firstDie: () => number | undefined }> {
  let seen: (ms: number) => void = () => undefined;
  let killedAt: number | undefined;
  let diedAt: number | undefined;
  const first = new Promise<number>((resolve) => (seen = resolve));
  const subscription = await followEvents(
    backend.docker,
    backend.connection.address,
    { type: ["container"], event: ["kill", "die"], label: [`${LABELS.peId}=${peId}`] },
    (e) => {
      const at = Math.round(e.timeNano / 1e6);
      if (e.Action === "kill") {
        killedAt ??= at;
        seen(at); // only the first settles the promise
      } else if (killedAt !== undefined) diedAt ??= at;
    },
  );
  return {
    first: async () => {
      try {
        return await Promise.race([first, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no kill event seen")), 5000))]);
      } finally {
        subscription.close();
      }
    },
    firstDie: () => diedAt,
  };
}

export function runCli(dir: string, command: string): Promise<{ processingElements: Record<string, { readyAt: string }> }> {
  return new Promise((resolve, reject) => {
    // `up --create` makes the bench stack on first use (the CLI creates a stack only when asked).
    const create = command === "up" ? ["--create"] : [];
    const child = spawn(process.execPath, [CLI, command, "--cwd", dir, "--stack", "bench", ...create, "--json"], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`reseat ${command} failed:\n${stderr.slice(-3000)}`));
      const doc = JSON.parse(stdout) as { outputs?: { processingElements: Record<string, { readyAt: string }> } };
      resolve(doc.outputs ?? { processingElements: {} });
    });
  });
}
