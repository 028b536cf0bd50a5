// Shared by the group benches (bench/rolling.ts, bench/scale.ts): a bench project folder for the
// `reseat` CLI, timed CLI runs, the single-PE raw floor on the Engine API, and what Engine events say
// about a rollout (per-member timelines, hand-offs, members down at once). Measurement only.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { LABELS } from "../src/backend/backend";
import { DockerBackend } from "../src/backend/docker/dockerBackend";
import { followEvents } from "../src/backend/docker/events";
import { PROJECT_ROOT } from "../src/automation/stack";
import { executableDesired } from "../src/schema/desired";
import { parseProcessingElement } from "../src/schema/processingElement";
import { PLAIN_LABEL } from "./plainRuntime";
import { round } from "./results";
import { MemberTimeline } from "./timeline";

export const CLI = path.join(PROJECT_ROOT, "dist", "src", "cli", "main.js");
export const GROUPS_PROGRAM = path.join(PROJECT_ROOT, "dist", "stacks", "groups.js");
export const PLAIN_PROGRAM = path.join(PROJECT_ROOT, "dist", "bench", "plainStack.js");
/** The label of the floor PEs' containers and volumes (not reseat's executable labels). */
export const FLOOR_LABEL = "io.reseat.bench-floor";
/** Every CLI run gets PULUMI_PARALLEL (default 32 here; Pulumi's own default is 4 x CPUs). */
export const PULUMI_PARALLEL = process.env.PULUMI_PARALLEL ?? "32";

/** A group member's spec (host network, one port each): what the group template and the floor PE share. */
export function memberTemplate(image: string, port: number | string, memoryMiB: number) {
  return {
    image,
    network: "host",
    env: { PORT: String(port) },
    commitInterval: "30s",
    stop: { graceSeconds: 5 },
    persistentStore: { kind: "none" },
    resources: { memoryMiB },
    readiness: { httpGet: { port, path: "/healthz" }, timeout: "30s" },
  };
}

export interface Run {
  ms: number;
  startedAt: number;
  outputs: Record<string, unknown>;
}

/** A fresh folder under .work/ with the checkout's Pulumi.yaml (no `main`: the CLI gets --program). */
export function benchProject(name: string): string {
  const dir = path.join(PROJECT_ROOT, ".work", name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, "stacks"), { recursive: true });
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), fs.readFileSync(path.join(PROJECT_ROOT, "Pulumi.yaml"), "utf8").replace(/^main:.*\n/m, ""));
  return dir;
}

export function writeStackConfig(dir: string, config: Record<string, unknown>): void {
  fs.writeFileSync(path.join(dir, "stacks", "Pulumi.bench.yaml"), JSON.stringify({ config }));
}

/**
 * Destroys a group bench's two stacks (the group's and the plain resources'); a stack's folder goes
 * too unless its destroy failed (kept for a look, the failure logged).
 */
export async function destroyBenchStacks(groupDir: string, plainDir: string | undefined, log: (text: string) => void): Promise<void> {
  const stacks: [string, string][] = [[groupDir, GROUPS_PROGRAM]];
  if (plainDir) stacks.push([plainDir, PLAIN_PROGRAM]);
  for (const [dir, program] of stacks) {
    await runCli(dir, "destroy", program).then(
      () => fs.rmSync(dir, { recursive: true, force: true }),
      (error: unknown) => log(`destroy ${dir}: ${(error as Error).message.slice(0, 300)}`),
    );
  }
}

/** One `reseat <command> --json` run on the folder's `bench` stack, timed (wall ms). */
export function runCli(dir: string, command: string, program: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> {
  // stdout goes to a file: the CLI exits right after writing its JSON, and a large document written
  // to a pipe can be cut short by process.exit (see the report); a file write is synchronous.
  const outFile = path.join(dir, `.${command}.stdout.json`);
  const out = fs.openSync(outFile, "w");
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    const started = performance.now();
    // `up --create` makes the bench stack on first use (the CLI creates a stack only when asked).
    const create = command === "up" ? ["--create"] : [];
    const child = spawn(process.execPath, [CLI, command, "--cwd", dir, "--stack", "bench", "--program", program, ...create, "--json"], {
      stdio: ["ignore", out, "pipe"],
      env: { ...process.env, PULUMI_PARALLEL, ...extraEnv },
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

/** What the floor PE runs: two images (alternated) and the member spec for an image and port. */
export interface FloorWorkload {
  images: readonly [string, string];
  template: (image: string, port: number) => Record<string, unknown>;
}

/**
 * A PE outside the group (same spec), run straight through the Engine API for floor runs. Its
 * containers carry only a bench label (not reseat's executable labels), so that a failure controller
 * running on the same engine (`reseat watch`) leaves them alone. Returns one raw replacement, timed
 * from the stop request to ready.
 */
export async function floorPe(backend: DockerBackend, peId: string, port: number, workload: FloorWorkload): Promise<() => Promise<number>> {
  const docker = backend.docker;
  const desiredOf = async (image: string) => {
    const spec = parseProcessingElement({ peId, ...workload.template(image, port) });
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
  let current = await create(await desiredOf(workload.images[0]));
  await backend.start(current);
  await backend.waitReady(current, await desiredOf(workload.images[0]));
  let run = 0;
  return async (): Promise<number> => {
    const desired = await desiredOf(workload.images[++run % 2]!);
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
export async function rawFloors(
  backend: DockerBackend,
  peId: string,
  port: number,
  workload: FloorWorkload,
  runs: number,
  log: (text: string) => void,
): Promise<number[]> {
  const replace = await floorPe(backend, peId, port, workload);
  const floors: number[] = [];
  for (let run = 0; run < runs; run++) {
    floors.push(await replace());
    log(`floor run ${run + 1}/${runs}: ${floors.at(-1)} ms`);
  }
  return floors;
}

/**
 * For information: `total` raw replacements with `lanes` running at once (lanes PEs `<peIdPrefix>-<j>`,
 * each replaced total/lanes times in a row): what this machine allows at that concurrency, without Pulumi.
 */
export async function rawParallelFloor(
  backend: DockerBackend,
  total: number,
  lanes: number,
  peIdPrefix: string,
  basePort: number,
  workload: FloorWorkload,
): Promise<number> {
  const replacers = await Promise.all(Array.from({ length: lanes }, (_, j) => floorPe(backend, `${peIdPrefix}-${j}`, basePort + j, workload)));
  const started = performance.now();
  await Promise.all(
    replacers.map(async (replace, j) => {
      for (let i = j; i < total; i += lanes) await replace();
    }),
  );
  return Math.round(performance.now() - started);
}

export interface MemberEvent {
  action: string;
  /** The member's name (for reseat: its peId). */
  member: string;
  id: string;
  /** Engine clock, ms. */
  ms: number;
}

/**
 * Container kill/die/start events of containers carrying `label`, keyed by member (`memberOf` returns
 * undefined for containers to leave out).
 */
export async function recordMemberEvents(
  backend: DockerBackend,
  label: string,
  memberOf: (attributes: Record<string, string>) => string | undefined,
): Promise<{ stop: () => Promise<MemberEvent[]> }> {
  const events: MemberEvent[] = [];
  const subscription = await followEvents(
    backend.docker,
    backend.connection.address,
    { type: ["container"], label: [label], event: ["kill", "die", "start"] },
    (e) => {
      const member = memberOf(e.Actor.Attributes);
      if (member !== undefined) events.push({ action: e.Action, member, id: e.id, ms: e.timeNano / 1e6 });
    },
  );
  let stopped: Promise<MemberEvent[]> | undefined;
  return {
    // Idempotent: a caller may stop in a finally block too (an open subscription keeps Node alive).
    stop: () =>
      (stopped ??= (async () => {
        // Events of the last moments are still on their way (the Engine sends them asynchronously).
        await new Promise((r) => setTimeout(r, 300));
        subscription.close();
        return events;
      })()),
  };
}

/** kill/die/start events of a reseat group's executables (not its floor PEs). */
export function recordGroupEvents(backend: DockerBackend, group: string, floorPeId: string): Promise<{ stop: () => Promise<MemberEvent[]> }> {
  return recordMemberEvents(backend, `${LABELS.role}=executable`, (attributes) => {
    const peId = attributes[LABELS.peId] ?? "";
    return peId.startsWith(`${group}-`) && peId !== floorPeId ? peId : undefined;
  });
}

/** Per member of a reseat group rollout: kill, die, start (Engine events) and ready (the CLI's outputs), ms since the `up` began. */
export function memberTimelines(group: string, rollout: Run, events: MemberEvent[], outputKey: "groups" | "fleets" | string = "groups"): MemberTimeline[] {
  const members = (
    (rollout.outputs[outputKey] as Record<string, { members: { peId: string; ordinal: number; readyAt: string }[] }>)[group]?.members ?? []
  ).slice();
  members.sort((a, b) => b.ordinal - a.ordinal); // rollout order: highest ordinal first
  const at = (ms: number) => round(ms - rollout.startedAt, 0);
  return members.map((m) => {
    const timeline = eventTimeline(m.peId, events, rollout.startedAt);
    if (timeline.start !== undefined) timeline.ready = at(Date.parse(m.readyAt));
    return timeline;
  });
}

/** A member's first kill, die and start from Engine events (ms since `origin`, Unix ms). */
export function eventTimeline(member: string, events: MemberEvent[], origin: number): MemberTimeline {
  const own = events.filter((e) => e.member === member);
  const at = (ms: number) => round(ms - origin, 0);
  const kill = own.find((e) => e.action === "kill");
  const die = own.find((e) => e.action === "die");
  const start = own.find((e) => e.action === "start");
  const timeline: MemberTimeline = { name: member };
  if (kill) timeline.kill = at(kill.ms);
  if (die) timeline.die = at(die.ms);
  if (start) timeline.start = at(start.ms);
  return timeline;
}

/** One line of the provider-call trace (RESEAT_TRACE_FILE, see src/provider/runtime.ts). */
export interface TraceLine {
  kind: string;
  method: string;
  peId?: string;
  phase: "begin" | "end";
  /** Unix ms. */
  ms: number;
}

/** Reads (and empties) a provider-call trace file. */
export function takeTrace(file: string): TraceLine[] {
  if (!fs.existsSync(file)) return [];
  const lines = fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as TraceLine);
  fs.rmSync(file);
  return lines;
}

/**
 * Where each member's hand-off goes (ms, one value per member that waited for another), from the
 * provider-call trace and the Engine events:
 * - afterReady: the predecessor's ready → its create call returns (reseat: commit status, outputs);
 * - pulumi: that return → this member's check call begins (the engine records the step and writes the
 *   checkpoint, the program learns of it and registers the next member);
 * - check: reseat's check (engine identity, image resolved);
 * - toCreate: check returned → create begins (Pulumi: the diff call, the step's scheduling);
 * - beforeStop: create begins → the old executable's stop request (reseat: lock, observation, the new
 *   executable prepared).
 */
export function handoffPhases(group: string, members: MemberTimeline[], trace: TraceLine[], origin: number, mu: number): Record<string, number[]> {
  const first = (peId: string, method: string, phase: TraceLine["phase"]) =>
    trace.find((t) => t.kind === "Executable" && t.peId === peId && t.method === method && t.phase === phase)?.ms;
  const phases: Record<string, number[]> = { afterReady: [], pulumi: [], check: [], toCreate: [], beforeStop: [] };
  const byName = new Map(members.map((m) => [m.name, m]));
  for (const m of members) {
    const before = byName.get(`${group}-${Number(m.name.slice(group.length + 1)) + mu}`);
    if (!before || before.ready === undefined || m.kill === undefined) continue;
    const times = [
      origin + before.ready,
      first(before.name, "create", "end"),
      first(m.name, "check", "begin"),
      first(m.name, "check", "end"),
      first(m.name, "create", "begin"),
      origin + m.kill,
    ];
    if (times.some((t) => t === undefined)) continue;
    Object.keys(phases).forEach((phase, i) => phases[phase]!.push(times[i + 1]! - times[i]!));
  }
  return phases;
}

/** Per member: its old executable's stop request minus the ready time of the member it waited for. */
export function handoffMs(group: string, members: MemberTimeline[], mu: number): number[] {
  const byName = new Map(members.map((m) => [m.name, m]));
  const result: number[] = [];
  for (const m of members) {
    const ordinal = Number(m.name.slice(group.length + 1));
    const before = byName.get(`${group}-${ordinal + mu}`);
    if (m.kill !== undefined && before?.ready !== undefined) result.push(m.kill - before.ready);
  }
  return result;
}

/** The most members between their old executable's die and their new one's start at once. */
export function maxConcurrentlyDown(members: MemberTimeline[]): number {
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

/**
 * Removes a group bench's containers (members and their locks; floor PEs whose id starts with
 * `floorPrefix`; plain containers whose name starts with `plainPrefix`) and its state volumes. Only
 * what this bench names: other benches may run on the same engine.
 */
export async function removeGroupLeftovers(backend: DockerBackend, group: string, own: { plainPrefix: string; floorPrefix: string }): Promise<void> {
  const containers = await backend.docker.listContainers({ all: true });
  for (const c of containers) {
    const peId = c.Labels[LABELS.peId] ?? "";
    const plain = c.Labels[PLAIN_LABEL] && c.Names.some((n) => n.replace(/^\//, "").startsWith(`${own.plainPrefix}-`));
    const floor = c.Labels[FLOOR_LABEL]?.startsWith(own.floorPrefix);
    if (peId.startsWith(`${group}-`) || plain || floor) {
      await backend.remove(c.Id).catch(() => undefined);
    }
  }
  const volumes = await backend.docker.listVolumes();
  for (const v of volumes.Volumes ?? []) {
    if (v.Name.startsWith(`reseat-${group}-`) || v.Name.startsWith(`reseat-${own.floorPrefix}`)) await backend.removeVolume(v.Name).catch(() => undefined);
  }
}
