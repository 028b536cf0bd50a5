// Never down on a bad change: a replacement whose new executable cannot become ready is reverted —
// the previous spec serves again on the same volume with every acknowledged write, never two running
// at once — and the next up with a fixed spec replaces normally. Real Pulumi CLI, real Docker Engine.
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Project,
  ROOT,
  cleanup,
  containersOf,
  lastAcked,
  makeProject,
  mustSucceed,
  peOutputs,
  reseatCli,
  recordLiveness,
  runProcess,
  runningOf,
  sessionSpec,
  sessions,
  setSpecs,
  startWriters,
  waitFor,
  watchConcurrency,
} from "../support/harness";

const PE = `it-revert-${process.pid}`;
const PORT = 18700 + (process.pid % 200);

/** Pulumi's own record of the PE's Executable resource (what `pulumi stack export` holds). */
async function executableInState(project: Project): Promise<Record<string, unknown>> {
  const env = { ...process.env, PULUMI_BACKEND_URL: `file://${path.join(project.dir, ".pulumi-state")}` };
  const exported = await runProcess("pulumi", ["stack", "export", "--cwd", project.dir, "--stack", project.stack], env);
  expect(exported.code).toBe(0);
  const deployment = JSON.parse(exported.stdout) as { deployment: { resources: { type: string; outputs: Record<string, unknown> }[] } };
  const executable = deployment.deployment.resources.find((r) => r.type === "pulumi-nodejs:dynamic/reseat:Executable");
  return executable!.outputs;
}

describe("staged replacement with automatic revert", () => {
  let project: Project;
  let generation = 1;

  beforeAll(async () => {
    await cleanup([PE]);
    project = makeProject("revert", [sessionSpec(PE, PORT)]);
    generation = peOutputs(await mustSucceed(project, "up"), PE).generation;
  });
  afterAll(async () => {
    await cleanup([PE]);
  });

  const badChanges: { name: string; overrides: Record<string, unknown>; failure: RegExp }[] = [
    { name: "an image that exists but exits at start", overrides: { image: "reseat-crash-at-start:1" }, failure: /exited with code 3 before it was ready/ },
    {
      name: "a readiness that never passes",
      overrides: { image: "reseat-session-workload:v2", readiness: { httpGet: { port: PORT, path: "/never-ready" }, timeout: "3s" } },
      failure: /was not ready within 3000 ms/,
    },
    {
      name: "an env that crashes the workload",
      overrides: { env: { PORT: String(PORT), NODE_OPTIONS: "--require /no/such/module.js" } },
      failure: /exited with code \d+ before it was ready/,
    },
  ];

  for (const bad of badChanges) {
    it(`${bad.name}: up fails with the revert error, the old spec serves again with every acknowledged write`, async () => {
      const writers = startWriters(PORT, 2, `revert-${badChanges.indexOf(bad)}`);
      await waitFor("20 acknowledged writes", async () => (writers.acks.length >= 20 ? true : undefined));
      const observer = watchConcurrency(PE);
      const liveness = await recordLiveness(PE);
      setSpecs(project, [sessionSpec(PE, PORT, bad.overrides)]);
      const result = await reseatCli(project, "up");
      await writers.stop();
      expect(result.code).not.toBe(0);
      expect(result.doc.error).toMatch(new RegExp(`PE "${PE}" was reverted: the new executable reseat-${PE}-g${generation + 1}`));
      expect(result.doc.error).toMatch(bad.failure);
      expect(result.doc.error).toContain(`Last log lines of reseat-${PE}-g${generation + 1}`);
      generation += 2; // the failed one, then the previous spec again as the next generation
      // Serving again, with every acknowledged write.
      const running = await runningOf(PE);
      expect(running.map((c) => c.Names[0])).toEqual([`/reseat-${PE}-g${generation}`]);
      const seen = (await sessions(PORT)).sessions;
      for (const [key, value] of lastAcked(writers.acks)) expect(seen[key]?.n).toBe(value);
      expect((await observer.stop()).maxRunning).toBeLessThanOrEqual(1);
      expect((await liveness.stop()).maxLive).toBeLessThanOrEqual(1);
      expect(await containersOf(PE)).toHaveLength(1); // no failed or stopped leftovers
      // Pulumi's state describes the executable that serves (the CLI refreshed after the revert).
      const state = await executableInState(project);
      expect(state.executableId).toBe(running[0]!.Id);
      expect(state.generation).toBe(generation);
      expect(state.reverted).toBe(true);
      // `reseat status` says so too.
      const status = JSON.parse((await runProcess(process.execPath, [path.join(ROOT, "dist", "src", "cli", "main.js"), "status", "--json"])).stdout) as {
        processingElements: { peId: string; reverted: boolean; failedSpecHash: string | null; generation: number }[];
      };
      const row = status.processingElements.find((r) => r.peId === PE)!;
      expect(row).toMatchObject({ reverted: true, generation });
      expect(row.failedSpecHash).toMatch(/^[0-9a-f]{16}$/);
      // Back to the good spec for the next case.
      setSpecs(project, [sessionSpec(PE, PORT)]);
    });
  }

  it("the next up with a fixed spec replaces normally and clears the revert", async () => {
    setSpecs(project, [sessionSpec(PE, PORT, { image: "reseat-session-workload:v2" })]);
    const fixed = peOutputs(await mustSucceed(project, "up"), PE);
    expect(fixed.generation).toBe(generation + 1);
    expect(fixed.reverted).toBe(false);
    expect((await runningOf(PE)).map((c) => c.Id)).toEqual([fixed.executableId]);
    expect(await containersOf(PE)).toHaveLength(1);
  });

  it("leave-stopped: a failed replacement leaves the PE without an executable, volume kept", async () => {
    setSpecs(project, [sessionSpec(PE, PORT, { image: "reseat-crash-at-start:1", onFailedReplacement: "leave-stopped" })]);
    const result = await reseatCli(project, "up");
    expect(result.code).not.toBe(0);
    expect(result.doc.error).toMatch(/exited with code 3 before it was ready/);
    expect(result.doc.error).not.toMatch(/was reverted/);
    expect(await runningOf(PE)).toHaveLength(0);
    // Fixing the spec brings it back on the same volume.
    setSpecs(project, [sessionSpec(PE, PORT)]);
    const back = peOutputs(await mustSucceed(project, "up", "--refresh"), PE);
    expect((await runningOf(PE)).map((c) => c.Id)).toEqual([back.executableId]);
  });
});
