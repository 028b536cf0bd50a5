// What the scale bench asks of each peer (OpenTofu, Docker Compose, a StatefulSet): N members of the
// workload at images[0], then one rollout per concurrency to the other image, then everything removed.
import { spawn } from "node:child_process";
import { DockerBackend } from "../../src/backend/docker/dockerBackend";
import { MemberEvent, eventTimeline, maxConcurrentlyDown, recordMemberEvents } from "../groupBench";
import type { ScaleWorkload } from "../scaleWorkload";

/** Labels of every Docker object a peer creates: which system, and which member. */
export const SYSTEM_LABEL = "io.reseat.bench-scale";
export const MEMBER_LABEL = "io.reseat.bench-scale-member";

export interface PeerContext {
  n: number;
  workload: ScaleWorkload;
  /** Docker healthcheck interval (ms) where the peer's readiness wait needs one. */
  healthIntervalMs: number;
  log: (text: string) => void;
}

export interface PeerRollout {
  /** The rollout's wall time, ms: what the bench compares reseat with. */
  ms: number;
  /** How it was derived and what else was seen (raw times, members down at once, ...). */
  detail: Record<string, unknown>;
}

export interface Peer {
  readonly name: "opentofu" | "compose" | "statefulset";
  /** Why it cannot run here (checked before anything is created), or undefined. */
  unavailable(): Promise<string | undefined>;
  /** N members at images[0], ready. */
  setUp(): Promise<void>;
  /** The image change to `image`, at most `k` at a time (as far as the peer has such a knob). */
  roll(image: string, k: number): Promise<PeerRollout>;
  /** Removes everything the peer created (also after a failure); never throws. */
  tearDown(): Promise<void>;
}

/** Wall time of one command run to its end (ms); fails with its output unless it exits 0. */
export function timedCommand(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ ms: number; output: string }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0
        ? resolve({ ms: Math.round(performance.now() - started), output })
        : reject(new Error(`${cmd} ${args.join(" ")} exited ${code}:\n${output.slice(-3000)}`)),
    );
  });
}

/** Engine events of one Docker peer's members (by its labels): how many were down at once. */
export async function recordPeerEvents(
  backend: DockerBackend,
  system: string,
): Promise<{ stop: (origin: number) => Promise<{ maxMembersDownAtOnce: number; events: MemberEvent[] }> }> {
  const recording = await recordMemberEvents(backend, `${SYSTEM_LABEL}=${system}`, (attributes) => attributes[MEMBER_LABEL]);
  return {
    // Idempotent (the recording's stop is).
    stop: async (origin) => {
      const events = await recording.stop();
      const members = [...new Set(events.map((e) => e.member))].map((m) => eventTimeline(m, events, origin));
      return { maxMembersDownAtOnce: maxConcurrentlyDown(members), events };
    },
  };
}

/** Removes a Docker peer's containers and volumes (by its system label). */
export async function removeLabelled(backend: DockerBackend, system: string): Promise<void> {
  const filters = JSON.stringify({ label: [`${SYSTEM_LABEL}=${system}`] });
  for (const c of await backend.docker.listContainers({ all: true, filters })) await backend.remove(c.Id).catch(() => undefined);
  for (const v of (await backend.docker.listVolumes({ filters })).Volumes ?? []) await backend.removeVolume(v.Name).catch(() => undefined);
}

/** Polls until every member container of a Docker peer runs `imageId` and reports healthy; resolves with the time (performance.now()). */
export async function waitAllHealthy(backend: DockerBackend, system: string, n: number, imageId: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const filters = JSON.stringify({ label: [`${SYSTEM_LABEL}=${system}`], health: ["healthy"] });
  for (;;) {
    const healthy = await backend.docker.listContainers({ filters });
    if (healthy.filter((c) => c.ImageID === imageId).length >= n) return performance.now();
    if (Date.now() > deadline) throw new Error(`${system}: ${healthy.length} of ${n} members healthy on ${imageId.slice(0, 19)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
