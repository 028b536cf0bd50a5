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
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DockerBackend } from "../src/backend/docker/dockerBackend";
import {
  FloorWorkload,
  GROUPS_PROGRAM,
  PLAIN_PROGRAM,
  PULUMI_PARALLEL,
  benchProject,
  destroyBenchStacks,
  handoffMs,
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
import { renderTimeline } from "./timeline";

const N = Number(process.env.RESEAT_BENCH_GROUP_SIZE ?? 100);
const RUNS = Number(process.env.RESEAT_BENCH_RUNS ?? 3);
const FLOOR_RUNS = Number(process.env.RESEAT_BENCH_FLOOR_RUNS ?? 7);
const BASE_PORT = Number(process.env.RESEAT_BENCH_PORT_BASE ?? 21000);
const GROUP = "bench-roll";
const FLOOR_PE = "bench-roll-floor";
const PLAIN_PREFIX = "bench-plain";
const IMAGES = ["reseat-demo-workload:v1", "reseat-demo-workload:v2"] as const;
const MEMORY_MIB = 48;
const WORKLOAD: FloorWorkload = { images: IMAGES, template: (image, port) => memberTemplate(image, port, MEMORY_MIB) };

function groupConfig(image: string, maxUnavailable: number) {
  return {
    "reseat:groups": [{ name: GROUP, replicas: N, template: memberTemplate(image, `{{ordinal + ${BASE_PORT}}}`, MEMORY_MIB), rollout: { maxUnavailable } }],
  };
}

export async function benchRolling(): Promise<string> {
  if (!Number.isInteger(N) || N < 1) throw new Error(`RESEAT_BENCH_GROUP_SIZE: expected a whole number >= 1, got ${process.env.RESEAT_BENCH_GROUP_SIZE}`);
  const backend = new DockerBackend();
  const log = (text: string) => process.stderr.write(`[rolling] ${text}\n`);
  const groupDir = benchProject("bench-rolling");
  const plainDir = benchProject("bench-rolling-plain");
  await removeGroupLeftovers(backend, GROUP, { plainPrefix: PLAIN_PREFIX, floorPrefix: FLOOR_PE });

  const cases: CaseResult[] = [];
  const panels: Parameters<typeof renderTimeline>[1] = [];
  try {
    // 1. The baseline stack: N plain containers through one minimal dynamic resource each.
    writeStackConfig(plainDir, { "reseatbench:count": N, "reseatbench:prefix": PLAIN_PREFIX, "reseatbench:image": IMAGES[0] });
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
    writeStackConfig(groupDir, groupConfig(IMAGES[0], 1));
    const groupCreate = await runCli(groupDir, "up", GROUPS_PROGRAM);
    log(`group: up (create ${N}) ${groupCreate.ms} ms`);
    const groupPreview: number[] = [];
    const groupNoop: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      groupPreview.push((await runCli(groupDir, "preview", GROUPS_PROGRAM)).ms);
      groupNoop.push((await runCli(groupDir, "up", GROUPS_PROGRAM)).ms);
      log(`group: preview ${groupPreview.at(-1)} ms, no-op up ${groupNoop.at(-1)} ms`);
    }
    cases.push({
      case: `preview_${N}`,
      ...result("rolling", "ms", groupPreview, plainPreview, { groupSize: N, samples: { group: groupPreview, plain: plainPreview } }),
    });
    cases.push({
      case: `noop_up_${N}`,
      ...result("rolling", "ms", groupNoop, plainNoop, {
        groupSize: N,
        samples: { group: groupNoop, plain: plainNoop },
        createUpMs: { group: groupCreate.ms, plain: plainCreate.ms },
      }),
    });

    // 3. The single-PE floor, with the group's N members running (same machine state as the rollouts).
    const floors = await rawFloors(backend, FLOOR_PE, BASE_PORT + N, WORKLOAD, FLOOR_RUNS, log);
    const floor = median(floors);
    log(`floor: median ${floor} ms over ${floors.length} runs`);

    // 4. The rollouts: v1 -> v2 with maxUnavailable 1, then v2 -> v1 with maxUnavailable 10.
    for (const [mu, image] of [
      [1, IMAGES[1]],
      [10, IMAGES[0]],
    ] as const) {
      writeStackConfig(groupDir, groupConfig(image, mu));
      const events = await recordGroupEvents(backend, GROUP, FLOOR_PE);
      const rollout = await runCli(groupDir, "up", GROUPS_PROGRAM);
      const seen = await events.stop();
      const noop = await runCli(groupDir, "up", GROUPS_PROGRAM);
      const value = rollout.ms - noop.ms;
      const baseline = (N * floor) / mu;
      const timeline = memberTimelines(GROUP, rollout, seen);
      const perMember = timeline.filter((m) => m.kill !== undefined && m.ready !== undefined).map((m) => m.ready! - m.kill!);
      const maxDown = maxConcurrentlyDown(timeline);
      const handoffs = handoffMs(GROUP, timeline, mu);
      const parallelFloor = mu > 1 ? await rawParallelFloor(backend, N, mu, FLOOR_PE, BASE_PORT + N + 1, WORKLOAD) : undefined;
      if (parallelFloor !== undefined) log(`raw floor of ${N} replacements, ${mu} at a time (no Pulumi): ${parallelFloor} ms`);
      log(
        `rollout maxUnavailable ${mu}: up ${rollout.ms} ms, no-op up ${noop.ms} ms -> ${value} ms (baseline ${Math.round(baseline)} ms); members down at once: max ${maxDown}`,
      );
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
          pulumiParallel: Number(PULUMI_PARALLEL),
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
    await destroyBenchStacks(groupDir, plainDir, log);
    await removeGroupLeftovers(backend, GROUP, { plainPrefix: PLAIN_PREFIX, floorPrefix: FLOOR_PE });
  }

  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  fs.writeFileSync(path.join(RESULTS_DIR, "rolling.svg"), renderTimeline(`reseat rolling replacement of ${N} processing elements (Engine events)`, panels));
  return writeResult("rolling", { metric: "rolling", cases });
}
