// Test harness: each integration test gets its own Pulumi project folder under .work/ (inside the
// checkout, so the dynamic-provider plugin resolves @pulumi/pulumi), its own file backend, and runs
// the real `reseat` CLI (Automation API on the real Pulumi CLI) in a separate Node process.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type Dockerode from "dockerode";
import { LABELS } from "../../src/backend/backend";
import { dockerClient } from "../../src/backend/docker/client";
import { resolveConnection } from "../../src/backend/docker/connection";
import { followEvents } from "../../src/backend/docker/events";

export const ROOT = path.resolve(__dirname, "..", "..");
export const CLI = path.join(ROOT, "dist", "src", "cli", "main.js");
/** The engine the tests run on (DOCKER_HOST, else the local socket), as dockerode sees it. */
export const connection = resolveConnection();
export const docker = dockerClient(connection);

/** The promise's value, or undefined when the engine answered 404 (no such container, volume, image). */
export async function orUndefined<T>(promise: Promise<T>): Promise<T | undefined> {
  try {
    return await promise;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return undefined;
    throw error;
  }
}

export interface Project {
  dir: string;
  stack: string;
}

/** A fresh project folder with the given PE specs as its stack config. */
export function makeProject(name: string, specs: unknown[], stack = "test"): Project {
  const dir = path.join(ROOT, ".work", `${name}-${process.pid}-${Date.now().toString(36)}`);
  fs.mkdirSync(path.join(dir, "stacks"), { recursive: true });
  // The checkout's Pulumi.yaml minus `main`: the program comes from the CLI (dist/stacks by default).
  const projectFile = fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8").replace(/^main:.*\n/m, "");
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), projectFile);
  const project = { dir, stack };
  setSpecs(project, specs);
  return project;
}

/** Rewrites the stack's config (JSON is valid YAML), keeping the secrets set with setSecret. */
export function setSpecs(project: Project, specs: unknown[]): void {
  const file = path.join(project.dir, "stacks", `Pulumi.${project.stack}.yaml`);
  const kept = secretsOf(file);
  const config = { ...(kept.encryptionsalt ? { encryptionsalt: kept.encryptionsalt } : {}), config: { ...kept.secure, "reseat:processingElements": specs } };
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
}

/** Sets a secret stack config key `reseat:<key>` (`pulumi config set --secret`), the value from stdin, never argv. */
export function setSecret(project: Project, key: string, value: string): void {
  const env = { ...process.env, PULUMI_BACKEND_URL: `file://${path.join(project.dir, ".pulumi-state")}` };
  fs.mkdirSync(path.join(project.dir, ".pulumi-state"), { recursive: true });
  execFileSync("pulumi", ["stack", "select", "--create", project.stack], { cwd: project.dir, env, stdio: "ignore" });
  execFileSync("pulumi", ["config", "set", "--secret", "--stack", project.stack, `reseat:${key}`], {
    cwd: project.dir,
    env,
    input: value,
    stdio: ["pipe", "ignore", "inherit"],
  });
}

/** The encrypted entries of a stack config file (JSON as written here, or YAML as Pulumi writes it). */
function secretsOf(file: string): { encryptionsalt?: string; secure: Record<string, { secure: string }> } {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return { secure: {} };
  }
  try {
    const doc = JSON.parse(text) as { encryptionsalt?: string; config?: Record<string, unknown> };
    const secure = Object.entries(doc.config ?? {}).filter(([, v]) => typeof v === "object" && v !== null && "secure" in v);
    return { encryptionsalt: doc.encryptionsalt, secure: Object.fromEntries(secure) as Record<string, { secure: string }> };
  } catch {
    // Pulumi's YAML, block or flow style: `encryptionsalt: v1:…` and `<key>: {secure: v1:…}` (quotes optional).
    const secure: Record<string, { secure: string }> = {};
    for (const match of text.matchAll(/['"]?([A-Za-z][\w.-]*:[\w.-]+)['"]?:\s*\{?\s*secure:\s*['"]?([^'"\s,}]+)/g)) secure[match[1]!] = { secure: match[2]! };
    return { encryptionsalt: /encryptionsalt:\s*['"]?([^'"\s,}]+)/.exec(text)?.[1], secure };
  }
}

export interface CliResult {
  code: number;
  doc: {
    ok: boolean;
    error?: string;
    steps?: { op: string; urn: string; type: string }[];
    outputs?: Record<string, unknown>;
    changeSummary?: Record<string, number>;
    summary?: Record<string, number>;
  };
  stderr: string;
}

export function reseatCli(project: Project, command: string, ...extra: string[]): Promise<CliResult> {
  ensureStack(project);
  return run(process.execPath, [CLI, command, "--cwd", project.dir, "--stack", project.stack, "--json", ...extra]);
}

/** The projects' stacks known to exist (the reseat CLI creates a stack only with `up --create`). */
const existingStacks = new Set<string>();

/** Creates the project's stack before its first reseat command, as a user's `pulumi stack init` would (a stack the test made itself is kept). */
function ensureStack(project: Project): void {
  const key = `${project.dir}\0${project.stack}`;
  if (existingStacks.has(key)) return;
  fs.mkdirSync(path.join(project.dir, ".pulumi-state"), { recursive: true });
  const init = spawnSync("pulumi", ["stack", "init", project.stack, "--no-select", "--non-interactive"], { cwd: project.dir, encoding: "utf8" });
  if (init.status !== 0 && !/already exists/.test(init.stderr))
    throw new Error(`pulumi stack init ${project.stack} (in ${project.dir}) failed: ${init.stderr}`);
  existingStacks.add(key);
}

export interface ProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, collecting its output. */
export function runProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** Runs a `--json` command: its stdout is one JSON document. */
export async function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  const { code, stdout, stderr } = await runProcess(cmd, args, env);
  let doc: CliResult["doc"];
  try {
    doc = JSON.parse(stdout) as CliResult["doc"];
  } catch {
    doc = { ok: false, error: `unparsable stdout: ${stdout.slice(0, 2000)}` };
  }
  return { code, doc, stderr };
}

/** Runs a CLI command and fails the test with Pulumi's own output when it does not succeed. */
export async function mustSucceed(project: Project, command: string, ...extra: string[]): Promise<CliResult> {
  return expectOk(command, await reseatCli(project, command, ...extra));
}

/** Fails the test with Pulumi's own output when a CLI command did not succeed. */
export function expectOk(command: string, result: CliResult): CliResult {
  if (result.code !== 0 || !result.doc.ok) {
    throw new Error(`reseat ${command} failed (${result.code}): ${result.doc.error}\n--- stderr ---\n${result.stderr.slice(-4000)}`);
  }
  return result;
}

export interface PeOutputs {
  peId: string;
  generation: number;
  executableId: string;
  executableName: string;
  volumeName: string;
  host: string;
  commitIntervalMs: number;
  replacedAt: string;
  [key: string]: unknown;
}

export function peOutputs(result: CliResult, peId: string): PeOutputs {
  const pes = result.doc.outputs?.processingElements as Record<string, PeOutputs> | undefined;
  const pe = pes?.[peId];
  if (!pe) throw new Error(`no outputs for PE ${peId}: ${JSON.stringify(result.doc.outputs)}`);
  return pe;
}

interface Summary {
  Id: string;
  Names: string[];
  State: string;
  Labels: Record<string, string>;
}

export async function containersOf(peId: string, all = true): Promise<Summary[]> {
  return (await docker.listContainers({ all, filters: { label: [`${LABELS.peId}=${peId}`] } })) as unknown as Summary[];
}

export async function volumeExists(name: string): Promise<boolean> {
  return (await orUndefined(docker.getVolume(name).inspect())) !== undefined;
}

export async function httpJson<T>(port: number, pathAndQuery: string, method = "GET"): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${port}${pathAndQuery}`, { method });
  if (!res.ok) throw new Error(`${method} ${pathAndQuery} -> ${res.status}`);
  return (await res.json()) as T;
}

/** Removes everything a test made for these PEs, volumes included (tests own their volumes). */
export async function cleanup(peIds: string[]): Promise<void> {
  for (const peId of peIds) {
    for (const c of await containersOf(peId)) {
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined);
    }
    await docker
      .getVolume(`reseat-${peId}-state`)
      .remove()
      .catch(() => undefined);
  }
}

/**
 * An independent observer: polls the engine for running executables of one PE and records the
 * largest number seen running at once. Replacement must keep this at most 1.
 */
export function watchConcurrency(peId: string, intervalMs = 15): { stop: () => Promise<{ maxRunning: number; samples: number }> } {
  let maxRunning = 0;
  let samples = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const running = await containersOf(peId, false).catch(() => []);
      maxRunning = Math.max(maxRunning, running.length);
      samples++;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return { maxRunning, samples };
    },
  };
}

export function demoSpec(peId: string, port: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    peId,
    image: "reseat-demo-workload:v1",
    network: "host",
    env: { PORT: String(port) },
    commitInterval: "5s",
    stop: { graceSeconds: 5 },
    readiness: { httpGet: { port, path: "/healthz" }, timeout: "30s" },
    ...overrides,
  };
}

/**
 * The engine's own log of events from `since` (seconds) up to now: a query with `until` ends once the engine
 * has sent every event up to then, so a watcher can catch up with what its live stream has not delivered
 * yet without sleeping for it. (The log is a bounded ring: use it for the tail, not for a long recording.)
 */
export async function engineEventsUntilNow(
  client: Dockerode,
  since: number,
  filters: Record<string, string[]>,
): Promise<{ Action: string; id: string; timeNano: number; Actor: { Attributes: Record<string, string> } }[]> {
  const stream = (await client.getEvents({ since, until: Math.ceil(Date.now() / 1000), filters } as object)) as NodeJS.ReadableStream;
  let text = "";
  for await (const chunk of stream) text += chunk.toString();
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as { Action: string; id: string; timeNano: number; Actor: { Attributes: Record<string, string> } });
}

/**
 * Engine events for one PE: a container counts as live from its `start` event to its `die` event.
 * Returns the largest number live at once, and the events seen, in engine order.
 */
export async function recordLiveness(
  peId: string,
): Promise<{ stop: () => Promise<{ maxLive: number; events: { action: string; id: string; timeNano: number }[] }> }> {
  // The engine's `since` counts whole seconds: ask from a second early, then keep only what happened
  // from now on (timeNano, on the clock this host shares with its engines).
  const startedNano = Date.now() * 1e6;
  const since = Math.floor(Date.now() / 1000) - 1;
  const filters = { type: ["container"], label: [`${LABELS.peId}=${peId}`], event: ["start", "die"] };
  const streamed: { action: string; id: string; timeNano: number }[] = [];
  const subscription = await followEvents(docker, connection.address, filters, (e) => streamed.push({ action: e.Action, id: e.id, timeNano: e.timeNano }), {
    since,
  });
  return {
    stop: async () => {
      // The live stream may lag behind the engine: the engine's own log, read up to now, adds what has not
      // arrived yet (a query with `until` ends once it has sent every event up to then; no sleep for it).
      const from = Math.max(since, Math.floor((streamed.at(-1)?.timeNano ?? 0) / 1e9));
      const logged = await engineEventsUntilNow(docker, from, filters);
      subscription.close();
      const byKey = new Map(streamed.map((e) => [`${e.id}/${e.action}/${e.timeNano}`, e]));
      for (const e of logged) byKey.set(`${e.id}/${e.Action}/${e.timeNano}`, { action: e.Action, id: e.id, timeNano: e.timeNano });
      const events = [...byKey.values()].filter((e) => e.timeNano >= startedNano).sort((a, b) => a.timeNano - b.timeNano);
      const live = new Set<string>();
      let maxLive = 0;
      for (const e of events) {
        if (e.action === "start") live.add(e.id);
        if (e.action === "die") live.delete(e.id);
        maxLive = Math.max(maxLive, live.size);
      }
      return { maxLive, events };
    },
  };
}

export function sessionSpec(peId: string, port: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    peId,
    image: "reseat-session-workload:v1",
    network: "host",
    env: { PORT: String(port) },
    commitInterval: "1s",
    stop: { graceSeconds: 10 },
    readiness: { httpGet: { port, path: "/healthz" }, timeout: "30s" },
    ...overrides,
  };
}

export interface Ack {
  key: string;
  value: number;
  seq: number;
  at: number;
}

/**
 * Writers that PUT sessions as fast as the service acknowledges them, until stopped or until the
 * service stops answering. Only acknowledged writes (HTTP 200 with a seq) are recorded.
 */
export function startWriters(port: number, count = 4, prefix = "user"): { acks: Ack[]; stop: () => Promise<void> } {
  const acks: Ack[] = [];
  let stopped = false;
  const loops = Array.from({ length: count }, async (_, writer) => {
    for (let i = 0; !stopped; i++) {
      const key = `${prefix}-${writer}`;
      try {
        const res = await fetch(`http://127.0.0.1:${port}/sessions/${key}`, { method: "PUT", body: JSON.stringify({ n: i }) });
        if (res.status !== 200) return;
        const body = (await res.json()) as { seq: number };
        acks.push({ key, value: i, seq: body.seq, at: Date.now() });
      } catch {
        return; // connection refused/reset: the executable is gone
      }
    }
  });
  return {
    acks,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/** The newest acknowledged value per key. */
export function lastAcked(acks: Ack[]): Map<string, number> {
  const last = new Map<string, number>();
  for (const ack of acks) if ((last.get(ack.key) ?? -1) < ack.value) last.set(ack.key, ack.value);
  return last;
}

export async function sessions(port: number): Promise<{ seq: number; sessions: Record<string, { n: number }> }> {
  return httpJson(port, "/sessions");
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Writers that survive kills: a refused or failed request is retried, only 200s count as acknowledged. */
export function startPersistentWriters(port: number, count = 2, prefix = "chaos"): { acks: Ack[]; stop: () => Promise<void> } {
  const acks: Ack[] = [];
  let stopped = false;
  const loops = Array.from({ length: count }, async (_, writer) => {
    let i = 0;
    while (!stopped) {
      const key = `${prefix}-${writer}`;
      try {
        const res = await fetch(`http://127.0.0.1:${port}/sessions/${key}`, {
          method: "PUT",
          body: JSON.stringify({ n: i }),
          signal: AbortSignal.timeout(2000),
        });
        if (res.status === 200) {
          const body = (await res.json()) as { seq: number };
          acks.push({ key, value: i, seq: body.seq, at: Date.now() });
          i++;
          continue;
        }
      } catch {
        // the executable is being replaced
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  return {
    acks,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/** `reseat watch --json` in its own process; its JSON-line events are collected. */
export function startController(
  env: NodeJS.ProcessEnv = process.env,
  extraArgs: string[] = [],
): { events: Record<string, unknown>[]; stop: () => Promise<void>; ready: Promise<void> } {
  const child = spawn(process.execPath, [CLI, "watch", "--json", ...extraArgs], { env, stdio: ["ignore", "pipe", "pipe"] });
  const events: Record<string, unknown>[] = [];
  let buffer = "";
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout.on("data", (d: Buffer) => {
    buffer += d.toString();
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (!line.trim()) continue;
      const event = JSON.parse(line) as Record<string, unknown>;
      events.push(event);
      if (event.kind === "watching") markReady();
    }
  });
  child.stderr.on("data", (d: Buffer) => process.stderr.write(d));
  return {
    events,
    ready,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.on("close", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

export async function runningOf(peId: string): Promise<Summary[]> {
  return containersOf(peId, false);
}

/** All reseat-made containers of a PE that are neither its one executable nor expected: orphans. */
export async function leftovers(peId: string): Promise<string[]> {
  const all = await containersOf(peId, true);
  return all.filter((c) => c.State !== "running").map((c) => `${c.Names[0]} (${c.State}, ${c.Labels[LABELS.role]})`);
}

/** The file backend's checkpoint of the project's stack, as Pulumi wrote it (for what state holds). */
export function checkpointText(project: Project): string {
  const stacks = path.join(project.dir, ".pulumi-state", ".pulumi", "stacks");
  const file = fs
    .readdirSync(stacks)
    .map((name) => path.join(stacks, name, `${project.stack}.json`))
    .find((candidate) => fs.existsSync(candidate));
  if (!file) throw new Error(`no checkpoint of stack ${project.stack} under ${stacks}`);
  return fs.readFileSync(file, "utf8");
}
