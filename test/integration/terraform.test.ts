// The Terraform flavour for real: the cdktf stack synthesized in this process, applied by OpenTofu
// (scripts/tf.sh: tofu + kreuzwerker/docker from the local mirror) against the real Docker Engine.
// Two PEs: the demo workload (replaced v1 -> v2, torn down and adopted again) and the session
// workload (its commits reach the Terraform outputs through the status file).
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABELS } from "../../src/backend/backend";
import { synthesize } from "../../stacks/terraform/main";
import {
  CLI,
  ProcessResult,
  ROOT,
  cleanup,
  containersOf,
  demoSpec,
  docker,
  httpJson,
  orUndefined,
  sessionSpec,
  runProcess,
  volumeExists,
  waitFor,
} from "../support/harness";

const PE = `it-tf-${process.pid}`;
const PORT = 19470;
const SESSION_PE = `it-tfs-${process.pid}`;
const SESSION_PORT = 19471;
const STACK = "it";
const dir = path.join(ROOT, ".work", `terraform-${process.pid}-${Date.now().toString(36)}`);
const out = path.join(dir, "cdktf.out");
const statePath = path.join(dir, `terraform.${STACK}.tfstate`);
const stackDir = path.join(out, "stacks", STACK);
const TF_SH = path.join(ROOT, "scripts", "tf.sh");

type Run = ProcessResult;
const run = runProcess;

/** scripts/tf.sh on this test's stack, with what this process synthesized (--no-synth). */
function tf(...args: string[]): Promise<Run> {
  return run("bash", [TF_SH, "--stack", STACK, "--out", out, "--state", statePath, "--no-synth", ...args]);
}

async function tfOk(...args: string[]): Promise<Run> {
  const result = await tf(...args);
  if (result.code !== 0)
    throw new Error(
      `tf.sh ${args.join(" ")} failed (${result.code})\n--- stdout ---\n${result.stdout.slice(-4000)}\n--- stderr ---\n${result.stderr.slice(-4000)}`,
    );
  return result;
}

function synthWith(demoImage: string): void {
  const demo = demoSpec(PE, PORT, { image: demoImage });
  const session = sessionSpec(SESSION_PE, SESSION_PORT);
  synthesize({ stack: STACK, config: { processingElements: [demo, session] }, outdir: out, statePath });
}

type PeOutput = Record<string, unknown> & { peId: string; volumeName: string; commitIntervalMs: number };

async function outputs(): Promise<Record<string, PeOutput>> {
  const result = await tfOk("output");
  const doc = JSON.parse(result.stdout) as Record<string, { value: PeOutput }>;
  return Object.fromEntries(Object.entries(doc).map(([name, o]) => [name, o.value]));
}

interface DemoState {
  version: string;
  linesAtStart: number;
  lines: string[];
}

const volumeName = `reseat-${PE}-state`;
const executable = `reseat-${PE}-tf`;

async function volumeInfo(name: string): Promise<{ CreatedAt: string; Mountpoint: string; Labels: Record<string, string> } | undefined> {
  return orUndefined(docker.getVolume(name).inspect()) as Promise<{ CreatedAt: string; Mountpoint: string; Labels: Record<string, string> } | undefined>;
}

async function runningExecutables(peId: string): Promise<{ Id: string; Names: string[]; Labels: Record<string, string> }[]> {
  return (await containersOf(peId, false)).filter((c) => c.Labels[LABELS.role] === "executable");
}

/** Removes the session PE's commits from the shared directory store (tests own what they make). */
async function removeStoreFolder(peId: string): Promise<void> {
  const store = await volumeInfo("reseat-store");
  if (store) fs.rmSync(path.join(store.Mountpoint, peId), { recursive: true, force: true });
}

describe("Terraform flavour: OpenTofu + kreuzwerker/docker on the real engine", () => {
  let volumeCreatedAt = "";
  let firstContainerId = "";

  beforeAll(async () => {
    await cleanup([PE, SESSION_PE]);
    fs.mkdirSync(dir, { recursive: true });
  });

  afterAll(async () => {
    synthWith("reseat-demo-workload:v2");
    await tf("destroy", "--delete-volumes");
    await cleanup([PE, SESSION_PE]);
    await removeStoreFolder(SESSION_PE);
    // .terraform holds a copy of the provider (~76 MB); the rest is small but of no use afterwards.
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("apply creates the PE: state volume and executable, with reseat's labels and env", async () => {
    synthWith("reseat-demo-workload:v1");
    await tfOk("apply");

    const volume = await volumeInfo(volumeName);
    expect(volume?.Labels).toMatchObject({ [LABELS.managed]: "true", [LABELS.role]: "state-volume", [LABELS.peId]: PE });
    volumeCreatedAt = volume!.CreatedAt;

    const running = await runningExecutables(PE);
    expect(running.map((c) => c.Names[0])).toEqual([`/${executable}`]);
    firstContainerId = running[0]!.Id;
    expect(running[0]!.Labels).toMatchObject({ [LABELS.managed]: "true", [LABELS.role]: "executable", [LABELS.peId]: PE, [LABELS.volume]: volumeName });
    const inspect = (await docker.getContainer(firstContainerId).inspect()) as unknown as {
      Config: { Env: string[]; StopSignal: string; StopTimeout: number };
      HostConfig: { RestartPolicy: { Name: string }; NetworkMode: string };
      Mounts: { Name?: string; Destination: string }[];
    };
    expect(inspect.Config.Env).toEqual(
      expect.arrayContaining([`RESEAT_PE_ID=${PE}`, "RESEAT_STATE_DIR=/state", "RESEAT_COMMIT_INTERVAL_MS=5000", `PORT=${PORT}`]),
    );
    expect(inspect.Config.Env.some((e) => e.startsWith("RESEAT_STORE="))).toBe(true);
    expect(inspect.Config.StopSignal).toBe("SIGTERM");
    expect(inspect.Config.StopTimeout).toBe(5);
    expect(inspect.HostConfig.RestartPolicy.Name).toBe("no");
    expect(inspect.HostConfig.NetworkMode).toBe("host");
    expect(inspect.Mounts).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Name: volumeName, Destination: "/state" }),
        expect.objectContaining({ Name: "reseat-store", Destination: "/reseat-store" }),
      ]),
    );

    const pe = (await outputs())[`pe_${PE}`]!;
    expect(pe).toMatchObject({
      peId: PE,
      volumeName,
      commitIntervalMs: 5000,
      executableName: executable,
      executableId: firstContainerId,
      executable,
      state: "running",
    });
  });

  it("the workload writes state on the volume", async () => {
    await waitFor("the demo workload", () => httpJson(PORT, "/healthz"));
    for (const line of ["alpha", "beta", "gamma"]) await httpJson(PORT, `/append?line=${line}`, "POST");
    const state = await httpJson<DemoState>(PORT, "/state");
    expect(state.version).toBe("v1");
    expect(state.lines).toEqual(["alpha", "beta", "gamma"]);
  });

  it("image v1 -> v2: tofu plan replaces the container and leaves the volume (and the other PE) unchanged", async () => {
    synthWith("reseat-demo-workload:v2");
    await tfOk("plan");
    const shown = await tfOk("tofu", "show", "-json", "tfplan");
    const plan = JSON.parse(shown.stdout) as { resource_changes: { address: string; change: { actions: string[] }; action_reason?: string }[] };
    const changes = Object.fromEntries(plan.resource_changes.map((r) => [r.address, r]));
    expect(changes[`docker_container.pe_${PE}`]!.change.actions).toEqual(["delete", "create"]);
    expect(changes[`docker_container.pe_${PE}`]!.action_reason).toBe("replace_by_triggers");
    expect(changes[`docker_image.pe_${PE}`]!.change.actions).toEqual(["delete", "create"]);
    expect(changes[`docker_volume.pe_${PE}_state`]!.change.actions).toEqual(["no-op"]);
    expect(changes[`terraform_data.pe_${PE}_spec`]!.change.actions).toEqual(["no-op"]);
    for (const address of [`docker_container.pe_${SESSION_PE}`, `docker_volume.pe_${SESSION_PE}_state`, `docker_image.pe_${SESSION_PE}`]) {
      expect(changes[address]!.change.actions).toEqual(["no-op"]);
    }
  });

  it("apply: a new container on the kept volume sees the old state", async () => {
    await tfOk("apply");
    const running = await runningExecutables(PE);
    expect(running).toHaveLength(1);
    expect(running[0]!.Id).not.toBe(firstContainerId);
    expect((await containersOf(PE)).map((c) => c.Id)).not.toContain(firstContainerId);
    expect((await volumeInfo(volumeName))?.CreatedAt).toBe(volumeCreatedAt);

    const state = await waitFor("the v2 workload", async () => {
      const s = await httpJson<DemoState>(PORT, "/state");
      return s.version === "v2" ? s : undefined;
    });
    expect(state.lines).toEqual(["alpha", "beta", "gamma"]);
    expect(state.linesAtStart).toBe(3);
    await httpJson(PORT, "/append?line=delta", "POST");

    const again = await tf("tofu", "plan", "-detailed-exitcode", "-no-color");
    expect(again.code, again.stdout + again.stderr).toBe(0); // 0: no changes
  });

  it("commit status reaches the outputs through the status file (session workload, real commits)", async () => {
    await waitFor("the session workload", () => httpJson(SESSION_PORT, "/healthz"));
    let lastSeq = 0;
    for (const user of ["ada", "grace", "edsger"]) {
      const res = await fetch(`http://127.0.0.1:${SESSION_PORT}/sessions/${user}`, { method: "PUT", body: JSON.stringify({ user }) });
      lastSeq = ((await res.json()) as { seq: number }).seq;
    }
    // `tf.sh status`: reseat status --json into the file, then tofu apply -refresh-only.
    const pe = await waitFor("a commit holding every write in the outputs", async () => {
      const result = await tfOk("status");
      const doc = JSON.parse(result.stdout) as Record<string, { value: PeOutput }>;
      const value = doc[`pe_${SESSION_PE}`]!.value;
      const last = value.lastCommit as { seq: number } | null;
      return last && last.seq >= lastSeq ? value : undefined;
    });
    expect(pe).toMatchObject({
      peId: SESSION_PE,
      state: "running",
      executable: `reseat-${SESSION_PE}-tf`,
      commitLagMs: 0,
      resumedFrom: "empty",
      lastCommitError: null,
    });
    expect(typeof pe.generation).toBe("number");
    // The same figures `reseat status --json` prints (what the file holds).
    const status = JSON.parse((await run(process.execPath, [CLI, "status", "--json"])).stdout) as { processingElements: Record<string, unknown>[] };
    const row = status.processingElements.find((r) => r.peId === SESSION_PE)!;
    expect(row.generation).toBe(pe.generation);
    expect((row.lastCommit as { seq: number }).seq).toBeGreaterThanOrEqual((pe.lastCommit as { seq: number }).seq);
    const file = JSON.parse(fs.readFileSync(path.join(stackDir, "reseat-status.json"), "utf8")) as Record<string, unknown>[];
    expect(file.find((r) => r.peId === SESSION_PE)?.lastCommit).toEqual(pe.lastCommit);
  });

  it("tofu destroy is refused while prevent_destroy holds the volume, and changes nothing", async () => {
    const before = (await runningExecutables(PE)).map((c) => c.Id);
    const result = await tf("tofu", "destroy", "-auto-approve", "-no-color");
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toMatch(/prevent_destroy/);
    expect((await runningExecutables(PE)).map((c) => c.Id)).toEqual(before);
    expect(await volumeExists(volumeName)).toBe(true);
    expect((await httpJson<DemoState>(PORT, "/state")).lines).toEqual(["alpha", "beta", "gamma", "delta"]);
  });

  it("the documented tear-down (tf.sh destroy) removes the executables and keeps the volumes with their data", async () => {
    const result = await tfOk("destroy");
    expect(result.stderr).toContain(`kept volume ${volumeName}`);
    expect(await containersOf(PE)).toHaveLength(0);
    expect(await containersOf(SESSION_PE)).toHaveLength(0);
    const volume = await volumeInfo(volumeName);
    expect(volume?.CreatedAt).toBe(volumeCreatedAt);
    expect(fs.readFileSync(path.join(volume!.Mountpoint, "appended.log"), "utf8").split("\n").filter(Boolean)).toEqual(["alpha", "beta", "gamma", "delta"]);
    expect(await volumeExists(`reseat-${SESSION_PE}-state`)).toBe(true);
    const list = await tfOk("tofu", "state", "list");
    expect(list.stdout.trim()).toBe("");
  });

  it("a later apply adopts the kept volume: the state is still there", async () => {
    await tfOk("apply");
    expect((await volumeInfo(volumeName))?.CreatedAt).toBe(volumeCreatedAt);
    const state = await waitFor("the workload after adoption", () => httpJson<DemoState>(PORT, "/state"));
    expect(state.lines).toEqual(["alpha", "beta", "gamma", "delta"]);
    const again = await tf("tofu", "plan", "-detailed-exitcode", "-no-color");
    expect(again.code, again.stdout + again.stderr).toBe(0);
  });

  it("tf.sh destroy --delete-volumes is the explicit way to delete the data", async () => {
    const result = await tfOk("destroy", "--delete-volumes");
    expect(result.stderr).toContain(`deleted volume ${volumeName}`);
    expect(await containersOf(PE)).toHaveLength(0);
    expect(await volumeExists(volumeName)).toBe(false);
    expect(await volumeExists(`reseat-${SESSION_PE}-state`)).toBe(false);
  });
});
