// The OpenTofu peer: N `docker_container` + N `docker_volume` (+ N `docker_image`, keep_locally) of the
// kreuzwerker/docker provider, as plain Terraform JSON in a temp folder, with local state. An image
// change replaces each container through `lifecycle.replace_triggered_by = [docker_image.<member>]`
// (destroy, then create: one executable per volume); `tofu apply -parallelism=k`; the provider's
// readiness wait (`wait = true`: until the container's Docker healthcheck reports healthy). tofu and
// the provider come from scripts/build-terraform.sh (cached; no registry contacted: TF_CLI_CONFIG_FILE
// points at its local mirror), as scripts/tf.sh runs them.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PROJECT_ROOT } from "../../src/automation/stack";
import { DockerBackend } from "../../src/backend/docker/dockerBackend";
import { MEMBER_LABEL, Peer, PeerContext, PeerRollout, SYSTEM_LABEL, recordPeerEvents, removeLabelled, timedCommand } from "./peer";

const SYSTEM = "opentofu";
const BASE_PORT = Number(process.env.RESEAT_BENCH_SCALE_TOFU_PORT_BASE ?? 24000);
const CREATE_PARALLELISM = 10;

export function openTofuPeer(context: PeerContext, backend: DockerBackend): Peer {
  const cache = process.env.RESEAT_CACHE ?? path.join(os.homedir(), ".cache", "reseat");
  const env = {
    ...process.env,
    PATH: `${path.join(cache, "bin")}:${process.env.PATH ?? ""}`,
    TF_CLI_CONFIG_FILE: process.env.RESEAT_TOFURC ?? path.join(cache, "tofurc"),
    TF_IN_AUTOMATION: "1",
    TF_INPUT: "0",
    CHECKPOINT_DISABLE: "1",
  };
  let dir: string | undefined;
  const tofu = (...args: string[]) => timedCommand("tofu", [...args, "-no-color"], { cwd: dir, env });
  const apply = (parallelism: number) => tofu("apply", "-auto-approve", "-input=false", `-parallelism=${parallelism}`);
  const write = (image: string) => fs.writeFileSync(path.join(dir!, "main.tf.json"), JSON.stringify(openTofuConfiguration(context, image), null, 1));

  return {
    name: SYSTEM,
    async unavailable() {
      // Builds tofu and the provider mirror only when missing (quick when built).
      try {
        await timedCommand("bash", [path.join(PROJECT_ROOT, "scripts", "build-terraform.sh"), "all"]);
      } catch (error) {
        return `scripts/build-terraform.sh failed: ${(error as Error).message.split("\n").slice(0, 3).join(" ")}`;
      }
      return undefined;
    },
    async setUp() {
      await removeLabelled(backend, SYSTEM);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-scale-tofu-"));
      write(context.workload.images[0]);
      await tofu("init", "-input=false");
      const created = await apply(CREATE_PARALLELISM);
      context.log(`opentofu: apply (create ${context.n}) ${created.ms} ms`);
    },
    async roll(image, k): Promise<PeerRollout> {
      write(image);
      const events = await recordPeerEvents(backend, SYSTEM);
      const origin = Date.now();
      // The subscription ends also when the apply fails (an open one would keep the bench alive).
      const rollout = await apply(k).finally(() => events.stop(origin));
      const seen = await events.stop(origin);
      const noop = await apply(k);
      const replaced = /(\d+) added, (\d+) changed, (\d+) destroyed/.exec(rollout.output);
      const noopChanges = /(\d+) added, (\d+) changed, (\d+) destroyed/.exec(noop.output);
      if (noopChanges && noopChanges.slice(1).some((c) => c !== "0")) throw new Error(`opentofu: the no-op apply changed something: ${noopChanges[0]}`);
      return {
        ms: rollout.ms - noop.ms,
        detail: {
          applyMs: rollout.ms,
          noopApplyMs: noop.ms,
          parallelism: k,
          applySummary: replaced?.[0] ?? null,
          maxMembersDownAtOnce: seen.maxMembersDownAtOnce,
        },
      };
    },
    async tearDown() {
      if (dir && fs.existsSync(path.join(dir, "terraform.tfstate"))) {
        await tofu("destroy", "-auto-approve", "-input=false", `-parallelism=${CREATE_PARALLELISM}`).catch((error: Error) =>
          context.log(`opentofu destroy: ${error.message.slice(0, 300)}`),
        );
      }
      await removeLabelled(backend, SYSTEM).catch(() => undefined);
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
      dir = undefined;
    },
  };
}

/** The Terraform JSON: per member an image record, a named volume and a container on the host network. */
export function openTofuConfiguration(context: PeerContext, image: string) {
  const label = (member: string) => [
    { label: SYSTEM_LABEL, value: SYSTEM },
    { label: MEMBER_LABEL, value: member },
  ];
  const images: Record<string, unknown> = {};
  const volumes: Record<string, unknown> = {};
  const containers: Record<string, unknown> = {};
  const interval = goDuration(context.healthIntervalMs);
  for (let i = 0; i < context.n; i++) {
    const m = `m${i}`;
    images[m] = { name: image, keep_locally: true };
    volumes[m] = { name: `bench-scale-tf-${i}`, labels: label(m) };
    containers[m] = {
      name: `bench-scale-tf-${i}`,
      image: `\${docker_image.${m}.image_id}`,
      env: [`PORT=${BASE_PORT + i}`, "RESEAT_STATE_DIR=/state"],
      network_mode: "host",
      memory: context.workload.memoryMiB,
      // What the engine sets when only a memory limit is given (as reseat and Compose do); stated, so
      // that the provider's refresh finds no difference.
      memory_swap: 2 * context.workload.memoryMiB,
      restart: "no",
      must_run: true,
      stop_signal: "SIGTERM",
      stop_timeout: 5,
      destroy_grace_seconds: 5,
      remove_volumes: false,
      mounts: [{ type: "volume", source: `\${docker_volume.${m}.name}`, target: "/state" }],
      labels: label(m),
      healthcheck: { test: context.workload.healthcheck, interval, timeout: "1s", retries: 60 },
      wait: true,
      wait_timeout: 120,
      lifecycle: { replace_triggered_by: [`docker_image.${m}`] },
    };
  }
  return {
    terraform: { required_providers: { docker: { source: "kreuzwerker/docker", version: "~> 4.6" } } },
    provider: { docker: {} },
    resource: { docker_image: images, docker_volume: volumes, docker_container: containers },
  };
}

/** A duration as Go prints it (what the provider reads back): 1000 -> "1s", 500 -> "500ms", 1500 -> "1.5s". */
function goDuration(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${ms / 1000}s`;
}
