// The demo (scripts/demo.sh): what reseat is for, on the embedded defaults, in about a minute.
//   node dist/stacks/demo.js [--stack local|k8s] [--json]
// 1. `up` the stack: PE "demo" runs the session-context service (workload/session), which keeps its state
//    with reseat's state library on the state volume and commits it to the persistent store (a directory
//    store); acknowledged writes; a commit; `refresh`: the stack outputs before.
// 2. The image change a user makes (edit stacks/Pulumi.<stack>.yaml), `up`: the executable is replaced,
//    the volume kept; the stack outputs after, side by side with before.
// 3. (Docker) kill -9 of the executable while the failure controller (`reseat watch`) runs: reseated on
//    the same volume, every write kept.
// 4. (Docker) a group of 3 PEs (stack local-group) rolled one at a time, with the rollout's timeline.
// Plain output is one screen for a person (Pulumi's own output goes to .work/demo/<stack>.log); --json
// prints one document for machines (progress on stderr). The tracked stack configs are restored at the end.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import type { Stack } from "@pulumi/pulumi/automation";
import { openStack, PROJECT_ROOT } from "../src/automation/stack";
import { DockerBackend } from "../src/backend/docker/dockerBackend";
import { KubernetesBackend } from "../src/backend/kubernetes/kubernetesBackend";
import { memberTimelines, recordGroupEvents, type MemberEvent, type Run } from "../bench/groupBench";
import { renderTimeline, renderTimelineText, TEXT_TIMELINE_LEGEND, type MemberTimeline } from "../bench/timeline";

const GROUP_STACK = "local-group";
const GROUP_PROGRAM = path.join(PROJECT_ROOT, "dist", "stacks", "groups.js");
const WORK = path.join(PROJECT_ROOT, ".work", "demo");
const CLI = path.join(PROJECT_ROOT, "dist", "src", "cli", "main.js");

/** What the demo takes from a stack config: the PE (or group) it drives, its image (v1, changed to v2), its port. */
interface DemoTarget {
  /** The PE's id, or the group's name. */
  name: string;
  from: string;
  to: string;
  /** The PE's port, or the group's base port (member o answers on base + o). */
  port: number;
  namespace?: string;
}

/**
 * Reads the stack config the way a person would: the first `peId:` (or group `name:`), `image:` and port.
 * The image must end in `:v1`, the tag the demo changes to `:v2`.
 */
function readDemoConfig(text: string, file: string, kind: "pe" | "group"): DemoTarget {
  const field = (pattern: RegExp, what: string) => {
    const value = pattern.exec(text)?.[1];
    if (value === undefined) throw new Error(`${file}: no ${what}`);
    return value;
  };
  const name = field(kind === "pe" ? /peId:\s*(\S+)/ : /name:\s*(\S+)/, kind === "pe" ? "peId" : "group name");
  const from = field(/image:\s*(\S+)/, "image");
  if (!from.endsWith(":v1")) throw new Error(`${file}: image: expected a tag :v1 (the demo changes it to :v2), got ${from}`);
  const port = Number(kind === "pe" ? field(/PORT:\s*"?(\d+)/, "env.PORT") : field(/PORT:\s*"\{\{ordinal \+ (\d+)\}\}"/, 'env.PORT "{{ordinal + N}}"'));
  const namespace = /^\s+kubernetes:/m.test(text) ? (/namespace:\s*(\S+)/.exec(text)?.[1] ?? "default") : undefined;
  return { name, from, to: from.replace(/:v1$/, ":v2"), port, ...(namespace ? { namespace } : {}) };
}
/** Stack configs the demo changed, each with the way back (also run on Ctrl-C). */
const restores = new Set<() => void>();

/** Waits for a condition the demo caused (a commit, a reseat) give up after this long, with an error. */
const WAIT_LIMIT_MS = 60_000;

/** A PE's stack outputs, as the demo reads them. */
interface PeOutputs {
  peId: string;
  generation: number;
  executableName: string;
  volumeName: string;
  host: string;
  lastCommit: { seq: number; at: string; bytes: number } | null;
  commitLagMs: number | null;
  resumedFrom: string | null;
  resumedSeq: number | null;
  /** The last replacement's gap: the old executable told to stop → the new one ready (ISO times). */
  replacedAt: string;
  readyAt: string;
}

interface Write {
  key: string;
  seq: number;
  value: Session;
}

interface Session {
  user: string;
  cart: string[];
  writtenAt: string;
  run: string;
}

/** What the workload's state library reports (GET /status). */
interface LibraryStatus {
  generation: number;
  seq: number;
  resumedFrom: string | null;
  lastCommit: { seq: number; at: string } | null;
}

interface StepTime {
  step: string;
  ms: number;
}

// ---- output: lines for a person, or one JSON document ---------------------------------------------------

class Report {
  readonly steps: StepTime[] = [];
  constructor(private readonly json: boolean) {}
  /** A line of the plain report (stderr with --json, so that stdout stays one document). */
  line(text = ""): void {
    (this.json ? process.stderr : process.stdout).write(`${text.trimEnd()}\n`);
  }
  /** Runs one step: its title at once, its time at the end of the same line when it is done. */
  async timed<T>(step: string, title: string, run: () => Promise<T>): Promise<T> {
    const out = this.json ? process.stderr : process.stdout;
    out.write(title.padEnd(66));
    const started = performance.now();
    try {
      const value = await run();
      const ms = Math.round(performance.now() - started);
      this.steps.push({ step, ms });
      out.write(` ${seconds(ms).padStart(7)}\n`);
      return value;
    } catch (error) {
      out.write(" failed\n");
      throw error;
    }
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const tagOf = (image: string) => image.split(":").at(-1)!;
const clock = (iso: string) => iso.slice(11, 23);

// ---- Pulumi -----------------------------------------------------------------------------------------------

/** One Pulumi log per stack: the person's screen gets one line per step, the log gets everything. */
function pulumiLog(stackName: string): (text: string) => void {
  const file = path.join(WORK, `${stackName}.log`);
  return (text) => fs.appendFileSync(file, text);
}

async function stackOf(stackName: string, programModule?: string): Promise<Stack> {
  return openStack({ stackName, create: true, ...(programModule ? { programModule } : {}) });
}

async function upOutputs(stack: Stack): Promise<{ outputs: Record<string, unknown>; startedAt: number; ms: number }> {
  const startedAt = Date.now();
  const result = await stack.up({ onOutput: pulumiLog(stack.name), color: "never" });
  return { outputs: plainOutputs(result.outputs), startedAt, ms: Date.now() - startedAt };
}

/**
 * The stack outputs as the engine is now: `up --refresh`. (A plain `refresh` updates the resources' state
 * but not the stack outputs, which only a program run computes; nothing changes, so the `up` changes nothing.)
 */
async function refreshedOutputs(stack: Stack): Promise<Record<string, unknown>> {
  const result = await stack.up({ refresh: true, onOutput: pulumiLog(stack.name), color: "never" });
  return plainOutputs(result.outputs);
}

function plainOutputs(outputs: Record<string, { value: unknown }>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(outputs).map(([key, output]) => [key, output.value]));
}

function peOf(outputs: Record<string, unknown>, peId: string): PeOutputs {
  const pe = (outputs.processingElements as Record<string, PeOutputs> | undefined)?.[peId];
  if (!pe) throw new Error(`the stack outputs have no processingElements.${peId}`);
  return pe;
}

// ---- the workload (the session-context service) ----------------------------------------------------------

interface Target {
  /** Where PE `pe` answers now. */
  url(pe: PeOutputs): Promise<string>;
}

const dockerTarget = (port: number): Target => ({ url: async () => `http://127.0.0.1:${port}` });

/** On Kubernetes the workload answers at its pod's address. */
function kubernetesTarget(namespace: string, port: number): Target {
  const backend = new KubernetesBackend({ namespace });
  return {
    url: async (pe) => {
      const pod = await backend.clients.core.readNamespacedPod({ name: pe.executableName, namespace });
      return `http://${pod.status?.podIP}:${port}`;
    },
  };
}

async function http<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init);
  const body = (await res.json()) as T & { error?: string };
  if (!res.ok) throw new Error(`${init?.method ?? "GET"} ${url}: ${res.status} ${body.error ?? ""}`);
  return body;
}

async function writeSession(base: string, user: string, cart: string[], run: string): Promise<Write> {
  const value: Session = { user, cart, writtenAt: new Date().toISOString(), run };
  const key = `session:${user}`;
  const { seq } = await http<{ seq: number }>(`${base}/sessions/${encodeURIComponent(key)}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(value),
  });
  return { key, seq, value };
}

/** The writes (of this run) the workload holds exactly as acknowledged. */
async function keptWrites(base: string, writes: Write[]): Promise<{ kept: number; of: number; sessions: number }> {
  const { sessions } = await http<{ sessions: Record<string, unknown> }>(`${base}/sessions`);
  const kept = writes.filter((w) => JSON.stringify(sessions[w.key]) === JSON.stringify(w.value)).length;
  return { kept, of: writes.length, sessions: Object.keys(sessions).length };
}

/** Thrown by a waitFor check: what it waits for will not come. */
class StopWaiting extends Error {}

/** Polls until `check` returns a value (a condition the demo itself caused), or fails after WAIT_LIMIT_MS. */
async function waitFor<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  for (;;) {
    const value = await check().catch((error: unknown) => {
      if (error instanceof StopWaiting) throw error;
      return undefined; // not answering yet
    });
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${WAIT_LIMIT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const committedUpTo = (base: string, seq: number) =>
  waitFor(`a commit of seq ${seq}`, async () => {
    const status = await http<LibraryStatus>(`${base}/status`);
    return status.lastCommit && status.lastCommit.seq >= seq ? status : undefined;
  });

// ---- the steps --------------------------------------------------------------------------------------------

interface Options {
  stackName: string;
  json: boolean;
}

/** Steps 1-2: before and after the image change, side by side. */
async function replacement(report: Report, options: Options, demo: DemoTarget, configFile: string, original: string, target: Target, run: string) {
  const { from: FROM, to: TO } = demo;
  const peOfStack = (outputs: Record<string, unknown>) => peOf(outputs, demo.name);
  const stack = await stackOf(options.stackName);
  const first = await report.timed("up", `1. up: PE ${demo.name} on ${FROM}`, () => upOutputs(stack));
  const base = await target.url(peOfStack(first.outputs));
  const writes: Write[] = [];
  for (const [user, cart] of [
    ["alice", ["tea"]],
    ["bob", ["milk", "bread"]],
    ["carol", ["salt"]],
  ] as const) {
    writes.push(await writeSession(base, user, [...cart], run));
  }
  report.line(`   3 writes acknowledged (seq ${writes.map((w) => w.seq).join(", ")}), each durable on the state volume before the answer`);
  await committedUpTo(base, writes.at(-1)!.seq);
  const before = peOfStack(
    await report.timed("up-refresh", "   a commit to the store (directory); up --refresh: outputs before", () => refreshedOutputs(stack)),
  );
  const keptBefore = await keptWrites(base, writes);
  for (const [user, cart] of [
    ["dave", ["rice"]],
    ["erin", ["figs", "kale"]],
  ] as const) {
    writes.push(await writeSession(base, user, [...cart], run));
  }
  const pending = await http<LibraryStatus>(`${base}/status`);
  const uncommitted = pending.seq - (pending.lastCommit?.seq ?? 0);
  report.line(
    `   2 more writes acknowledged (seq ${writes
      .slice(3)
      .map((w) => w.seq)
      .join(", ")})` + (uncommitted > 0 ? `; the store has not seen ${uncommitted === 1 ? "it" : "them"} yet` : "; already committed"),
  );

  fs.writeFileSync(configFile, original.replace(FROM, TO));
  const second = await report.timed("up-image-change", `2. image :${tagOf(FROM)} -> :${tagOf(TO)} in stacks/${path.basename(configFile)}; up`, () =>
    upOutputs(stack),
  );
  const after = peOfStack(second.outputs);
  const keptAfter = await keptWrites(await target.url(after), writes);

  const width = Math.max(30, TO.length + 3, before.executableName.length + 3, after.executableName.length + 3, before.volumeName.length + 3);
  const row = (label: string, b: string, a: string, note = "") => report.line(`   ${label.padEnd(13)}${b.padEnd(width)}${a.padEnd(width)}${note}`);
  const commit = (pe: PeOutputs) => (pe.lastCommit ? `seq ${pe.lastCommit.seq} at ${clock(pe.lastCommit.at)}` : "none");
  const advanced = before.lastCommit && after.lastCommit && after.lastCommit.seq > before.lastCommit.seq && after.lastCommit.at > before.lastCommit.at;
  report.line();
  row("", "before", "after");
  row("generation", String(before.generation), String(after.generation), after.generation === before.generation + 1 ? "+1" : "");
  row("executable", before.executableName, after.executableName);
  row("image", FROM, TO);
  row("volume", before.volumeName, after.volumeName, before.volumeName === after.volumeName ? "same" : "CHANGED");
  row("host", before.host, after.host, before.host === after.host ? "same" : "CHANGED");
  row(
    "writes",
    `${keptBefore.kept} of ${keptBefore.of} so far`,
    `${keptAfter.kept} of ${writes.length}`,
    keptAfter.kept === writes.length ? "every acknowledged write" : "LOST",
  );
  row("resumedFrom", String(before.resumedFrom), String(after.resumedFrom));
  row("lastCommit", commit(before), commit(after), advanced ? "advanced" : "");
  row("commitLagMs", String(before.commitLagMs), String(after.commitLagMs));
  row("gap", `${gapMs(before)} ms`, `${gapMs(after)} ms`, "old told to stop → new one ready (replacedAt → readyAt)");
  report.line();
  const ok =
    after.generation === before.generation + 1 && before.volumeName === after.volumeName && before.host === after.host && keptAfter.kept === writes.length;
  return { stack, base, writes, before, after, ok, advanced: Boolean(advanced) };
}

/** A replacement's gap as its outputs tell it. */
function gapMs(pe: PeOutputs): number {
  return Date.parse(pe.readyAt) - Date.parse(pe.replacedAt);
}

/** Step 3: kill -9 of the executable while `reseat watch` runs; the controller reseats it. */
async function killWhileWatched(report: Report, stack: Stack, target: Target, previous: PeOutputs, writes: Write[]) {
  const peOfStack = (outputs: Record<string, unknown>) => peOf(outputs, previous.peId);
  const watchEvents: { kind: string; peId?: string; generation?: number; at: string }[] = [];
  const watcher = startWatch((event) => watchEvents.push(event));
  try {
    const state = await waitFor("`reseat watch` to start", async () => {
      if (watcher.exitCode !== null)
        throw new StopWaiting(`\`reseat watch\` exited ${watcher.exitCode} (its output: ${path.relative(PROJECT_ROOT, WORK)}/watch.log)`);
      return watchEvents.find((e) => e.kind === "watching" || e.kind === "standby");
    });
    report.line(
      `3. kill -9 of ${previous.executableName} while \`reseat watch\` (the failure controller) runs${state.kind === "standby" ? " (another controller is the active one)" : ""}`,
    );
    const backend = new DockerBackend();
    const killedAt = Date.now();
    await backend.docker.getContainer(previous.executableName).kill({ signal: "SIGKILL" });
    const base = await target.url(previous);
    const resumed = await waitFor("the controller to reseat the PE", async () => {
      const health = await http<{ generation: number; resumedFrom: string }>(`${base}/healthz`);
      return health.generation > previous.generation ? health : undefined;
    });
    const reseatMs = Date.now() - killedAt;
    const kept = await keptWrites(base, writes);
    report.line(
      `   reseated in ${seconds(reseatMs)}: generation ${previous.generation} -> ${resumed.generation}, resumedFrom ${resumed.resumedFrom}, ${kept.kept} of ${writes.length} writes kept`,
    );
    const after = peOfStack(await report.timed("up-refresh-after-kill", "   up --refresh: the stack outputs follow", () => refreshedOutputs(stack)));
    report.line(
      `   generation ${after.generation}, volume ${after.volumeName} (${after.volumeName === previous.volumeName ? "same" : "CHANGED"}), host ${after.host} (${after.host === previous.host ? "same" : "CHANGED"}), lastCommit ${after.lastCommit ? `seq ${after.lastCommit.seq}` : "none"}, commitLagMs ${after.commitLagMs}`,
    );
    report.line();
    const ok =
      after.generation === previous.generation + 1 && after.volumeName === previous.volumeName && after.host === previous.host && kept.kept === writes.length;
    return { killed: previous.executableName, reseatMs, after, kept: kept.kept, watchEvents, ok };
  } finally {
    await stopChild(watcher);
  }
}

/** `reseat watch --json` as a child process; each JSON line is an event. */
function startWatch(onEvent: (event: { kind: string; at: string }) => void): ChildProcess {
  const child = spawn(process.execPath, [CLI, "watch", "--json"], { stdio: ["ignore", "pipe", "pipe"] });
  let buffered = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      try {
        onEvent(JSON.parse(line) as { kind: string; at: string });
      } catch {
        // not an event line
      }
    }
  });
  child.stderr!.on("data", (chunk: Buffer) => fs.appendFileSync(path.join(WORK, "watch.log"), chunk));
  return child;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/** Step 4: a group of 3 PEs rolled one at a time, with the rollout's timeline. */
async function rollingGroup(report: Report, run: string) {
  const configFile = path.join(PROJECT_ROOT, "stacks", `Pulumi.${GROUP_STACK}.yaml`);
  const original = fs.readFileSync(configFile, "utf8");
  const { name: GROUP, from: FROM, to: TO, port: portBase } = readDemoConfig(original, path.relative(PROJECT_ROOT, configFile), "group");
  const memberUrl = (ordinal: number) => `http://127.0.0.1:${portBase + ordinal}`;
  const restore = () => fs.writeFileSync(configFile, original);
  restores.add(restore);
  const stack = await stackOf(GROUP_STACK, GROUP_PROGRAM);
  try {
    const first = await report.timed(
      "group-up",
      `4. up: group ${GROUP}, ${/replicas:\s*(\d+)/.exec(original)?.[1]} PEs on :${tagOf(FROM)} (stack ${GROUP_STACK})`,
      () => upOutputs(stack),
    );
    const membersBefore = groupMembers(first.outputs, GROUP);
    const writes = new Map<string, Write>();
    for (const m of membersBefore) writes.set(m.peId, await writeSession(memberUrl(m.ordinal), `member-${m.ordinal}`, [m.peId], run));

    fs.writeFileSync(configFile, original.replace(FROM, TO));
    // The Engine's kill/die/start events of the members' executables draw the timeline.
    const events = await recordGroupEvents(new DockerBackend(), GROUP, "");
    let rollout: Awaited<ReturnType<typeof upOutputs>>;
    let recorded: MemberEvent[] = [];
    try {
      rollout = await report.timed("group-rollout", `   image :${tagOf(FROM)} -> :${tagOf(TO)}; up rolls one member at a time`, () => upOutputs(stack));
    } finally {
      recorded = await events.stop();
    }
    const runRecord: Run = { ms: rollout.ms, startedAt: rollout.startedAt, outputs: rollout.outputs };
    const timelines: MemberTimeline[] = memberTimelines(GROUP, runRecord, recorded);
    const panel = { title: `group ${GROUP}: ${FROM} -> :v2, maxUnavailable 1`, durationMs: rollout.ms, members: timelines };
    for (const line of renderTimelineText(panel)) report.line(`   ${line}`);
    report.line(`   ${TEXT_TIMELINE_LEGEND}`);
    const svg = path.join(WORK, "rollout.svg");
    fs.writeFileSync(svg, renderTimeline("reseat demo: a group rolled one at a time", [panel]));

    const membersAfter = groupMembers(rollout.outputs, GROUP);
    const results = [];
    for (const m of membersAfter) {
      const was = membersBefore.find((b) => b.peId === m.peId)!;
      const kept = await keptWrites(memberUrl(m.ordinal), [writes.get(m.peId)!]);
      results.push({
        peId: m.peId,
        generation: [was.generation, m.generation],
        volume: m.volumeName,
        sameVolume: was.volumeName === m.volumeName,
        writeKept: kept.kept === 1,
      });
    }
    const oneAtATime = maxDownAtOnce(timelines) <= 1;
    report.line(
      `   each member: generation +1 on the same volume, its write kept: ${results.every((r) => r.sameVolume && r.writeKept && r.generation[1] === r.generation[0]! + 1) ? "yes" : "NO"}; ` +
        `never more than one member down: ${oneAtATime ? "yes" : "NO"}   (picture: ${path.relative(PROJECT_ROOT, svg)})`,
    );
    const ok = results.every((r) => r.sameVolume && r.writeKept && r.generation[1] === r.generation[0]! + 1) && oneAtATime;
    return { members: results, timeline: timelines, rolloutMs: rollout.ms, svg, ok };
  } finally {
    restore();
    restores.delete(restore);
  }
}

function groupMembers(outputs: Record<string, unknown>, name: string): { peId: string; ordinal: number; generation: number; volumeName: string }[] {
  const group = (outputs.groups as Record<string, { members: { peId: string; ordinal: number; generation: number; volumeName: string }[] }> | undefined)?.[
    name
  ];
  if (!group) throw new Error(`the stack outputs have no groups.${name}`);
  return [...group.members].sort((a, b) => b.ordinal - a.ordinal);
}

/** The most members without a serving executable at once (stop request → ready). */
function maxDownAtOnce(members: MemberTimeline[]): number {
  const edges = members.flatMap((m) => (m.kill !== undefined && m.ready !== undefined ? [[m.kill, 1] as const, [m.ready, -1] as const] : []));
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let down = 0;
  let most = 0;
  for (const [, delta] of edges) most = Math.max(most, (down += delta));
  return most;
}

// ---- main -------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { stack: { type: "string", default: "local" }, json: { type: "boolean", default: false } } });
  const options: Options = { stackName: values.stack!, json: values.json! };
  const report = new Report(options.json);
  fs.mkdirSync(WORK, { recursive: true });
  for (const file of fs.readdirSync(WORK)) if (file.endsWith(".log")) fs.rmSync(path.join(WORK, file));
  const configFile = path.join(PROJECT_ROOT, "stacks", `Pulumi.${options.stackName}.yaml`);
  if (!fs.existsSync(configFile)) throw new Error(`--stack: no stack config ${path.relative(PROJECT_ROOT, configFile)} (the demo's stacks: local, k8s)`);
  const original = fs.readFileSync(configFile, "utf8");
  const restore = () => fs.writeFileSync(configFile, original);
  restores.add(restore);
  // An interrupted demo still leaves the tracked stack configs as they were.
  process.once("SIGINT", () => {
    for (const undo of restores) undo();
    process.exit(130);
  });

  const demo = readDemoConfig(original, path.relative(PROJECT_ROOT, configFile), "pe");
  const namespace = demo.namespace;
  const kubernetes = namespace !== undefined;
  if (namespace) await ensureNamespace(namespace);
  const target = namespace ? kubernetesTarget(namespace, demo.port) : dockerTarget(demo.port);
  const run = new Date().toISOString();
  const started = performance.now();
  report.line(
    `reseat demo: stack "${options.stackName}" on ${kubernetes ? `the cluster KUBECONFIG reaches (namespace ${namespace})` : "the local Docker Engine"}, ` +
      `Pulumi state in .pulumi-state/ (Pulumi's output: ${path.relative(PROJECT_ROOT, WORK)}/)`,
  );
  report.line();

  const doc: Record<string, unknown> = { stack: options.stackName };
  let ok = false;
  try {
    const replaced = await replacement(report, options, demo, configFile, original, target, run);
    Object.assign(doc, {
      writes: replaced.writes.map((w) => ({ key: w.key, seq: w.seq })),
      before: replaced.before,
      after: replaced.after,
      lastCommitAdvanced: replaced.advanced,
    });
    ok = replaced.ok;
    if (!kubernetes) {
      const killed = await killWhileWatched(report, replaced.stack, target, replaced.after, replaced.writes);
      const group = await rollingGroup(report, run);
      Object.assign(doc, { kill: killed, group });
      ok = ok && killed.ok && group.ok;
    } else {
      report.line("(the kill -9 under `reseat watch` and the rolling group run on the Docker demo: bash scripts/demo.sh)");
    }
  } finally {
    restore();
  }
  const totalMs = Math.round(performance.now() - started);
  report.line();
  report.line(
    ok
      ? `summary: OK in ${seconds(totalMs)}: every acknowledged write kept through the image change${kubernetes ? "" : ", a kill -9 and a rolling update of 3 PEs"}; same volume and host each time.`
      : `summary: FAILED in ${seconds(totalMs)} (see above; Pulumi's output: ${path.relative(PROJECT_ROOT, WORK)}/)`,
  );
  report.line(
    `next: \`node dist/src/cli/main.js outputs --stack ${options.stackName}\` shows the same outputs; the next demo run returns the PE to v1 (another replacement, same volume).`,
  );
  if (options.json) process.stdout.write(JSON.stringify({ ok, ...doc, steps: report.steps, totalMs }, null, 2) + "\n");
  if (!ok) process.exitCode = 1;
}

/** The demo's namespace, made if missing (a namespace is the cluster admin's, not the PE's). */
async function ensureNamespace(namespace: string): Promise<void> {
  const backend = new KubernetesBackend({ namespace });
  await backend.clients.core.createNamespace({ body: { metadata: { name: namespace } } }).catch((error: { code?: number }) => {
    if (error.code !== 409) throw error;
  });
}

main().catch((error: unknown) => {
  console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
  console.error(`Pulumi's output: ${path.relative(PROJECT_ROOT, WORK)}/*.log`);
  process.exit(1);
});
