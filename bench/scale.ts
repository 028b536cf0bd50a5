// scale: reseat's rollout of N members side by side with what a user would otherwise pick for the
// same job, in the same run, on the same machine, with the same workload image, each member with its
// own named volume and a readiness wait where the peer has one (docs/scale.md). reseat runs the job
// twice: as a ProcessingElementFleet (one Pulumi resource; cases without suffix) and as a
// ProcessingElementGroup (a Pulumi resource per member; the same cases with suffix `_group`).
//
// - rollout_<N>_c<k>: value = wall time of `reseat up` rolling N members from one image to the
//   other with maxUnavailable k, minus a no-op `up` of the same stack right after it; baseline = the
//   floor, N x the single-PE raw floor / k (as bench/rolling.ts); fields opentofu, compose, statefulset
//   (ms, each the peer's time for the same job, or null with a `why`) and ratio_<peer> = reseat / peer.
// - checkpoint_bytes_per_member_<N>: the file backend's checkpoint file / N (what Pulumi stores and
//   rewrites after every step; `pulumi stack export` pretty-prints it, exportBytesPerMember), with a
//   breakdown per resource type; baseline = the goal (2048 bytes).
// - preview_<N>, noop_up_<N>: `reseat preview` / a no-op `reseat up` of the group vs N plain
//   containers, one minimal dynamic resource each (bench/plainStack.ts), as bench/rolling.ts.
// - per_member_cost_<N>_vs_<M>_c<k>: reseat's rollout time per member at N vs at the next smaller M.
//
// RESEAT_BENCH_SCALE_N (default 10,100), RESEAT_BENCH_SCALE_C (default 1,10), RESEAT_BENCH_SCALE_DESIGNS
// (default fleet,group),
// RESEAT_BENCH_SCALE_WORKLOAD (tiny|demo; default tiny if it builds), RESEAT_BENCH_SCALE_PEERS (default
// opentofu,compose,statefulset), RESEAT_BENCH_RUNS (previews and no-op ups, default 3),
// RESEAT_BENCH_FLOOR_RUNS (default 7), RESEAT_BENCH_SCALE_HEALTH_INTERVAL_MS (Docker healthchecks of the
// Docker peers, default 5000: 1 s overloads 2 cores at N = 100), RESEAT_BENCH_SCALE_PORT_BASE (reseat's members, default 28000),
// RESEAT_BENCH_SCALE_PLAIN (0: no plain baseline for preview_N / noop_up_N),
// RESEAT_BENCH_SCALE_BUDGET_MIN (optional: steps that would overrun it are recorded as not run, with why),
// RESEAT_BENCH_SCALE_SECTIONS (default docker,kubernetes): the Kubernetes section (fleet with
// template.kubernetes vs a StatefulSet with maxUnavailable = k vs the API floor) is bench/scaleK8s.ts,
// written to bench/results/k8s_scale.json (its own env there).
// bench/results/scale.json is rewritten after every step, so that a cut-short run keeps what it measured.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PROJECT_ROOT } from "../src/automation/stack";
import { DockerBackend } from "../src/backend/docker/dockerBackend";
import { MAX_REPLICAS } from "../src/schema/group";
import {
  FloorWorkload,
  GROUPS_PROGRAM,
  PLAIN_PROGRAM,
  PULUMI_PARALLEL,
  benchProject,
  destroyBenchStacks,
  handoffMs,
  handoffPhases,
  takeTrace,
  maxConcurrentlyDown,
  memberTemplate,
  memberTimelines,
  rawFloors,
  rawParallelFloor,
  recordGroupEvents,
  removeGroupLeftovers,
  runCli,
  writeStackConfig,
} from "./groupBench";
import { CaseResult, RESULTS_DIR, median, result, round, writeResult } from "./results";
import { ScaleSeries, renderScalePlot } from "./scalePlot";
import { ScaleWorkload, scaleWorkload } from "./scaleWorkload";
import { scaleTables } from "./scaleTable";
import { composePeer } from "./scalePeers/compose";
import { openTofuPeer } from "./scalePeers/openTofu";
import { Peer, PeerContext, PeerRollout } from "./scalePeers/peer";
import { statefulSetPeer } from "./scalePeers/statefulSet";
import { benchK8sScale } from "./scaleK8s";
import { checkpointFile, checkpointSize, storedBytes } from "./checkpoint";
import { numbers } from "./envNumbers";

const RUNS = Number(process.env.RESEAT_BENCH_RUNS ?? 3);
const FLOOR_RUNS = Number(process.env.RESEAT_BENCH_FLOOR_RUNS ?? 7);
const BASE_PORT = Number(process.env.RESEAT_BENCH_SCALE_PORT_BASE ?? 28000);
/** RESEAT_BENCH_SCALE_PLAIN=0 leaves out the plain baseline of preview_N and noop_up_N (minutes at N = 1000). */
const PLAIN = process.env.RESEAT_BENCH_SCALE_PLAIN !== "0";
const HEALTH_INTERVAL_MS = Number(process.env.RESEAT_BENCH_SCALE_HEALTH_INTERVAL_MS ?? 5000);
/** Optional time budget (minutes): steps that would not end within it are recorded as not run. */
const BUDGET_MIN = process.env.RESEAT_BENCH_SCALE_BUDGET_MIN ? Number(process.env.RESEAT_BENCH_SCALE_BUDGET_MIN) : undefined;
const DEADLINE = BUDGET_MIN === undefined ? Infinity : Date.now() + BUDGET_MIN * 60_000;
const OVER_BUDGET = `not run: it would not have ended within the bench's time budget (RESEAT_BENCH_SCALE_BUDGET_MIN=${BUDGET_MIN})`;
const GROUP = "bench-scale";
const FLOOR_PE = "bench-scale-floor";
const PLAIN_PREFIX = "bench-scale-plain";
/** The provider-call trace of each rollout (where the hand-off between members goes). */
const TRACE_FILE = path.join(PROJECT_ROOT, ".work", "bench-scale-trace.jsonl");
const CHECKPOINT_GOAL_BYTES = 2048;
const PEER_NAMES = ["opentofu", "compose", "statefulset"] as const;
type PeerName = (typeof PEER_NAMES)[number];
type PeerOutcome = PeerRollout | { ms: null; why: string };

const DESIGNS = ["fleet", "group"] as const;
type Design = (typeof DESIGNS)[number];
/** Case-name suffix: the fleet is reseat's design for scale (no suffix), the group is beside it. */
const SUFFIX: Record<Design, string> = { fleet: "", group: "_group" };
/** Stack config key and stack output key of each design. */
const CONFIG_KEY: Record<Design, string> = { fleet: "fleets", group: "groups" };

function groupConfig(design: Design, n: number, workload: ScaleWorkload, image: string, maxUnavailable: number) {
  return {
    [`reseat:${CONFIG_KEY[design]}`]: [
      { name: GROUP, replicas: n, template: memberTemplate(image, `{{ordinal + ${BASE_PORT}}}`, workload.memoryMiB), rollout: { maxUnavailable } },
    ],
  };
}

interface PlainSide {
  preview: number[];
  noop: number[];
  createMs: number;
}

interface ReseatRollout {
  k: number;
  value: number;
  floor: number;
  detail: Record<string, unknown>;
}

const SECTIONS = ["docker", "kubernetes"] as const;

export async function benchScale(): Promise<string> {
  const sections = (process.env.RESEAT_BENCH_SCALE_SECTIONS ?? SECTIONS.join(","))
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of sections)
    if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`RESEAT_BENCH_SCALE_SECTIONS: expected names from ${SECTIONS.join(", ")}, got "${s}"`);
  const written: string[] = [];
  if (sections.includes("docker")) written.push(await benchScaleDocker());
  if (sections.includes("kubernetes")) written.push(await benchK8sScale());
  return written.join(", ");
}

async function benchScaleDocker(): Promise<string> {
  const ns = numbers("RESEAT_BENCH_SCALE_N", "10,100", 1, MAX_REPLICAS);
  const ks = numbers("RESEAT_BENCH_SCALE_C", "1,10", 1, MAX_REPLICAS);
  const designs = (process.env.RESEAT_BENCH_SCALE_DESIGNS ?? DESIGNS.join(","))
    .split(",")
    .map((d) => d.trim())
    .filter(Boolean) as Design[];
  for (const d of designs)
    if (!(DESIGNS as readonly string[]).includes(d)) throw new Error(`RESEAT_BENCH_SCALE_DESIGNS: expected names from ${DESIGNS.join(", ")}, got "${d}"`);
  const peersWanted = (process.env.RESEAT_BENCH_SCALE_PEERS ?? PEER_NAMES.join(","))
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  for (const p of peersWanted)
    if (!(PEER_NAMES as readonly string[]).includes(p)) throw new Error(`RESEAT_BENCH_SCALE_PEERS: expected names from ${PEER_NAMES.join(", ")}, got "${p}"`);
  if (!Number.isInteger(HEALTH_INTERVAL_MS) || HEALTH_INTERVAL_MS < 100)
    throw new Error(`RESEAT_BENCH_SCALE_HEALTH_INTERVAL_MS: expected a whole number of ms >= 100, got ${process.env.RESEAT_BENCH_SCALE_HEALTH_INTERVAL_MS}`);
  const log = (text: string) => process.stderr.write(`[scale ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
  const workload = await scaleWorkload(log);
  log(
    `N ${ns.join(", ")}; k ${ks.join(", ")}; workload ${workload.kind} (${workload.images.join(", ")}, ${workload.memoryMiB} MiB limit); peers ${peersWanted.join(", ") || "none"}`,
  );
  const backend = new DockerBackend();

  const cases: CaseResult[] = [];
  const setup: Record<string, unknown> = {
    workload: { kind: workload.kind, images: workload.images, memoryMiB: workload.memoryMiB, ...(workload.note ? { note: workload.note } : {}) },
    groupSizes: ns,
    concurrencies: ks,
    designs,
    pulumiParallel: Number(PULUMI_PARALLEL),
    dockerHealthcheckIntervalMs: HEALTH_INTERVAL_MS,
    cpus: os.cpus().length,
  };
  const reseatByN: Record<Design, Map<number, ReseatRollout[]>> = { fleet: new Map(), group: new Map() };
  const peerByN = new Map<number, Partial<Record<PeerName, Map<number, PeerOutcome>>>>();
  const save = () => {
    const doc = { metric: "scale", setup, cases };
    writeResult("scale", doc);
    fs.writeFileSync(
      path.join(RESULTS_DIR, "scale.svg"),
      renderScalePlot(`Rolling image change of N members (${workload.kind} workload, ${os.cpus().length} CPUs)`, plotSeries(ns, ks, reseatByN, peerByN)),
    );
  };

  if (BUDGET_MIN !== undefined && !(BUDGET_MIN > 0))
    throw new Error(`RESEAT_BENCH_SCALE_BUDGET_MIN: expected a number of minutes > 0, got "${process.env.RESEAT_BENCH_SCALE_BUDGET_MIN}"`);
  for (const n of ns) {
    if (Date.now() > DEADLINE) {
      log(`N ${n}: ${OVER_BUDGET}`);
      setup.notRun = [...((setup.notRun as string[] | undefined) ?? []), `N = ${n}: ${OVER_BUDGET}`];
      continue;
    }
    // 1. reseat, as a fleet and as a group: preview / no-op up vs plain, the checkpoint, the floor, one rollout per k.
    const plain = PLAIN ? await plainSide(n, workload, log) : undefined;
    const rolloutCases = new Map<number, CaseResult[]>();
    for (const design of designs) {
      const reseat = await reseatSide(design, n, ks, workload, backend, cases, plain, log);
      reseatByN[design].set(n, reseat);
      for (const r of reseat) {
        const c: CaseResult = {
          case: `rollout_${n}_c${r.k}${SUFFIX[design]}`,
          ...result("scale", "ms", [r.value], [r.floor], {
            groupSize: n,
            concurrency: r.k,
            design,
            baselineIs: `floor: ${n} x the single-PE raw floor / ${r.k}`,
          }),
          ...Object.fromEntries(
            PEER_NAMES.flatMap((p) => [
              [p, null],
              [`ratio_${p}`, null],
            ]),
          ),
          peers: Object.fromEntries(
            PEER_NAMES.map((p) => [p, { why: peersWanted.includes(p) ? "not measured (yet)" : "left out by RESEAT_BENCH_SCALE_PEERS" }]),
          ),
          reseat: r.detail,
        };
        rolloutCases.set(r.k, [...(rolloutCases.get(r.k) ?? []), c]);
        cases.push(c);
      }
      save();
    }

    // 2. The peers, one after the other, each on its own: the same N, the same rollouts in the same order.
    const context: PeerContext = { n, workload, healthIntervalMs: HEALTH_INTERVAL_MS, log };
    const peers: Peer[] = [];
    if (peersWanted.includes("opentofu")) peers.push(openTofuPeer(context, backend));
    if (peersWanted.includes("compose")) peers.push(composePeer(context, backend));
    if (peersWanted.includes("statefulset")) peers.push(statefulSetPeer(context));
    const outcomes: Partial<Record<PeerName, Map<number, PeerOutcome>>> = {};
    peerByN.set(n, outcomes);
    for (const peer of peers) {
      const measured = await runPeer(peer, ks, workload, log);
      outcomes[peer.name] = measured;
      for (const [k, outcome] of measured) {
        for (const c of rolloutCases.get(k) ?? []) {
          c[peer.name] = outcome.ms;
          c[`ratio_${peer.name}`] = outcome.ms === null ? null : round(c.value / outcome.ms, 3);
          (c.peers as Record<string, unknown>)[peer.name] = outcome.ms === null ? { why: outcome.why } : outcome.detail;
        }
      }
      save();
    }
  }

  // 3. Per-member cost: reseat's rollout per member at each N vs the next smaller N (goal: 1000 vs 100 <= 1.2x).
  for (const design of designs) {
    for (let i = 1; i < ns.length; i++) {
      for (const k of ks) {
        const big = reseatByN[design].get(ns[i]!)?.find((r) => r.k === k);
        const small = reseatByN[design].get(ns[i - 1]!)?.find((r) => r.k === k);
        if (!big || !small) continue;
        cases.push({
          case: `per_member_cost_${ns[i]}_vs_${ns[i - 1]}_c${k}${SUFFIX[design]}`,
          ...result("scale", "ms", [big.value / ns[i]!], [small.value / ns[i - 1]!], {
            concurrency: k,
            design,
            baselineIs: `reseat's rollout per member at N = ${ns[i - 1]}`,
          }),
        });
      }
    }
  }
  save();
  process.stderr.write(`\n${scaleTables(cases)}\n`);
  return path.join(RESULTS_DIR, "scale.json");
}

/** One peer: set up at images[0], one rollout per k (alternating images, as reseat), torn down. Never throws. */
async function runPeer(peer: Peer, ks: number[], workload: ScaleWorkload, log: (text: string) => void): Promise<Map<number, PeerOutcome>> {
  const outcomes = new Map<number, PeerOutcome>();
  const why = await peer.unavailable().catch((error: Error) => `could not check: ${error.message.slice(0, 300)}`);
  if (why) {
    log(`${peer.name}: skipped: ${why}`);
    for (const k of ks) outcomes.set(k, { ms: null, why });
    return outcomes;
  }
  if (Date.now() > DEADLINE) {
    for (const k of ks) outcomes.set(k, { ms: null, why: OVER_BUDGET });
    return outcomes;
  }
  try {
    await peer.setUp();
    let lastMs = 0;
    for (const [i, k] of ks.entries()) {
      const image = workload.images[(i + 1) % 2]!;
      // The next rollout takes about as long as the last one did (or longer): skip it if that overruns.
      if (Date.now() + lastMs > DEADLINE) {
        log(`${peer.name}: k ${k}: ${OVER_BUDGET}`);
        outcomes.set(k, { ms: null, why: OVER_BUDGET });
        continue;
      }
      const rolloutStarted = Date.now();
      const rollout = await peer.roll(image, k);
      lastMs = Date.now() - rolloutStarted;
      log(`${peer.name}: rollout to ${image}, k ${k}: ${rollout.ms} ms ${JSON.stringify(rollout.detail)}`);
      outcomes.set(k, rollout);
    }
  } catch (error) {
    const message = (error as Error).message;
    log(`${peer.name}: failed: ${message.slice(0, 1500)}`);
    for (const k of ks) if (!outcomes.has(k)) outcomes.set(k, { ms: null, why: `failed: ${message.slice(0, 600)}` });
  } finally {
    await peer.tearDown();
  }
  return outcomes;
}

/** The baseline stack for one N: N plain containers through one minimal dynamic resource each. */
async function plainSide(n: number, workload: ScaleWorkload, log: (text: string) => void): Promise<PlainSide> {
  const plainDir = benchProject("bench-scale-plain");
  try {
    writeStackConfig(plainDir, { "reseatbench:count": n, "reseatbench:prefix": PLAIN_PREFIX, "reseatbench:image": workload.images[0] });
    const plainCreate = await runCli(plainDir, "up", PLAIN_PROGRAM);
    log(`N ${n}: plain up (create ${n}) ${plainCreate.ms} ms`);
    const preview: number[] = [];
    const noop: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      preview.push((await runCli(plainDir, "preview", PLAIN_PROGRAM)).ms);
      noop.push((await runCli(plainDir, "up", PLAIN_PROGRAM)).ms);
    }
    return { preview, noop, createMs: plainCreate.ms };
  } finally {
    await runCli(plainDir, "destroy", PLAIN_PROGRAM).then(
      () => fs.rmSync(plainDir, { recursive: true, force: true }),
      (error: Error) => log(`destroy ${plainDir}: ${error.message.slice(0, 300)}`),
    );
  }
}

/** reseat's side for one N and design (cases preview_N, noop_up_N, checkpoint_bytes_per_member_N go straight into `cases`). */
async function reseatSide(
  design: Design,
  n: number,
  ks: number[],
  workload: ScaleWorkload,
  backend: DockerBackend,
  cases: CaseResult[],
  plain: PlainSide | undefined,
  log: (text: string) => void,
): Promise<ReseatRollout[]> {
  const floorWorkload: FloorWorkload = { images: workload.images, template: (image, port) => memberTemplate(image, port, workload.memoryMiB) };
  const groupDir = benchProject(`bench-scale-${design}`);
  const leftovers = () => removeGroupLeftovers(backend, GROUP, { plainPrefix: PLAIN_PREFIX, floorPrefix: FLOOR_PE });
  await leftovers();
  const rollouts: ReseatRollout[] = [];
  const suffix = SUFFIX[design];
  try {
    // The members at images[0].
    writeStackConfig(groupDir, groupConfig(design, n, workload, workload.images[0], ks[0]!));
    const groupCreate = await runCli(groupDir, "up", GROUPS_PROGRAM);
    log(`reseat ${design} N ${n}: up (create ${n}) ${groupCreate.ms} ms`);
    const checkpoint = await checkpointSize(groupDir, n);
    cases.push({
      case: `checkpoint_bytes_per_member_${n}${suffix}`,
      metric: "scale",
      unit: "bytes",
      // What the file backend stores, and rewrites after every step: its checkpoint file (compact
      // JSON). `pulumi stack export` pretty-prints the same (exportBytesPerMember, beside it).
      value: round(storedBytes(checkpoint) / n),
      baseline: CHECKPOINT_GOAL_BYTES,
      ratio: round(storedBytes(checkpoint) / n / CHECKPOINT_GOAL_BYTES, 3),
      exportBytesPerMember: round(checkpoint.exportBytes / n),
      runs: 1,
      at: new Date().toISOString(),
      groupSize: n,
      design,
      baselineIs: "the goal: 2 KB of checkpoint per member, all its resources together",
      ...checkpoint,
    });
    log(
      `reseat ${design} N ${n}: checkpoint file ${storedBytes(checkpoint)} bytes (${Math.round(storedBytes(checkpoint) / n)} per member; export ${checkpoint.exportBytes})`,
    );
    const groupPreview: number[] = [];
    const groupNoop: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      groupPreview.push((await runCli(groupDir, "preview", GROUPS_PROGRAM)).ms);
      groupNoop.push((await runCli(groupDir, "up", GROUPS_PROGRAM)).ms);
    }
    log(
      `reseat ${design} N ${n}: preview ${median(groupPreview)} ms (plain ${plain ? median(plain.preview) : "not run"}), no-op up ${median(groupNoop)} ms (plain ${plain ? median(plain.noop) : "not run"})`,
    );
    if (plain) {
      cases.push({
        case: `preview_${n}${suffix}`,
        ...result("scale", "ms", groupPreview, plain.preview, { groupSize: n, design, samples: { reseat: groupPreview, plain: plain.preview } }),
      });
      cases.push({
        case: `noop_up_${n}${suffix}`,
        ...result("scale", "ms", groupNoop, plain.noop, {
          groupSize: n,
          design,
          samples: { reseat: groupNoop, plain: plain.noop },
          createUpMs: { reseat: groupCreate.ms, plain: plain.createMs },
        }),
      });
    }

    // The single-PE floor, with the group's N members running.
    const floors = await rawFloors(backend, FLOOR_PE, BASE_PORT + n, floorWorkload, FLOOR_RUNS, () => undefined);
    const floor = median(floors);
    log(`reseat ${design} N ${n}: floor median ${floor} ms over ${floors.length} runs`);

    for (const [i, k] of ks.entries()) {
      const image = workload.images[(i + 1) % 2]!;
      writeStackConfig(groupDir, groupConfig(design, n, workload, image, k));
      const events = await recordGroupEvents(backend, GROUP, FLOOR_PE);
      const writes = watchCheckpoint(groupDir);
      takeTrace(TRACE_FILE);
      const rollout = await runCli(groupDir, "up", GROUPS_PROGRAM, { RESEAT_TRACE_FILE: TRACE_FILE });
      const trace = takeTrace(TRACE_FILE);
      const checkpointEvents = writes.stop();
      const seen = await events.stop();
      const noop = await runCli(groupDir, "up", GROUPS_PROGRAM);
      const value = rollout.ms - noop.ms;
      const baseline = (n * floor) / k;
      const timeline = memberTimelines(GROUP, rollout, seen, CONFIG_KEY[design]);
      const killToReady = timeline.filter((m) => m.kill !== undefined && m.ready !== undefined).map((m) => m.ready! - m.kill!);
      const handoffs = handoffMs(GROUP, timeline, k);
      const parallelFloor = k > 1 ? await rawParallelFloor(backend, n, k, FLOOR_PE, BASE_PORT + n + 1, floorWorkload) : undefined;
      const spread = (values: number[]) =>
        values.length
          ? {
              median: median(values),
              p90: percentileOf(values, 90),
              max: Math.max(...values),
              sum: round(
                values.reduce((a, b) => a + b, 0),
                0,
              ),
            }
          : null;
      const detail = {
        rolloutUpMs: rollout.ms,
        noopUpMs: noop.ms,
        floorMs: floor,
        floorSamples: floors,
        perMemberMs: round(value / n),
        floorPerMemberMs: round(floor / k),
        overheadPerMemberMs: round((value - baseline) / n),
        memberKillToReadyMs: spread(killToReady),
        handoffMs: spread(handoffs),
        ...(design === "group" ? {} : { handoffIs: "within reseat's rollout routine: lease, observation, the next executable prepared" }),
        handoffPhasesMs:
          design !== "group"
            ? null
            : Object.fromEntries(Object.entries(handoffPhases(GROUP, timeline, trace, rollout.startedAt, k)).map(([phase, values]) => [phase, spread(values)])),
        maxMembersDownAtOnce: maxConcurrentlyDown(timeline),
        ...(parallelFloor !== undefined ? { rawParallelFloorMs: parallelFloor } : {}),
        checkpointFileEventsDuringRollout: checkpointEvents,
        loadAverage: os.loadavg().map((l) => round(l, 2)),
      };
      log(
        `reseat ${design} N ${n}, k ${k}: up ${rollout.ms} ms - no-op ${noop.ms} ms = ${value} ms (floor ${Math.round(baseline)} ms) ${JSON.stringify({ handoffMs: detail.handoffMs, killToReady: detail.memberKillToReadyMs, maxDown: detail.maxMembersDownAtOnce, rawParallelFloorMs: parallelFloor })}`,
      );
      rollouts.push({ k, value, floor: baseline, detail });
    }
    const after = await checkpointSize(groupDir, n);
    const checkpointCase = cases.find((c) => c.case === `checkpoint_bytes_per_member_${n}${suffix}`)!;
    checkpointCase.exportBytesAfterRollouts = after.exportBytes;
  } finally {
    await destroyBenchStacks(groupDir, undefined, log);
    await leftovers();
  }
  return rollouts;
}

function percentileOf(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Counts file-system events on the checkpoint file while a rollout runs (how often Pulumi rewrites it). */
function watchCheckpoint(dir: string): { stop: () => number | null } {
  const file = checkpointFile(dir);
  if (!file) return { stop: () => null };
  let count = 0;
  const watcher = fs.watch(path.dirname(file), (_event, name) => {
    if (name === path.basename(file)) count++;
  });
  return {
    stop: () => {
      watcher.close();
      return count;
    },
  };
}

function plotSeries(
  ns: number[],
  ks: number[],
  reseatByN: Record<Design, Map<number, ReseatRollout[]>>,
  peerByN: Map<number, Partial<Record<PeerName, Map<number, PeerOutcome>>>>,
): ScaleSeries[] {
  const series: ScaleSeries[] = [];
  for (const k of ks) {
    const points = (pick: (n: number) => number | null | undefined): [number, number][] =>
      ns.flatMap((n) => {
        const v = pick(n);
        return v === null || v === undefined || v <= 0 ? [] : [[n, v] as [number, number]];
      });
    series.push({ system: "reseat fleet", k, points: points((n) => reseatByN.fleet.get(n)?.find((r) => r.k === k)?.value) });
    series.push({ system: "reseat group", k, points: points((n) => reseatByN.group.get(n)?.find((r) => r.k === k)?.value) });
    series.push({ system: "floor", k, points: points((n) => (reseatByN.fleet.get(n) ?? reseatByN.group.get(n))?.find((r) => r.k === k)?.floor) });
    for (const p of PEER_NAMES) series.push({ system: p, k, points: points((n) => peerByN.get(n)?.[p]?.get(k)?.ms) });
  }
  return series.filter((s) => s.points.length);
}
