// Issue 10: the engine a PE lives on is recorded in state and compared on every operation. Pointed at
// another engine (DOCKER_HOST of a second local dockerd the test owns), every command fails with a
// clear error, nothing is created there, and the PE on its own engine is untouched.
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, Project, cleanup, containersOf, demoSpec, makeProject, mustSucceed, peOutputs, run } from "../support/harness";
import { SecondEngine, startSecondEngine } from "../support/secondEngine";
import { freePort, stackExport } from "../support/userProject";

const PE = `it-engine-${process.pid}`;

describe("a stack pointed at another Docker Engine", () => {
  let project: Project;
  let second: SecondEngine;
  let executableId: string;

  beforeAll(async () => {
    await cleanup([PE]);
    second = await startSecondEngine();
    project = makeProject("other-engine", [demoSpec(PE, await freePort())]);
  });
  afterAll(async () => {
    await second?.stop();
    await cleanup([PE]);
  });

  it("up on the machine's engine records that engine in the state", async () => {
    const pe = peOutputs(await mustSucceed(project, "up"), PE);
    executableId = pe.executableId;
    const state = JSON.parse(await stackExport(project.dir, project.stack, backendEnv(project))) as Deployment;
    const recorded = state.deployment.resources.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/reseat")).map((r) => r.outputs.engineIdentity);
    expect(recorded).toHaveLength(2);
    for (const engine of recorded) {
      expect(engine?.kind).toBe("docker");
      expect(engine?.id).toMatch(/@\/var\/lib\/docker$/);
    }
  });

  it.each(["preview", "up", "refresh", "destroy"])("%s against the second engine fails naming both engines, and creates nothing there", async (command) => {
    // `up --create`: the CLI makes a stack only when asked.
    const create = command === "up" ? ["--create"] : [];
    const result = await run(process.execPath, [CLI, command, "--cwd", project.dir, "--stack", project.stack, ...create, "--json"], {
      ...process.env,
      DOCKER_HOST: second.dockerHost,
    });
    expect(result.code).toBe(1);
    expect(result.doc.ok).toBe(false);
    expect(result.doc.error).toMatch(new RegExp(`processing element "${PE}" lives on docker engine`));
    expect(result.doc.error).toContain(`this run talks to docker engine`);
    expect(result.doc.error).toContain(second.dockerHost);
    expect((await second.docker("ps", "-aq")).trim()).toBe("");
    expect((await second.docker("volume", "ls", "-q")).trim()).toBe("");
    expect((await second.docker("images", "-q")).trim()).toBe("");
    // The PE on its own engine is untouched, and the state still has it.
    const running = await containersOf(PE, false);
    expect(running.map((c) => c.Id)).toEqual([executableId]);
  });

  it("back on its own engine, nothing needs changing and the state still holds the PE", async () => {
    const preview = await mustSucceed(project, "preview", "--expect-no-changes");
    expect(preview.code).toBe(0);
    const outputs = await mustSucceed(project, "outputs");
    expect(peOutputs(outputs, PE).executableId).toBe(executableId);
  });
});

interface Deployment {
  deployment: { resources: { type: string; outputs: { engineIdentity?: { kind: string; id: string; address: string } } }[] };
}

function backendEnv(project: Project): NodeJS.ProcessEnv {
  return { ...process.env, PULUMI_BACKEND_URL: `file://${path.join(project.dir, ".pulumi-state")}` };
}
