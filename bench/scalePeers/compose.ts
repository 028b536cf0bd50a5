// The Docker Compose peer: Debian's docker-compose 1.29.2 (installed by the bench with apt-get when
// missing): N services on the host network, each with its own named volume and a Docker healthcheck;
// the image change is the other image in the file and `docker-compose up -d`.
//
// Compose v1's only concurrency knob, COMPOSE_PARALLEL_LIMIT, is one semaphore taken both per service
// and, inside that, per container: with fewer slots than twice the services it converges at once, a
// recreate deadlocks (seen here: limit 2, 4 services, `up -d` hung with every container still on the
// old image). So the rollout is what a user of v1 scripts for "k at a time": `up -d --no-deps` of k
// services, batch after batch (the limit left at its default, 64, or 2k + 1 when larger). v1 has no
// readiness wait (`up -d` returns once the containers are started; v2's `--wait` is not in v1): the
// time until every member reports healthy is recorded beside it. The time is the batches' wall time
// minus one no-op `up -d` of the whole project.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DockerBackend } from "../../src/backend/docker/dockerBackend";
import { median } from "../results";
import { MEMBER_LABEL, Peer, PeerContext, PeerRollout, SYSTEM_LABEL, recordPeerEvents, removeLabelled, timedCommand, waitAllHealthy } from "./peer";

const SYSTEM = "compose";
const PROJECT = "benchscalecompose";
const BASE_PORT = Number(process.env.RESEAT_BENCH_SCALE_COMPOSE_PORT_BASE ?? 26000);
const HEALTHY_TIMEOUT_MS = 600_000;
/** Services per `up -d` when creating (and the no-op): well below the semaphore deadlock. */
const CREATE_BATCH = 20;

export function composePeer(context: PeerContext, backend: DockerBackend): Peer {
  let dir: string | undefined;
  const file = () => path.join(dir!, "docker-compose.yml");
  const compose = (limit: number, ...args: string[]) =>
    timedCommand("docker-compose", ["-p", PROJECT, "-f", file(), "--ansi", "never", ...args], {
      cwd: dir,
      env: { ...process.env, COMPOSE_PARALLEL_LIMIT: String(Math.max(64, 2 * limit + 1)), COMPOSE_HTTP_TIMEOUT: "600" },
    });
  /** `up -d --no-deps` of `size` services at a time, in ordinal order; the wall time of each batch. */
  const upInBatches = async (size: number): Promise<number[]> => {
    const batches: number[] = [];
    for (let i = 0; i < context.n; i += size) {
      const services = Array.from({ length: Math.min(size, context.n - i) }, (_, j) => `m${i + j}`);
      batches.push((await compose(size, "up", "-d", "--no-deps", ...services)).ms);
    }
    return batches;
  };
  // JSON is YAML: the file is written as JSON.
  const write = (image: string) => fs.writeFileSync(file(), JSON.stringify(composeFile(context, image), null, 1));
  const imageId = async (image: string) => (await backend.docker.getImage(image).inspect()).Id;

  return {
    name: SYSTEM,
    async unavailable() {
      try {
        await ensureDockerCompose(context.log);
        return undefined;
      } catch (error) {
        return `docker-compose is not available: ${(error as Error).message.split("\n").slice(0, 3).join(" ")}`;
      }
    },
    async setUp() {
      await removeLabelled(backend, SYSTEM);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-scale-compose-"));
      write(context.workload.images[0]);
      const created = await upInBatches(CREATE_BATCH);
      await waitAllHealthy(backend, SYSTEM, context.n, await imageId(context.workload.images[0]), HEALTHY_TIMEOUT_MS);
      context.log(`compose: up -d (create ${context.n}) ${created.reduce((a, b) => a + b, 0)} ms, then all healthy`);
    },
    async roll(image, k): Promise<PeerRollout> {
      write(image);
      const target = await imageId(image);
      const events = await recordPeerEvents(backend, SYSTEM);
      const origin = Date.now();
      const started = performance.now();
      const batches = await upInBatches(k).finally(() => events.stop(origin));
      const upMs = Math.round(performance.now() - started);
      const healthyAt = await waitAllHealthy(backend, SYSTEM, context.n, target, HEALTHY_TIMEOUT_MS);
      const seen = await events.stop(origin);
      const noop = await compose(CREATE_BATCH, "up", "-d");
      if (/Recreating|Creating/.test(noop.output)) throw new Error(`compose: the no-op up -d changed something:\n${noop.output.slice(-1000)}`);
      return {
        ms: upMs - noop.ms,
        detail: {
          batchesMs: upMs,
          batches: batches.length,
          batchMs: { median: median(batches), max: Math.max(...batches) },
          noopUpMs: noop.ms,
          untilAllHealthyMs: Math.round(healthyAt - started),
          maxMembersDownAtOnce: seen.maxMembersDownAtOnce,
        },
      };
    },
    async tearDown() {
      if (dir && fs.existsSync(file())) {
        await compose(CREATE_BATCH, "down", "-v", "--timeout", "5").catch((error: Error) => context.log(`compose down: ${error.message.slice(0, 300)}`));
      }
      await removeLabelled(backend, SYSTEM).catch(() => undefined);
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
      dir = undefined;
    },
  };
}

/** Debian's docker-compose, installed with apt-get when the command is missing (idempotent). */
async function ensureDockerCompose(log: (text: string) => void): Promise<void> {
  try {
    await timedCommand("docker-compose", ["version"]);
    return;
  } catch {
    log("installing Debian's docker-compose (apt-get install -y docker-compose)");
  }
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  await timedCommand("apt-get", ["install", "-y", "-qq", "docker-compose"], { env }).catch(async () => {
    await timedCommand("apt-get", ["update", "-qq"], { env });
    await timedCommand("apt-get", ["install", "-y", "-qq", "docker-compose"], { env });
  });
  await timedCommand("docker-compose", ["version"]);
}

export function composeFile(context: PeerContext, image: string) {
  const services: Record<string, unknown> = {};
  const volumes: Record<string, unknown> = {};
  for (let i = 0; i < context.n; i++) {
    const m = `m${i}`;
    const labels = { [SYSTEM_LABEL]: SYSTEM, [MEMBER_LABEL]: m };
    services[m] = {
      image,
      network_mode: "host",
      environment: { PORT: String(BASE_PORT + i), RESEAT_STATE_DIR: "/state" },
      volumes: [`${m}:/state`],
      mem_limit: `${context.workload.memoryMiB}m`,
      stop_signal: "SIGTERM",
      stop_grace_period: "5s",
      restart: "no",
      labels,
      healthcheck: { test: context.workload.healthcheck, interval: `${context.healthIntervalMs}ms`, timeout: "1s", retries: 60 },
    };
    volumes[m] = { labels };
  }
  return { version: "2.4", services, volumes };
}
