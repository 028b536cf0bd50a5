// recovery_time: a PE's process killed with SIGKILL (from the host, as a crash would) -> the service
// answering again from its resumed state. reseat: `reseat watch` (in this process) reseats it on a
// new executable bound to the kept volume. Baseline, same run, same image and volume kind: the same
// service in a plain container under Docker's own restart policy (restart in place).
import { LABELS } from "../src/backend/backend";
import { DockerBackend } from "../src/backend/docker/dockerBackend";
import { pause } from "../src/util/retry";
import { watch } from "../src/controller/watch";
import { holderName } from "../src/lease/lease";
import { reseat, retire } from "../src/replacement/reseat";
import { executableDesired } from "../src/schema/desired";
import { parseProcessingElement, volumeNameOf } from "../src/schema/processingElement";
import { percentile, result, writeResult } from "./results";

const KILLS = Number(process.env.RESEAT_BENCH_KILLS ?? 50);
const RESEAT_PORT = 18791;
const PLAIN_PORT = 18792;
const PE = "bench-recovery";
const IMAGE = "reseat-session-workload:v1";

export async function benchRecoveryTime(): Promise<string> {
  const backend = new DockerBackend();
  const spec = parseProcessingElement({
    peId: PE,
    image: IMAGE,
    network: "host",
    env: { PORT: String(RESEAT_PORT) },
    commitInterval: "1s",
    readiness: { httpGet: { port: RESEAT_PORT, path: "/healthz" } },
    // Each kill here is a fresh failure, not a crash loop: a short reset window, as for Docker's
    // restart policy (which resets its own backoff after 10 s of running; we wait that out below).
    failureBackoff: { initial: "100ms", max: "1s", resetAfter: "300ms" },
    persistentStore: { kind: "directory", volume: "reseat-bench-store" },
  });
  const desired = executableDesired(spec, await backend.ensureImage(IMAGE));
  await cleanupBench(backend);
  await backend.claimVolume({ name: volumeNameOf(spec), driver: "local", peId: PE, owner: `bench/${PE}` });
  await reseat(backend, desired, { holder: holderName("bench") });
  const plainId = await startPlain(backend);
  const controller = await watch({ backend });

  const reseatTimes: number[] = [];
  const plainTimes: number[] = [];
  try {
    for (let kill = 0; kill < KILLS; kill++) {
      reseatTimes.push(await timeRecovery(RESEAT_PORT, await runningPid(backend, (await liveExecutable(backend)).id)));
      plainTimes.push(await timeRecovery(PLAIN_PORT, await runningPid(backend, plainId)));
      process.stderr.write(`kill ${kill + 1}/${KILLS}: reseat ${reseatTimes.at(-1)} ms, restart policy ${plainTimes.at(-1)} ms\n`);
      await pause(350); // past reseat's reset window; Docker's restart backoff is reset by restartPlain()
      await restartPlainFresh(backend, plainId);
    }
  } finally {
    await controller.stop();
    await retire(backend, desired, holderName("bench")).catch(() => undefined);
    await cleanupBench(backend);
  }
  const doc = result("recovery_time", "ms", reseatTimes, plainTimes, {
    p99: percentile(reseatTimes, 99),
    baselineP99: percentile(plainTimes, 99),
    p99Ratio: Math.round((percentile(reseatTimes, 99) / percentile(plainTimes, 99)) * 1000) / 1000,
    note: "value/baseline are p50 (median); kill = SIGKILL of the container's main process from the host",
    samples: { reseat: reseatTimes, restartPolicy: plainTimes },
  });
  return writeResult("recovery_time", doc);
}

/** SIGKILL the process, then poll until the service answers from a process that started later. */
async function timeRecovery(port: number, pid: number): Promise<number> {
  await waitAnswering(port);
  const before = await health(port);
  const started = performance.now();
  process.kill(pid, "SIGKILL");
  for (;;) {
    const now = await health(port);
    if (now && before && now.startedAt !== before.startedAt) return Math.round(performance.now() - started);
    if (performance.now() - started > 120_000) throw new Error(`no recovery on port ${port} within 120 s`);
    await pause(5);
  }
}

/** The answering process's start marker, or undefined while the service does not answer. */
async function health(port: number): Promise<{ startedAt: string } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
    return res.ok ? ((await res.json()) as { startedAt: string }) : undefined;
  } catch {
    return undefined;
  }
}

async function waitAnswering(port: number): Promise<void> {
  for (let i = 0; i < 2400; i++) {
    if (await health(port)) return;
    await pause(25);
  }
  throw new Error(`port ${port} never answered`);
}

async function liveExecutable(backend: DockerBackend) {
  for (let i = 0; i < 2400; i++) {
    const live = (await backend.listExecutables(PE)).find((e) => e.running);
    if (live) return live;
    await pause(25);
  }
  throw new Error("no live executable");
}

async function runningPid(backend: DockerBackend, id: string): Promise<number> {
  const c = await backend.docker.getContainer(id).inspect();
  if (!c.State.Running || !c.State.Pid) throw new Error(`container ${id} is not running`);
  return c.State.Pid;
}

async function startPlain(backend: DockerBackend): Promise<string> {
  const created = await backend.docker.createContainer({
    name: "reseat-bench-restart-policy",
    Image: IMAGE,
    Env: [
      `PORT=${PLAIN_PORT}`,
      "RESEAT_PE_ID=bench-plain",
      "RESEAT_STATE_DIR=/state",
      "RESEAT_COMMIT_INTERVAL_MS=1000",
      `RESEAT_STORE={"kind":"directory","path":"/reseat-store"}`,
    ],
    Labels: { [LABELS.managed]: "bench" },
    HostConfig: {
      NetworkMode: "host",
      Mounts: [
        { Type: "volume", Source: "reseat-bench-plain-state", Target: "/state" },
        { Type: "volume", Source: "reseat-bench-store", Target: "/reseat-store" },
      ],
      RestartPolicy: { Name: "always" },
    },
  });
  await backend.start(created.id);
  return created.id;
}

/**
 * Docker doubles its restart delay for each restart of a container that ran less than 10 s. Each
 * kill here stands for an independent failure, so the baseline is given the same fresh start reseat
 * gets: stop and start the container again (outside the measurement), which resets the policy.
 */
async function restartPlainFresh(backend: DockerBackend, id: string): Promise<void> {
  await backend.stop(id, { graceSeconds: 5 }).catch(() => undefined);
  await backend.start(id);
  await waitAnswering(PLAIN_PORT);
}

async function cleanupBench(backend: DockerBackend): Promise<void> {
  await backend.remove("reseat-bench-restart-policy");
  for (const e of await backend.listExecutables(PE)) await backend.remove(e.id);
  for (const v of [volumeNameOf({ peId: PE, volume: {} as never }), "reseat-bench-plain-state", "reseat-bench-store"]) await backend.removeVolume(v);
}
