// Issue: failure handling. `reseat watch` (the real CLI, its own process) reseats failed executables
// with the same routine the provider uses; Pulumi converges after any interruption.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CLI,
  Project,
  ROOT,
  cleanup,
  demoSpec,
  docker,
  orUndefined,
  lastAcked,
  leftovers,
  makeProject,
  mustSucceed,
  peOutputs,
  recordLiveness,
  runningOf,
  sessionSpec,
  sessions,
  setSpecs,
  startController,
  startPersistentWriters,
  startWriters,
  waitFor,
  watchConcurrency,
} from "../support/harness";

const PE = `it-ctl-${process.pid}`;
const PORT = 18500 + (process.pid % 400);
const CHAOS_CYCLES = Number(process.env.RESEAT_CHAOS_CYCLES ?? 200);

async function killHard(id: string): Promise<void> {
  await docker.getContainer(id).kill({ signal: "KILL" });
}

function generationOf(name: string): number {
  return Number(/-g(\d+)$/.exec(name.replace(/^\//, ""))?.[1] ?? 0);
}

describe("the failure controller and crash-safe provisioning", () => {
  let project: Project;
  let controller: ReturnType<typeof startController> | undefined;

  beforeAll(async () => {
    await cleanup([PE, `${PE}-loop`]);
    project = makeProject("controller", [sessionSpec(PE, PORT)]);
    await mustSucceed(project, "up");
  });
  afterAll(async () => {
    await controller?.stop();
    await cleanup([PE, `${PE}-loop`]);
  });

  it("kill -9 with `reseat watch` running: a new executable serves the same state, generation + 1, the old one gone", async () => {
    controller = startController();
    await controller.ready;
    const before = (await runningOf(PE))[0]!;
    const writers = startWriters(PORT, 2, "watch");
    await waitFor("100 writes", async () => (writers.acks.length >= 100 ? true : undefined));
    await killHard(before.Id);
    await writers.stop();
    const after = await waitFor("a new executable", async () => {
      const running = await runningOf(PE);
      return running.length === 1 && running[0]!.Id !== before.Id ? running[0] : undefined;
    });
    expect(generationOf(after.Names[0]!)).toBe(generationOf(before.Names[0]!) + 1);
    const seen = await waitFor("the service answering", () => sessions(PORT));
    for (const [key, value] of lastAcked(writers.acks)) expect(seen.sessions[key]?.n).toBeGreaterThanOrEqual(value);
    expect(await orUndefined(docker.getContainer(before.Id).inspect())).toBeUndefined();
    await waitFor("the controller's report", async () => (controller!.events.some((e) => e.kind === "reseated" && e.peId === PE) ? true : undefined));
  });

  it("refresh picks the controller's executable up by identity; the next up replaces nothing", async () => {
    const refreshed = await mustSucceed(project, "up", "--refresh");
    const running = (await runningOf(PE))[0]!;
    expect(peOutputs(refreshed, PE).executableId).toBe(running.Id);
    expect(refreshed.doc.summary?.replace ?? 0).toBe(0);
    const again = await mustSucceed(project, "preview");
    expect(again.doc.changeSummary?.replace ?? 0).toBe(0);
    expect(again.doc.changeSummary?.create ?? 0).toBe(0);
  });

  it(`chaos: ${CHAOS_CYCLES} kill -9 cycles under write load: no acknowledged write lost, never two live executables`, async () => {
    // Kills from outside, not a crash loop: a short reset window keeps the controller from backing off.
    setSpecs(project, [sessionSpec(PE, PORT, { failureBackoff: { initial: "100ms", max: "500ms", resetAfter: "200ms" } })]);
    await mustSucceed(project, "up", "--refresh");
    const live = await recordLiveness(PE);
    const polled = watchConcurrency(PE);
    const writers = startPersistentWriters(PORT, 2, "chaos");
    for (let cycle = 0; cycle < CHAOS_CYCLES; cycle++) {
      const victim = await waitFor("a running executable", async () => (await runningOf(PE))[0], 60_000).catch((error: Error) => {
        // Show what the controller decided, so that a failure here explains itself.
        console.error(controller!.events.filter((e) => e.peId === PE).slice(-10));
        throw error;
      });
      await waitFor("the service answering", () => sessions(PORT), 60_000);
      await killHard(victim.Id).catch(() => undefined);
    }
    await waitFor("recovery after the last kill", async () => ((await runningOf(PE)).length === 1 ? true : undefined), 60_000);
    await waitFor("the service answering", () => sessions(PORT), 60_000);
    await new Promise((r) => setTimeout(r, 300));
    await writers.stop();
    const seen = (await sessions(PORT)).sessions;
    const lost = [...lastAcked(writers.acks)].filter(([key, value]) => (seen[key]?.n ?? -1) < value);
    const observed = await polled.stop();
    const liveness = await live.stop();
    console.log(
      `chaos: ${CHAOS_CYCLES} kills, ${writers.acks.length} acknowledged writes, ${lost.length} lost, max live ${liveness.maxLive}/${observed.maxRunning}`,
    );
    expect(lost).toEqual([]);
    expect(liveness.maxLive).toBe(1);
    expect(observed.maxRunning).toBeLessThanOrEqual(1);
    expect(liveness.events.filter((e) => e.action === "start").length).toBeGreaterThanOrEqual(CHAOS_CYCLES);
  });

  it("`pulumi up` racing `reseat watch` on the same PE: one executable, generations strictly increasing", async () => {
    const live = await recordLiveness(PE);
    for (const image of ["reseat-session-workload:v2", "reseat-session-workload:v1"]) {
      setSpecs(project, [sessionSpec(PE, PORT, { image, failureBackoff: { initial: "100ms", max: "500ms", resetAfter: "200ms" } })]);
      const victim = (await runningOf(PE))[0]!;
      const up = mustSucceed(project, "up", "--refresh");
      await killHard(victim.Id).catch(() => undefined); // the controller and `up` now race
      await up;
      await waitFor("one running executable", async () => ((await runningOf(PE)).length === 1 ? true : undefined));
    }
    const liveness = await live.stop();
    expect(liveness.maxLive).toBe(1);
    const started: number[] = [];
    for (const e of liveness.events.filter((x) => x.action === "start")) {
      const c = await orUndefined(docker.getContainer(e.id).inspect());
      if (c) started.push(generationOf(c.Name));
    }
    const names = [];
    for (const e of liveness.events.filter((x) => x.action === "start")) names.push(e.id);
    expect(names.length).toBeGreaterThanOrEqual(2);
    expect(started).toEqual([...started].sort((a, b) => a - b));
    expect(new Set(started).size).toBe(started.length);
    const final = await mustSucceed(project, "up", "--refresh");
    expect(final.doc.summary?.replace ?? 0).toBe(0);
    expect(await leftovers(PE)).toEqual([]);
  });

  it("backoff: a crash-looping executable is retried with the configured delays and reported as failing", async () => {
    const loopPe = `${PE}-loop`;
    const loop = makeProject("controller-loop", [
      demoSpec(loopPe, PORT + 1, {
        command: ["node", "-e", "setTimeout(() => process.exit(3), 300)"],
        readiness: undefined,
        failureBackoff: { initial: "200ms", max: "800ms", resetAfter: "1m" },
        persistentStore: { kind: "none" },
      }),
    ]);
    await mustSucceed(loop, "up");
    const events = await waitFor(
      "five failures",
      async () => {
        const failures = controller!.events.filter((e) => e.peId === loopPe && e.kind === "failure");
        return failures.length >= 5 ? controller!.events.filter((e) => e.peId === loopPe) : undefined;
      },
      60_000,
    );
    const delays = events.filter((e) => e.kind === "backoff").map((e) => e.delayMs);
    expect(delays.slice(0, 4)).toEqual([200, 400, 800, 800]);
    expect(events.some((e) => e.kind === "crash-looping")).toBe(true);
    const status = JSON.parse(
      await new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, [CLI, "status", "--json"], { stdio: ["ignore", "pipe", "inherit"] });
        let out = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`status exited ${code}`))));
      }),
    ) as { processingElements: { peId: string; restarts: number; controller: string | null }[] };
    const row = status.processingElements.find((r) => r.peId === loopPe)!;
    expect(row.restarts).toBeGreaterThanOrEqual(3);
    expect(row.controller).toBe("failing");
    await mustSucceed(loop, "destroy");
  });
});

describe("crash safety: the Pulumi process killed at each step of a replacement", () => {
  const FPE = `it-crash-${process.pid}`;
  const FPORT = PORT + 2;
  let project: Project;
  let image = "reseat-session-workload:v1";

  beforeAll(async () => {
    await cleanup([FPE]);
    project = makeProject("crash", [sessionSpec(FPE, FPORT)]);
    await mustSucceed(project, "up");
  });
  afterAll(async () => {
    await cleanup([FPE]);
  });

  // The staged routine's steps: prepared (old still serving), old stopped, new started, new ready (old
  // not yet removed). Wherever the run dies, the next up converges.
  for (const point of ["after-prepare", "after-stop", "after-start", "after-ready"] as const) {
    it(`killed ${point}: the next up converges to exactly one executable; volume and acknowledged writes survive`, async () => {
      const writers = startWriters(FPORT, 1, point);
      await waitFor("20 writes", async () => (writers.acks.length >= 20 ? true : undefined));
      await writers.stop();
      image = image.endsWith("v1") ? "reseat-session-workload:v2" : "reseat-session-workload:v1";
      setSpecs(project, [sessionSpec(FPE, FPORT, { image })]);

      const marker = path.join(project.dir, `fault-${point}`);
      fs.rmSync(marker, { force: true });
      const child = spawn(process.execPath, [CLI, "up", "--cwd", project.dir, "--stack", project.stack, "--json"], {
        detached: true,
        stdio: "ignore",
        env: { ...process.env, RESEAT_FAULT_POINT: point, RESEAT_FAULT_MARKER: marker },
      });
      await waitFor(`the fault point ${point}`, async () => (fs.existsSync(marker) ? true : undefined), 120_000);
      const providerPid = Number(fs.readFileSync(marker, "utf8").split(" ")[1]);
      process.kill(-child.pid!, "SIGKILL"); // the reseat CLI, the Pulumi CLI and its plugins
      try {
        process.kill(providerPid, "SIGKILL");
      } catch {
        // already gone with its process group
      }

      // The documented recovery: release the dead run's stack lock, then up with refresh and
      // pending creates cleared.
      await mustSucceed(project, "cancel");
      const recovered = peOutputs(await mustSucceed(project, "up", "--clear-pending-creates", "--refresh"), FPE);
      const running = await runningOf(FPE);
      expect(running.map((c) => c.Id)).toEqual([recovered.executableId]);
      expect(await leftovers(FPE)).toEqual([]);
      const seen = (await sessions(FPORT)).sessions;
      for (const [key, value] of lastAcked(writers.acks)) expect(seen[key]?.n).toBe(value);
      expect((await orUndefined(docker.getVolume(recovered.volumeName).inspect())) !== undefined).toBe(true);
      const again = await mustSucceed(project, "preview");
      const changed = (again.doc.steps ?? []).filter((step) => step.op !== "same");
      expect(changed, `preview after recovery still wants: ${JSON.stringify(changed)}`).toEqual([]);
    });
  }
});
void ROOT;
