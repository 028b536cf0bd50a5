// rolling: a group of N processing elements (default 100, RESEAT_BENCH_GROUP_SIZE) of a tiny workload,
// rolled out by `reseat up` (the real Pulumi CLI) from one image to the other.
//
// Cases (bench/results/rolling.json):
// - rolling_mu1, rolling_mu10: value = wall time of the rollout's `up` minus a no-op `up` of the same
//   stack right after it; baseline = N x the single-PE raw floor / maxUnavailable, the floor measured
//   in the same run as bench/replacementGap.ts does (Engine API stop + remove + create + start on the
//   same volume + the same readiness wait), with the group's N members running.
// - preview_N, noop_up_N: wall time of `reseat preview` / a no-op `reseat up` of the group stack;
//   baseline = the same for N plain containers, one minimal dynamic resource each (bench/plainStack.ts).
// And bench/results/rolling.svg: per member, kill -> die -> start (Engine events) -> ready (outputs).
// For reading the numbers, each rollout case also records handoffMs (a member's stop request minus
// the ready time of the member it waited for: Pulumi's per-step cost), memberKillToReadyMs, the most
// members down at once (from Engine events), and for maxUnavailable > 1 rawParallelFloorMs: N raw
// replacements with maxUnavailable of them at a time, without Pulumi (what the machine allows).
//
// Every CLI run gets PULUMI_PARALLEL (default 32 here; Pulumi's own default is 4 x CPUs), so that
// maxUnavailable 10 is not capped by Pulumi's parallelism on a small machine.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LABELS } from "../src/backend/backend";
import { DockerBackend } from "../src/backend/docker/dockerBackend";
import { followEvents } from "../src/backend/docker/events";
import { PROJECT_ROOT } from "../src/automation/stack";
import { executableDesired } from "../src/spec/desired";
import { parseProcessingElement } from "../src/spec/processingElement";
import { PLAIN_LABEL } from "./plainRuntime";
import { CaseResult, RESULTS_DIR, median, result, round, writeResult } from "./results";
import { MemberTimeline, renderTimeline } from "./timeline";

const N = Number(process.env.RESEAT_BENCH_GROUP_SIZE ?? 100);
const RUNS = Number(process.env.RESEAT_BENCH_RUNS ?? 3);
const FLOOR_RUNS = Number(process.env.RESEAT_BENCH_FLOOR_RUNS ?? 7);
const BASE_PORT = Number(process.env.RESEAT_BENCH_PORT_BASE ?? 21000);
const PARALLEL = process.env.PULUMI_PARALLEL ?? "32";
const GROUP = "bench-roll";
const FLOOR_PE = "bench-roll-floor";
const PLAIN_PREFIX = "bench-plain";
const FLOOR_LABEL = "io.reseat.bench-floor";
const IMAGES = ["reseat-demo-workload:v1", "reseat-demo-workload:v2"] as const;
const CLI = path.join(PROJECT_ROOT, "dist", "src", "cli", "main.js");
const GROUPS_PROGRAM = path.join(PROJECT_ROOT, "dist", "stacks", "groups.js");
const PLAIN_PROGRAM = path.join(PROJECT_ROOT, "dist", "bench", "plainStack.js");

function template(image: string, port: number | string) {
  return {
    image,
    network: "host",
    env: { PORT: String(port) },
    commitInterval: "30s",
    stop: { graceSeconds: 5 },
    persistentStore: { kind: "none" },
    resources: { memoryMiB: 48 },
    readiness: { httpGet: { port, path: "/healthz" }, timeout: "30s" },
  };
}

function groupConfig(image: string, maxUnavailable: number) {
  return {
    "reseat:groups": [{ name: GROUP, replicas: N, template: template(image, `{{ordinal + ${BASE_PORT}}}`), rollout: { maxUnavailable } }],
  };
}

interface Run {
  ms: number;
  startedAt: number;
  outputs: Record<string, unknown>;
}

export async function benchRolling(): Promise<string> {
  if (!Number.isInteger(N) || N < 1) throw new Error(`RESEAT_BENCH_GROUP_SIZE: expected a whole number >= 1, got ${process.env.RESEAT_BENCH_GROUP_SIZE}`);
  const backend = new DockerBackend();
  const log = (text: string) => process.stderr.write(`[rolling] ${text}\n`);
  const groupDir = project("bench-rolling");
  const plainDir = project("bench-rolling-plain");
  await removeLeftovers(backend);

  const cases: CaseResult[] = [];
  const panels: Parameters<typeof renderTimeline>[1] = [];
  try {
    // 1. The baseline stack: N plain containers through one minimal dynamic resource each.
    writeConfig(plainDir, { "reseatbench:count": N, "reseatbench:prefix": PLAIN_PREFIX, "reseatbench:image": IMAGES[0] });
    const plainCreate = await runCli(plainDir, "up", PLAIN_PROGRAM);
    log(`plain: up (create ${N}) ${plainCreate.ms} ms`);
    const plainPreview: number[] = [];
    const plainNoop: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      plainPreview.push((await runCli(plainDir, "preview", PLAIN_PROGRAM)).ms);
      plainNoop.push((await runCli(plainDir, "up", PLAIN_PROGRAM)).ms);
      log(`plain: preview ${plainPreview.at(-1)} ms, no-op up ${plainNoop.at(-1)} ms`);
    }
    await runCli(plainDir, "destroy", PLAIN_PROGRAM);

    // 2. The group: N members at v1, maxUnavailable 1.
    writeConfig(groupDir, groupConfig(IMAGES[0], 1));
    const groupCreate = await runCli(groupDir, "up", GROUPS_PROGRAM);
    log(`group: up (create ${N}) ${groupCreate.ms} ms`);
    const groupPreview: number[] = [];
    const groupNoop: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      groupPreview.push((await runCli(groupDir, "preview", GROUPS_PROGRAM)).ms);
      groupNoop.push((await runCli(groupDir, "up", GROUPS_PROGRAM)).ms);
      log(`group: preview ${groupPreview.at(-1)} ms, no-op up ${groupNoop.at(-1)} ms`);
    }
    cases.push({ case: `preview_${N}`, ...result("rolling", "ms", groupPreview, plainPreview, { groupSize: N, samples: { group: groupPreview, plain: plainPreview } }) });
    cases.push({
      case: `noop_up_${N}`,
      ...result("rolling", "ms", groupNoop, plainNoop, { groupSize: N, samples: { group: groupNoop, plain: plainNoop }, createUpMs: { group: groupCreate.ms, plain: plainCreate.ms } }),
    });

    // 3. The single-PE floor, with the group's N members running (same machine state as the rollouts).
    const floors = await rawFloors(backend, FLOOR_RUNS, log);
    const floor = median(floors);
    log(`floor: median ${floor} ms over ${floors.length} runs`);

    // 4. The rollouts: v1 -> v2 with maxUnavailable 1, then v2 -> v1 with maxUnavailable 10.
    for (const [mu, image] of [
      [1, IMAGES[1]],
      [10, IMAGES[0]],
    ] as const) {
      writeConfig(groupDir, groupConfig(image, mu));
      const events = await recordEvents(backend);
      const rollout = await runCli(groupDir, "up", GROUPS_PROGRAM);
      const seen = await events.stop();
      const noop = await runCli(groupDir, "up", GROUPS_PROGRAM);
      const value = rollout.ms - noop.ms;
      const baseline = (N * floor) / mu;
      const timeline = memberTimelines(rollout, seen);
      const perMember = timeline.filter((m) => m.kill !== undefined && m.ready !== undefined).map((m) => m.ready! - m.kill!);
      const maxDown = maxConcurrentlyDown(timeline);
      const handoffs = handoffMs(timeline, mu);
      const parallelFloor = mu > 1 ? await rawParallelFloor(backend, mu) : undefined;
      if (parallelFloor !== undefined) log(`raw floor of ${N} replacements, ${mu} at a time (no Pulumi): ${parallelFloor} ms`);
      log(`rollout maxUnavailable ${mu}: up ${rollout.ms} ms, no-op up ${noop.ms} ms -> ${value} ms (baseline ${Math.round(baseline)} ms); members down at once: max ${maxDown}`);
      cases.push({
        case: `rolling_mu${mu}`,
        ...result("rolling", "ms", [value], [baseline], {
          groupSize: N,
          maxUnavailable: mu,
          rolloutUpMs: rollout.ms,
          noopUpMs: noop.ms,
          floorMs: floor,
          floorSamples: floors,
          memberKillToReadyMs: perMember.length ? { median: median(perMember), max: Math.max(...perMember) } : null,
          maxMembersDownAtOnce: maxDown,
          handoffMs: handoffs.length ? { median: median(handoffs), max: Math.max(...handoffs) } : null,
          ...(parallelFloor !== undefined ? { rawParallelFloorMs: parallelFloor } : {}),
          pulumiParallel: Number(PARALLEL),
          loadAverage: os.loadavg().map((l) => round(l, 2)),
        }),
      });
      panels.push({
        title: `maxUnavailable ${mu}: ${N} members, up ${(rollout.ms / 1000).toFixed(1)} s (no-op up ${(noop.ms / 1000).toFixed(1)} s; floor ${Math.round(floor)} ms x ${N} / ${mu} = ${(baseline / 1000).toFixed(1)} s)`,
        durationMs: rollout.ms,
        members: timeline,
      });
    }
  } finally {
    // Destroy both stacks (their folders go too, unless a destroy failed: kept for a look).
    for (const [dir, program] of [
      [groupDir, GROUPS_PROGRAM],
      [plainDir, PLAIN_PROGRAM],
    ] as const) {
      await runCli(dir, "destroy", program).then(
        () => fs.rmSync(dir, { recursive: true, force: true }),
        (error: unknown) => log(`destroy ${dir}: ${(error as Error).message.slice(0, 300)}`),
      );
    }
    await removeLeftovers(backend);
  }

  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  fs.writeFileSync(path.join(RESULTS_DIR, "rolling.svg"), renderTimeline(`reseat rolling replacement of ${N} processing elements (Engine events)`, panels));
  return writeResult("rolling", { metric: "rolling", cases });
}

function project(name: string): string {
  const dir = path.join(PROJECT_ROOT, ".work", name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, "stacks"), { recursive: true });
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), fs.readFileSync(path.join(PROJECT_ROOT, "Pulumi.yaml"), "utf8").replace(/^main:.*\n/m, ""));
  return dir;
}

function writeConfig(dir: string, config: Record<string, unknown>): void {
  fs.writeFileSync(path.join(dir, "stacks", "Pulumi.bench.yaml"), JSON.stringify({ config }));
}

function runCli(dir: string, command: string, program: string): Promise<Run> {
  // stdout goes to a file: the CLI exits right after writing its JSON, and a large document written
  // to a pipe can be cut short by process.exit (see the report); a file write is synchronous.
  const outFile = path.join(dir, `.${command}.stdout.json`);
  const out = fs.openSync(outFile, "w");
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    const started = performance.now();
    const child = spawn(process.execPath, [CLI, command, "--cwd", dir, "--stack", "bench", "--program", program, "--json"], {
      stdio: ["ignore", out, "pipe"],
      env: { ...process.env, PULUMI_PARALLEL: PARALLEL },
    });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => {
      const ms = Math.round(performance.now() - started);
      fs.closeSync(out);
      if (code !== 0) return reject(new Error(`reseat ${command} failed:\n${stderr.slice(-3000)}`));
      try {
        const doc = JSON.parse(fs.readFileSync(outFile, "utf8")) as { outputs?: Record<string, unknown> };
        resolve({ ms, startedAt, outputs: doc.outputs ?? {} });
      } catch (error) {
        reject(new Error(`reseat ${command}: unreadable JSON document in ${outFile}: ${(error as Error).message}`));
      }
    });
  });
}

/**
 * A PE outside the group (same spec), run straight through the Engine API for floor runs. Its
 * containers carry only a bench label (not reseat's executable labels), so that a failure controller
 * running on the same engine (`reseat watch`) leaves them alone.
 */
async function floorPe(backend: DockerBackend, peId: string, port: number) {
  const docker = backend.docker;
  const desiredOf = async (image: string) => {
    const spec = parseProcessingElement({ peId, ...template(image, port) });
    return executableDesired(spec, await backend.ensureImage(image));
  };
  const volume = `reseat-${peId}-state`;
  await docker.createVolume({ Name: volume, Labels: { [FLOOR_LABEL]: "true" } });
  const create = async (desired: Awaited<ReturnType<typeof desiredOf>>) => {
    const created = await docker.createContainer({
        Image: desired.imageId,
        Env: [...Object.entries(desired.env).map(([k, v]) => `${k}=${v}`), `RESEAT_PE_ID=${peId}`, `RESEAT_STATE_DIR=${desired.mountPath}`],
        Labels: { [FLOOR_LABEL]: peId },
        StopSignal: desired.stop.signal,
        StopTimeout: desired.stop.graceSeconds,
        HostConfig: {
          Mounts: [{ Type: "volume", Source: volume, Target: desired.mountPath }],
          NetworkMode: desired.network,
          Memory: (desired.resources.memoryMiB ?? 48) * 1024 * 1024,
          RestartPolicy: { Name: "no" },
        },
    });
    return created.id;
  };
  let current = await create(await desiredOf(IMAGES[0]));
  await backend.start(current);
  await backend.waitReady(current, await desiredOf(IMAGES[0]));
  let run = 0;
  /** One raw replacement, timed from the stop request to ready. */
  return async (): Promise<number> => {
    const desired = await desiredOf(IMAGES[++run % 2]!);
    const started = performance.now();
    await backend.stop(current, desired.stop); // an already stopped one counts as stopped
    await backend.remove(current);
    current = await create(desired);
    await backend.start(current);
    await backend.waitReady(current, desired);
    return Math.round(performance.now() - started);
  };
}

/** The floor, as bench/replacementGap.ts measures it, on a PE of the same spec outside the group. */
async function rawFloors(backend: DockerBackend, runs: number, log: (text: string) => void): Promise<number[]> {
  const replace = await floorPe(backend, FLOOR_PE, BASE_PORT + N);
  const floors: number[] = [];
  for (let run = 0; run < runs; run++) {
    floors.push(await replace());
    log(`floor run ${run + 1}/${runs}: ${floors.at(-1)} ms`);
  }
  return floors;
}

/**
 * For information: N raw replacements with `lanes` running at once (lanes PEs, each replaced N/lanes
 * times in a row): what this machine allows at that concurrency, without Pulumi.
 */
async function rawParallelFloor(backend: DockerBackend, lanes: number): Promise<number> {
  const replacers = await Promise.all(Array.from({ length: lanes }, (_, j) => floorPe(backend, `${FLOOR_PE}-${j}`, BASE_PORT + N + 1 + j)));
  const started = performance.now();
  await Promise.all(
    replacers.map(async (replace, j) => {
      for (let i = j; i < N; i += lanes) await replace();
    }),
  );
  return Math.round(performance.now() - started);
}

interface EngineEvent {
  action: string;
  peId: string;
  id: string;
  ms: number;
}

/** Container kill/die/start events of the group's executables (Engine clock, ms). */
async function recordEvents(backend: DockerBackend): Promise<{ stop: () => Promise<EngineEvent[]> }> {
  const events: EngineEvent[] = [];
  const subscription = await followEvents(
    backend.docker,
    backend.connection.address,
    { type: ["container"], label: [`${LABELS.role}=executable`], event: ["kill", "die", "start"] },
    (e) => {
      const peId = e.Actor.Attributes[LABELS.peId] ?? "";
      if (peId.startsWith(`${GROUP}-`) && peId !== FLOOR_PE) events.push({ action: e.Action, peId, id: e.id, ms: e.timeNano / 1e6 });
    },
  );
  return {
    stop: async () => {
      await new Promise((r) => setTimeout(r, 300));
      subscription.close();
      return events;
    },
  };
}

function memberTimelines(rollout: Run, events: EngineEvent[]): MemberTimeline[] {
  const members = ((rollout.outputs.groups as Record<string, { members: { peId: string; ordinal: number; readyAt: string }[] }>)[GROUP]?.members ?? []).slice();
  members.sort((a, b) => b.ordinal - a.ordinal); // rollout order: highest ordinal first
  const at = (ms: number) => round(ms - rollout.startedAt, 0);
  return members.map((m) => {
    const own = events.filter((e) => e.peId === m.peId);
    const kill = own.find((e) => e.action === "kill");
    const die = own.find((e) => e.action === "die");
    const start = own.find((e) => e.action === "start");
    const timeline: MemberTimeline = { name: m.peId };
    if (kill) timeline.kill = at(kill.ms);
    if (die) timeline.die = at(die.ms);
    if (start) timeline.start = at(start.ms);
    if (start) timeline.ready = at(Date.parse(m.readyAt));
    return timeline;
  });
}

/** Per member: its old executable's stop request minus the ready time of the member it waited for. */
function handoffMs(members: MemberTimeline[], mu: number): number[] {
  const byName = new Map(members.map((m) => [m.name, m]));
  const result: number[] = [];
  for (const m of members) {
    const ordinal = Number(m.name.slice(GROUP.length + 1));
    const before = byName.get(`${GROUP}-${ordinal + mu}`);
    if (m.kill !== undefined && before?.ready !== undefined) result.push(m.kill - before.ready);
  }
  return result;
}

/** The most members between their old executable's die and their new one's start at once. */
function maxConcurrentlyDown(members: MemberTimeline[]): number {
  const edges: [number, number][] = [];
  for (const m of members) {
    const down = m.die ?? m.kill;
    if (down !== undefined && m.start !== undefined) edges.push([down, 1], [m.start, -1]);
  }
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let current = 0;
  let max = 0;
  for (const [, delta] of edges) {
    current += delta;
    max = Math.max(max, current);
  }
  return max;
}

/** Removes the bench's containers (members, floor PE, locks, plain containers) and state volumes. */
async function removeLeftovers(backend: DockerBackend): Promise<void> {
  const containers = await backend.docker.listContainers({ all: true });
  for (const c of containers) {
    const peId = c.Labels[LABELS.peId] ?? "";
    if (peId.startsWith(`${GROUP}-`) || c.Labels[PLAIN_LABEL] || c.Labels[FLOOR_LABEL]) {
      await backend.remove(c.Id).catch(() => undefined);
    }
  }
  const volumes = await backend.docker.listVolumes();
  for (const v of volumes.Volumes ?? []) {
    if (v.Name.startsWith(`reseat-${GROUP}-`)) await backend.removeVolume(v.Name).catch(() => undefined);
  }
}
