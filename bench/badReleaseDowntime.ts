// bad_release_downtime: a release whose executable exits at start (reseat-crash-at-start:1, exit code 3), rolled
// onto a serving PE of the session workload on Docker, with a client at 200 requests/s (bench/loadClient.ts):
// the PE's downtime as the client sees it — the longest span with no successful answer (0 when no request
// failed) — per case, interleaved per round:
//   standby: handover "standby": the successor must park before anything stops; it exits instead, is removed,
//            and the `up` fails with the old executable never touched (goal: 0 ms);
//   staged:  today's routine: the old one stops, the bad one starts and dies, the previous spec is reverted to.
// Driven through the routine (reseat() on the backend, as the provider calls it); each call must fail.
import * as fs from "node:fs";
import * as path from "node:path";
import { DockerBackend } from "../src/backend/docker/dockerBackend";
import { reseat } from "../src/replacement/reseat";
import { volumeNameOf } from "../src/schema/processingElement";
import { type UnderLoad, desiredOf, fallbacks, reseatOptions, underLoad } from "./handoverRequests";
import { foldSummaries } from "./loadClient";
import { SESSION_IMAGES, benchProject, runCli, sessionPeSpec, standbyAvailable } from "./replacementGap";
import { type CaseResult, median, percentile, round, writeResult } from "./results";

const METRIC = "bad_release_downtime";
const RUNS = Number(process.env.RESEAT_BENCH_RUNS) || 20;
const BAD_IMAGE = "reseat-crash-at-start:1";
const CASES = {
  standby: { peId: "bench-bad-standby", port: 18806 },
  staged: { peId: "bench-bad-staged", port: 18807 },
} as const;
type Case = keyof typeof CASES;

export async function benchBadReleaseDowntime(): Promise<string> {
  const backend = new DockerBackend();
  const withStandby = standbyAvailable();
  const names = (Object.keys(CASES) as Case[]).filter((c) => withStandby || c !== "standby");
  // The workload's user fixed by the spec: the bad image has no USER of its own (root), and a change of the
  // workload's user is replaced staged by rule (the volume changes hands with nothing running on it).
  const spec = (c: Case, image: string) => ({
    ...sessionPeSpec(CASES[c].peId, CASES[c].port, image, c === "standby" ? "standby" : undefined),
    runAsUser: 1000,
    runAsGroup: 1000,
  });
  const dir = benchProject("bench-bad-release-downtime");
  fs.writeFileSync(
    path.join(dir, "stacks", "Pulumi.bench.yaml"),
    JSON.stringify({ config: { "reseat:processingElements": names.map((c) => spec(c, SESSION_IMAGES[0])) } }),
  );
  const runs: Record<Case, UnderLoad[]> = { standby: [], staged: [] };
  const errors: Record<Case, string[]> = { standby: [], staged: [] };
  try {
    await runCli(dir, "up");
    for (let run = 0; run < RUNS; run++) {
      for (const c of names) {
        const target = `http://127.0.0.1:${CASES[c].port}`;
        const outcome = await underLoad(
          `${c}, run ${run + 1}`,
          () => target,
          async () => reseat(backend, await desiredOf(backend, spec(c, BAD_IMAGE)), reseatOptions()),
          true,
        );
        if (!outcome.error) throw new Error(`${METRIC}: the ${c} replacement to ${BAD_IMAGE} did not fail`);
        errors[c].push(outcome.error.message.split("\n")[0]!);
        runs[c].push(outcome);
      }
      process.stderr.write(
        `run ${run + 1}/${RUNS}: ${names.map((c) => `${c} down ${runs[c].at(-1)!.summary.longestWithoutSuccessMs} ms (${runs[c].at(-1)!.summary.failed} failed)`).join("; ")}\n`,
      );
    }
  } finally {
    await runCli(dir, "destroy").catch(() => undefined);
    for (const { peId } of Object.values(CASES)) {
      for (const e of await backend.listExecutables(peId)) await backend.remove(e.id).catch(() => undefined);
      await backend.removeVolume(volumeNameOf({ peId, volume: { name: undefined } as never })).catch(() => undefined);
    }
  }
  const downtime = (c: Case) => runs[c].map((r) => r.summary.longestWithoutSuccessMs);
  const row = (c: Case, baselineIs: string, extra: Record<string, unknown> = {}): CaseResult => {
    const value = median(downtime(c));
    const base = median(downtime("staged"));
    return {
      case: c,
      metric: METRIC,
      unit: "ms",
      value: round(value),
      baseline: round(base),
      ratio: base === 0 ? (value === 0 ? 1 : Infinity) : round(value / base, 3),
      runs: runs[c].length,
      at: new Date().toISOString(),
      p99: round(percentile(downtime(c), 99)),
      max: round(Math.max(...downtime(c))),
      baselineIs,
      ...foldSummaries(runs[c].map((r) => r.summary)),
      replaceMsMedian: round(median(runs[c].map((r) => r.replaceMs))),
      firstError: errors[c][0],
      ...extra,
      samples: downtime(c),
    };
  };
  const cases: CaseResult[] = [];
  if (withStandby) cases.push(row("standby", "staged (revert)", { goal: "0 ms" }));
  cases.push(row("staged", "itself"));
  for (const c of cases)
    process.stderr.write(`${c.case}: downtime median ${c.value} ms, p99 ${c.p99} ms, max ${c.max} ms; failed requests total ${c.failedTotal}\n`);
  if (!withStandby) process.stderr.write(`${METRIC}: the spec has no \`handover\` in this checkout: no standby case\n`);
  if (Object.keys(fallbacks).length) process.stderr.write(`replaced staged although standby was asked for: ${JSON.stringify(fallbacks)}\n`);
  return writeResult(METRIC, { metric: METRIC, cases, stagedFallbacks: fallbacks });
}
