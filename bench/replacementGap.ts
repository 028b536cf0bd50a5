// replacement_gap: old executable told to stop -> new one ready, for a one-PE image change inside
// `pulumi up` (the reseat CLI on the real Pulumi CLI), next to the raw floor measured in the same run:
// stop + remove + create + start on the same volume + the same readiness wait, straight through the
// Engine API. Runs alternate (up, floor, up, floor, …) so both see the same machine state.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LABELS } from "../src/backend/backend";
import { DockerBackend } from "../src/backend/docker/dockerBackend";
import { followEvents } from "../src/backend/docker/events";
import { PROJECT_ROOT } from "../src/automation/stack";
import { parseProcessingElement, volumeNameOf } from "../src/spec/processingElement";
import { specHash } from "../src/plan/executablePlan";
import { executableDesired } from "../src/spec/desired";
import { result, writeResult } from "./results";

const RUNS = Number(process.env.RESEAT_BENCH_RUNS ?? 9);
const PORT = 18790;
const PE = "bench-gap";
const IMAGES = ["reseat-demo-workload:v1", "reseat-demo-workload:v2"] as const;
const CLI = path.join(PROJECT_ROOT, "dist", "src", "cli", "main.js");

function spec(image: string) {
  return {
    peId: PE,
    image,
    network: "host",
    env: { PORT: String(PORT) },
    stop: { graceSeconds: 5 },
    readiness: { httpGet: { port: PORT, path: "/healthz" }, timeout: "30s" },
  };
}

export async function benchReplacementGap(): Promise<string> {
  const backend = new DockerBackend();
  const dir = path.join(PROJECT_ROOT, ".work", "bench-replacement-gap");
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, "stacks"), { recursive: true });
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), fs.readFileSync(path.join(PROJECT_ROOT, "Pulumi.yaml"), "utf8").replace(/^main:.*\n/m, ""));
  const up = async (image: string) => {
    fs.writeFileSync(path.join(dir, "stacks", "Pulumi.bench.yaml"), JSON.stringify({ config: { "reseat:processingElements": [spec(image)] } }));
    return runCli(dir, "up");
  };

  const pulumiGaps: number[] = [];
  const floorGaps: number[] = [];
  try {
    await up(IMAGES[0]);
    for (let run = 0; run < RUNS; run++) {
      const kills = await killEvents(backend);
      const outputs = await up(IMAGES[(run + 1) % 2]!);
      const readyAt = Date.parse(outputs.processingElements[PE]!.readyAt);
      pulumiGaps.push(readyAt - (await kills.first()));
      floorGaps.push(await rawFloor(backend, IMAGES[run % 2]!));
      process.stderr.write(`run ${run + 1}/${RUNS}: pulumi ${pulumiGaps.at(-1)} ms, floor ${floorGaps.at(-1)} ms\n`);
    }
  } finally {
    await runCli(dir, "destroy").catch(() => undefined);
    for (const e of await backend.listExecutables(PE)) await backend.remove(e.id);
    await backend.removeVolume(volumeNameOf({ peId: PE, volume: { name: undefined } as never }));
  }
  return writeResult("replacement_gap", result("replacement_gap", "ms", pulumiGaps, floorGaps, { samples: { pulumi: pulumiGaps, floor: floorGaps } }));
}

/** The floor: the engine calls a replacement cannot avoid, timed from the stop request to ready. */
async function rawFloor(backend: DockerBackend, image: string): Promise<number> {
  const parsed = parseProcessingElement(spec(image));
  const desired = executableDesired(parsed, await backend.ensureImage(image));

  const old = (await backend.listExecutables(PE)).find((e) => e.running);
  if (!old) throw new Error("no running executable to replace");
  const started = performance.now();
  await backend.stop(old.id, desired.stop);
  await backend.remove(old.id);
  const id = await backend.prepare(desired, { name: `reseat-${PE}-floor`, generation: old.generation + 1, specHash: specHash(desired) });
  await backend.start(id);
  await backend.waitReady(id, desired);
  return Math.round(performance.now() - started);
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
    const child = spawn(process.execPath, [CLI, command, "--cwd", dir, "--stack", "bench", "--json"], { stdio: ["ignore", "pipe", "pipe"] });
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
