// replacement_gap: old executable told to stop -> new one ready, for a one-PE image change inside
// `pulumi up` (the reseat CLI on the real Pulumi CLI), next to the naive floor measured in the same run:
// stop + remove + create + start on the same volume + the same readiness wait, straight through the
// Engine API. reseat's staged routine prepares the new executable before the stop, so only stop +
// start + ready are in its gap: the goal is a gap below the naive floor (≤ 0.8×). Runs alternate (up,
// floor, up, floor, …) so both see the same machine state.
//
// revert_time: a replacement whose new executable exits at start, inside `pulumi up`: from the failed
// executable's death (engine event) to the previous spec ready again (the revert record), against the
// same naive floor.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LABELS } from "../src/backend/backend";
import { DockerBackend } from "../src/backend/docker/dockerBackend";
import { followEvents } from "../src/backend/docker/events";
import { PROJECT_ROOT } from "../src/automation/stack";
import { parseProcessingElement, volumeNameOf } from "../src/schema/processingElement";
import { specHash } from "../src/plan/executablePlan";
import { executableDesired } from "../src/schema/desired";
import { median, result, writeResult } from "./results";

const RUNS = Number(process.env.RESEAT_BENCH_RUNS ?? 9);
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
function benchProject(name: string): string {
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

export async function benchReplacementGap(): Promise<string> {
  const backend = new DockerBackend();
  const dir = benchProject("bench-replacement-gap");
  const up = async (image: string) => {
    setImage(dir, image);
    return runCli(dir, "up");
  };

  const pulumiGaps: number[] = [];
  const floorGaps: number[] = [];
  const steps = Object.fromEntries(FLOOR_STEPS.map((step) => [step, [] as number[]])) as Record<FloorStep, number[]>;
  try {
    await up(IMAGES[0]);
    for (let run = 0; run < RUNS; run++) {
      const kills = await killEvents(backend);
      const outputs = await up(IMAGES[(run + 1) % 2]!);
      const readyAt = Date.parse(outputs.processingElements[PE]!.readyAt);
      pulumiGaps.push(readyAt - (await kills.first()));
      // The floor re-runs the image now serving, so that the next up (the other image) replaces it.
      floorGaps.push(await rawFloor(backend, IMAGES[(run + 1) % 2]!, steps));
      process.stderr.write(`run ${run + 1}/${RUNS}: pulumi ${pulumiGaps.at(-1)} ms, floor ${floorGaps.at(-1)} ms\n`);
    }
  } finally {
    await runCli(dir, "destroy").catch(() => undefined);
    for (const e of await backend.listExecutables(PE)) await backend.remove(e.id);
    await backend.removeVolume(volumeNameOf({ peId: PE, volume: { name: undefined } as never }));
  }
  return writeResult(
    "replacement_gap",
    result("replacement_gap", "ms", pulumiGaps, floorGaps, {
      baseline_naive: median(floorGaps),
      naiveFloorStepsMs: floorStepMedians(steps),
      samples: { pulumi: pulumiGaps, naive_floor: floorGaps },
    }),
  );
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
      floorGaps.push(await rawFloor(backend, IMAGES[run % 2]!));
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
async function rawFloor(backend: DockerBackend, image: string, steps?: Record<FloorStep, number[]>): Promise<number> {
  const parsed = parseProcessingElement(spec(image));
  const desired = executableDesired(parsed, await backend.ensureImage(image));

  const old = (await backend.listExecutables(PE)).find((e) => e.running);
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
  const id = await backend.prepare(desired, { name: `reseat-${PE}-floor`, generation: old.generation + 1, specHash: specHash(desired) });
  mark("create");
  await backend.start(id);
  mark("start");
  await backend.waitReady(id, desired);
  mark("ready");
  return Math.round(performance.now() - started);
}

type FloorStep = "stop" | "remove" | "create" | "start" | "ready";
const FLOOR_STEPS: FloorStep[] = ["stop", "remove", "create", "start", "ready"];

/** Medians of each step of the floor: remove + create is what the staged routine takes out of the gap. */
function floorStepMedians(steps: Record<FloorStep, number[]>): Record<FloorStep, number> {
  return Object.fromEntries(FLOOR_STEPS.map((step) => [step, Math.round(median(steps[step]))])) as Record<FloorStep, number>;
}

/** Resolves to the engine time (ms) of the first stop signal sent to one of the PE's executables. */
async function killEvents(backend: DockerBackend): Promise<{ first: () => Promise<number> }> {
  let seen: (ms: number) => void = () => undefined;
  const first = new Promise<number>((resolve) => (seen = resolve));
  const subscription = await followEvents(
    backend.docker,
    backend.connection.address,
    { type: ["container"], event: ["kill"], label: [`${LABELS.peId}=${PE}`] },
    (e) => seen(Math.round(e.timeNano / 1e6)), // only the first settles the promise
  );
  return {
    first: async () => {
      try {
        return await Promise.race([first, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no kill event seen")), 5000))]);
      } finally {
        subscription.close();
      }
    },
  };
}

function runCli(dir: string, command: string): Promise<{ processingElements: Record<string, { readyAt: string }> }> {
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
