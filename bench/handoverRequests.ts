// handover_requests: what a client sees of one replacement. A client at a steady 200 requests/s (PUT / GET of
// sessions against the session workload, bench/loadClient.ts) through each replacement, per case: requests
// refused, reset, timed out or answered with an error, the longest wait for an answer, and the longest span
// without a successful answer. Every replacement is an image change driven the way the routine is driven in
// the tests (reseat() on the backend; the peers through the engine's own API), cases interleaved per round:
//   Docker (host network, one port across generations):
//     standby — handover "standby": the successor parked before the old one stops;
//     staged  — today's routine: created before the gap, started inside it;
//     naive   — stop + remove + create + start + ready through the Engine API.
//   Kubernetes (the local cluster; the client goes through a ClusterIP Service, kube-proxy in iptables mode,
//   so only Ready pods get requests, as a user's traffic does):
//     k8s standby     — reseat's standby pod on the claim's node;
//     k8s StatefulSet — a one-replica StatefulSet of the same workload, its pod replaced on a template change.
// A replacement's window: from the call to the client's 20th consecutive success after it returned. value:
// median failed requests per replacement; baseline: the naive floor's (Docker) or the StatefulSet's (Kubernetes).
// Goal: standby fewer failed requests than every other case.
import * as fs from "node:fs";
import * as path from "node:path";
import type * as k8s from "@kubernetes/client-node";
import { LABELS } from "../src/backend/backend";
import { DockerBackend } from "../src/backend/docker/dockerBackend";
import { KubernetesBackend } from "../src/backend/kubernetes/kubernetesBackend";
import type { Backend } from "../src/backend/backend";
import { type ReseatOptions, reseat } from "../src/replacement/reseat";
import { executableDesired, volumeOwner } from "../src/schema/desired";
import { parseProcessingElement, volumeNameOf } from "../src/schema/processingElement";
import { LoadClient, type WindowSummary, foldSummaries, nowMs, summarize } from "./loadClient";
import { type Cluster, benchNamespace, createService, k8sSessionPeSpec, localCluster, sessionStatefulSet } from "./k8sSession";
import { SESSION_IMAGES, benchProject, rawFloor, runCli, sessionPeSpec, standbyAvailable } from "./replacementGap";
import { type CaseResult, median, percentile, round, writeResult } from "./results";

const METRIC = "handover_requests";
const RUNS = Number(process.env.RESEAT_BENCH_RUNS) || 20;
const RATE = 200;
const STACK = "bench";
const NAMESPACE = "reseat-bench-handover";

type DockerCase = "standby" | "staged" | "naive";
const DOCKER_CASES: Record<DockerCase, { peId: string; port: number }> = {
  standby: { peId: "bench-hr-standby", port: 18801 },
  staged: { peId: "bench-hr-staged", port: 18802 },
  naive: { peId: "bench-hr-naive", port: 18803 },
};

export interface UnderLoad {
  summary: WindowSummary;
  /** How long the replacement call took (ms). */
  replaceMs: number;
  error?: Error;
}

/**
 * Runs `replace` with the client at RATE against `target`; the window ends at the 20th consecutive success after
 * it. A replacement that fails is rethrown at once, unless `failureExpected` (a bad release: the PE must serve again).
 */
export async function underLoad(what: string, target: () => string | undefined, replace: () => Promise<unknown>, failureExpected = false): Promise<UnderLoad> {
  const client = new LoadClient({ target, ratePerSecond: RATE });
  client.start();
  try {
    await consecutiveSuccesses(client, 0, `${what}: before the replacement`);
    const from = nowMs();
    let error: Error | undefined;
    await replace().catch((e: Error) => (error = e));
    if (error && !failureExpected) throw new Error(`${what}: the replacement failed: ${error.message}`);
    const replacedAt = nowMs();
    await consecutiveSuccesses(client, replacedAt, `${what}: after the replacement${error ? ` (it failed: ${error.message.split("\n")[0]})` : ""}`);
    const to = nowMs();
    const records = await client.stop();
    return { summary: summarize(records, from, to), replaceMs: round(replacedAt - from), error };
  } finally {
    await client.stop();
  }
}

/** Waits until the last 20 requests sent after `after` all succeeded (polling the client's own records). */
async function consecutiveSuccesses(client: LoadClient, after: number, when: string, count = 20, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const recent = client.records.filter((r) => r.sentAt >= after).sort((a, b) => a.sentAt - b.sentAt);
    if (recent.length >= count && recent.slice(-count).every((r) => r.outcome === "ok")) return;
    if (Date.now() > deadline) {
      const last = recent.at(-1);
      throw new Error(`${METRIC}: the service did not answer ${count} requests in a row ${when} within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The desired spec of a bench PE as the provider would hand it to the routine (the stack's owner). */
export async function desiredOf(backend: Backend, spec: { peId: string; image: string }): Promise<Parameters<typeof reseat>[1]> {
  const parsed = parseProcessingElement(spec);
  return { ...executableDesired(parsed, await backend.ensureImage(spec.image)), owner: volumeOwner("reseat", STACK, spec.peId) };
}

/** Why a standby PE was replaced staged (the routine says so, rule S2): kept per metric, each reason once with its count. */
export const fallbacks: Record<string, number> = {};

/** The routine's options for a bench replacement. */
export function reseatOptions(): ReseatOptions {
  return {
    holder: `bench:${process.pid}`,
    log: (message) => {
      const reason = message.replace(/-g\d+/g, "-g<N>").replace(/generation \d+/g, "generation <N>");
      fallbacks[reason] = (fallbacks[reason] ?? 0) + 1;
    },
  };
}

export async function benchHandoverRequests(): Promise<string> {
  const withStandby = standbyAvailable();
  const docker = await dockerCases(withStandby);
  const kubernetes = process.env.RESEAT_BENCH_K8S === "0" ? undefined : await k8sCases(withStandby);
  const cases: CaseResult[] = [];
  const row = (name: string, runs: UnderLoad[], baseline: UnderLoad[], baselineIs: string, extra: Record<string, unknown> = {}): CaseResult => {
    const failed = runs.map((r) => r.summary.failed);
    const base = median(baseline.map((r) => r.summary.failed));
    const value = median(failed);
    return {
      case: name,
      metric: METRIC,
      unit: "failed requests per replacement",
      value: round(value),
      baseline: round(base),
      // 0 / 0 is a tie, not NaN; x / 0 (the baseline lost none) is as bad as it gets.
      ratio: base === 0 ? (value === 0 ? 1 : Infinity) : round(value / base, 3),
      runs: runs.length,
      at: new Date().toISOString(),
      p99: percentile(failed, 99),
      baselineIs,
      ratePerSecond: RATE,
      ...foldSummaries(runs.map((r) => r.summary)),
      replaceMsMedian: round(median(runs.map((r) => r.replaceMs))),
      ...extra,
      samples: runs.map((r) => r.summary),
    };
  };
  const naive = docker.naive;
  if (docker.standby.length) cases.push(row("standby (Docker)", docker.standby, naive, "naive floor (Docker)"));
  cases.push(row("staged (Docker)", docker.staged, naive, "naive floor (Docker)"));
  cases.push(row("naive (Docker)", naive, naive, "itself"));
  if (kubernetes) {
    if (kubernetes.standby.length) cases.push(row("standby (Kubernetes)", kubernetes.standby, kubernetes.statefulSet, "StatefulSet (Kubernetes)"));
    cases.push(row("StatefulSet (Kubernetes)", kubernetes.statefulSet, kubernetes.statefulSet, "itself"));
  }
  for (const c of cases) {
    process.stderr.write(
      `${c.case}: failed/replacement median ${c.value} (p99 ${c.p99}), total ${c.failedTotal} of ${c.requestsTotal} (refused ${c.refusedTotal}, reset ${c.resetTotal}, timeout ${c.timeoutTotal}, error ${c.errorTotal}), longest wait median ${c.longestWaitMsMedian} ms, longest without success median ${c.longestWithoutSuccessMsMedian} ms; ${JSON.stringify(c.failuresTotal)}\n`,
    );
  }
  // The goal, per engine: the standby case loses fewer requests (in total over the runs) than every other case on its engine.
  for (const engine of ["Docker", "Kubernetes"]) {
    const standby = cases.find((c) => c.case === `standby (${engine})`);
    if (!standby) continue;
    const others = cases.filter((c) => c !== standby && c.case!.endsWith(`(${engine})`));
    const met = others.every((c) => (standby.failedTotal as number) < (c.failedTotal as number));
    standby.goal = `fewer failed requests than ${others.map((c) => c.case).join(", ")}: ${met ? "met" : "missed"}`;
    standby.ratios = Object.fromEntries(others.map((c) => [c.case, c.value === 0 ? (standby.value === 0 ? 1 : null) : round(standby.value / c.value, 3)]));
    process.stderr.write(`goal on ${engine}: ${standby.goal}\n`);
  }
  if (!withStandby) process.stderr.write(`${METRIC}: the spec has no \`handover\` in this checkout: no standby cases\n`);
  if (Object.keys(fallbacks).length) process.stderr.write(`replaced staged although standby was asked for: ${JSON.stringify(fallbacks)}\n`);
  return writeResult(METRIC, { metric: METRIC, cases, stagedFallbacks: fallbacks });
}

async function dockerCases(withStandby: boolean): Promise<Record<DockerCase, UnderLoad[]>> {
  const backend = new DockerBackend();
  const dir = benchProject("bench-handover-requests");
  const names = (Object.keys(DOCKER_CASES) as DockerCase[]).filter((c) => withStandby || c !== "standby");
  const spec = (c: DockerCase, image: string) => sessionPeSpec(DOCKER_CASES[c].peId, DOCKER_CASES[c].port, image, c === "standby" ? "standby" : undefined);
  fs.writeFileSync(
    path.join(dir, "stacks", `Pulumi.${STACK}.yaml`),
    JSON.stringify({ config: { "reseat:processingElements": names.map((c) => spec(c, SESSION_IMAGES[0])) } }),
  );
  const runs: Record<DockerCase, UnderLoad[]> = { standby: [], staged: [], naive: [] };
  try {
    await runCli(dir, "up");
    for (let run = 0; run < RUNS; run++) {
      const image = SESSION_IMAGES[(run + 1) % 2]!;
      for (const c of names) {
        const target = `http://127.0.0.1:${DOCKER_CASES[c].port}`;
        const replace =
          c === "naive" ? () => rawFloor(backend, spec(c, image)) : async () => reseat(backend, await desiredOf(backend, spec(c, image)), reseatOptions());
        const outcome = await underLoad(`${c} (Docker), run ${run + 1}`, () => target, replace);
        runs[c].push(outcome);
      }
      process.stderr.write(
        `run ${run + 1}/${RUNS} (Docker): ${names.map((c) => `${c} ${runs[c].at(-1)!.summary.failed} failed, longest wait ${runs[c].at(-1)!.summary.longestWaitMs} ms`).join("; ")}\n`,
      );
    }
  } finally {
    await runCli(dir, "destroy").catch(() => undefined);
    for (const { peId } of Object.values(DOCKER_CASES)) {
      for (const e of await backend.listExecutables(peId)) await backend.remove(e.id).catch(() => undefined);
      await backend.removeVolume(volumeNameOf({ peId, volume: { name: undefined } as never })).catch(() => undefined);
    }
  }
  return runs;
}

async function k8sCases(withStandby: boolean): Promise<{ standby: UnderLoad[]; statefulSet: UnderLoad[] } | undefined> {
  const cluster = await localCluster();
  if (!cluster) {
    process.stderr.write(`${METRIC}: no Kubernetes cluster (scripts/cluster.sh status): the Kubernetes cases are left out\n`);
    return undefined;
  }
  const storageClass = await benchNamespace(cluster, NAMESPACE, SESSION_IMAGES);
  const backend = new KubernetesBackend({ namespace: NAMESPACE });
  const PE = "bench-hr-k8s-standby";
  const STS = "bench-hr-sts";
  const dir = benchProject("bench-handover-requests-k8s");
  const runs = { standby: [] as UnderLoad[], statefulSet: [] as UnderLoad[] };
  try {
    if (withStandby) {
      fs.writeFileSync(
        path.join(dir, "stacks", `Pulumi.${STACK}.yaml`),
        JSON.stringify({ config: { "reseat:processingElements": [k8sSessionPeSpec(PE, SESSION_IMAGES[0], NAMESPACE, storageClass, "standby")] } }),
      );
      await runCli(dir, "up");
    }
    await cluster.apps.createNamespacedStatefulSet({ namespace: NAMESPACE, body: sessionStatefulSet(STS, SESSION_IMAGES[0], NAMESPACE, storageClass) });
    const peUrl = withStandby ? await createService(cluster, PE, NAMESPACE, { [LABELS.peId]: PE }) : "";
    const stsUrl = await createService(cluster, STS, NAMESPACE, { app: STS });
    let stsPod = await readyPodUid(cluster, `${STS}-0`);
    for (let run = 0; run < RUNS; run++) {
      const image = SESSION_IMAGES[(run + 1) % 2]!;
      if (withStandby) {
        const spec = k8sSessionPeSpec(PE, image, NAMESPACE, storageClass, "standby");
        const outcome = await underLoad(
          `standby (Kubernetes), run ${run + 1}`,
          () => peUrl,
          async () => reseat(backend, await desiredOf(backend, spec), reseatOptions()),
        );
        runs.standby.push(outcome);
      }
      const before = stsPod;
      const outcome = await underLoad(
        `StatefulSet (Kubernetes), run ${run + 1}`,
        () => stsUrl,
        async () => {
          await patchStatefulSetImage(cluster, STS, image);
          stsPod = await readyPodUid(cluster, `${STS}-0`, before);
        },
      );
      runs.statefulSet.push(outcome);
      process.stderr.write(
        `run ${run + 1}/${RUNS} (Kubernetes): standby ${runs.standby.at(-1)?.summary.failed ?? "-"} failed, StatefulSet ${outcome.summary.failed} failed (longest wait ${outcome.summary.longestWaitMs} ms)\n`,
      );
    }
  } finally {
    if (withStandby) await runCli(dir, "destroy").catch(() => undefined);
    await cluster.core.deleteNamespace({ name: NAMESPACE }).catch(() => undefined);
  }
  return runs;
}

export async function patchStatefulSetImage(cluster: Cluster, name: string, image: string): Promise<void> {
  const { PatchStrategy, setHeaderOptions } = await import("@kubernetes/client-node");
  await cluster.apps.patchNamespacedStatefulSet(
    { name, namespace: NAMESPACE, body: { spec: { template: { spec: { containers: [{ name: "workload", image }] } } } } },
    setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
  );
}

/** Polls until the pod `name` is Ready, and (given `notUid`) is not that pod any more; returns its uid. */
export async function readyPodUid(cluster: Cluster, name: string, notUid?: string, namespace = NAMESPACE, timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pod: k8s.V1Pod | undefined = await cluster.core.readNamespacedPod({ name, namespace }).catch(() => undefined);
    const ready = pod?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
    if (pod && ready && !pod.metadata?.deletionTimestamp && pod.metadata!.uid !== notUid) return pod.metadata!.uid!;
    if (Date.now() > deadline) throw new Error(`pod ${name} was not Ready (a new one) within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
