// `reseat watch` cannot go deaf: the Docker Engine it watches is stopped and started again (a dockerd
// this test owns), and the controller reconnects, reseats what the engine's shutdown stopped, and then
// reseats a PE killed with SIGKILL as usual. It never acts while the engine is away.
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Project, demoSpec, httpJson, makeProject, mustSucceed, peOutputs, startController, waitFor } from "../support/harness";
import { freePort } from "../support/remoteEngines/daemon";
import { TestEngine } from "../support/remoteEngines/testEngine";

type StateView = { version: string; generation: number; lines: string[] };
const IMAGE = "reseat-demo-workload:v1";

describe("the failure controller across an engine restart", () => {
  let engine: TestEngine;
  let remote: Dockerode;
  let project: Project;
  let controller: ReturnType<typeof startController> | undefined;
  const peId = `it-restart-${process.pid}`;
  let port = 0;

  beforeAll(async () => {
    engine = await TestEngine.start();
    await engine.loadImages([IMAGE]);
    remote = new Dockerode({ socketPath: engine.socket });
    port = await freePort();
  });
  afterAll(async () => {
    await controller?.stop();
    await engine?.destroy();
  });

  const running = async () => (await remote.listContainers({ filters: { label: [`io.reseat.pe-id=${peId}`] } })).map((c) => c.Id);
  const answering = async () => await httpJson<StateView>(port, "/state").catch(() => undefined);

  it("reconnects after the engine restarts, reseats what stopped meanwhile, then reseats a kill -9", async () => {
    project = makeProject("engine-restart", [
      demoSpec(peId, port, { docker: { host: engine.unixHost }, failureBackoff: { initial: "100ms", resetAfter: "1s" } }),
    ]);
    const first = peOutputs(await mustSucceed(project, "up"), peId);
    expect(first.host).toBe(engine.name);
    for (const line of ["a", "b"]) await httpJson(port, `/append?line=${line}`, "POST");

    controller = startController({ ...process.env, DOCKER_HOST: engine.unixHost });
    await controller.ready;
    const events = controller.events;
    const at = (kind: string) => events.findIndex((e) => e.kind === kind);

    // The engine goes away (its shutdown stops the PE's container) and comes back.
    await engine.stop();
    await waitFor("the controller to notice the engine is gone", async () => (at("disconnected") >= 0 ? true : undefined), 60_000);
    await engine.start();
    const backAt = Date.now();
    await waitFor("the controller to reconnect", async () => (at("reconnected") >= 0 ? true : undefined), 60_000);
    const afterRestart = await waitFor(
      "the PE serving again after the restart",
      async () => {
        const state = await answering();
        return state && state.generation > first.generation ? state : undefined;
      },
      120_000,
    ).catch((error: Error) => {
      // Say what the controller decided, so that a failure here explains itself.
      throw new Error(`${error.message}; controller events: ${JSON.stringify(events.slice(-15))}; engine log: ${engine.logTail(10)}`);
    });
    const restartRecoveryMs = Date.now() - backAt;
    expect(afterRestart.lines).toEqual(["a", "b"]);
    // Nothing was done while the engine was away: every reseat comes after the reconnect.
    const reseatIndexes = () => events.map((e, i) => (e.kind === "reseated" && e.peId === peId ? i : -1)).filter((i) => i >= 0);
    const reseats = await waitFor("the controller's report of the reseat", async () => (reseatIndexes().length ? reseatIndexes() : undefined));
    expect(Math.min(...reseats)).toBeGreaterThan(at("reconnected"));
    expect(events.slice(at("disconnected"), at("reconnected")).filter((e) => e.kind === "reseated" || e.kind === "reseat-failed")).toEqual([]);

    // A kill -9 afterwards is handled as usual, on the same volume.
    const [victim] = await running();
    expect(victim).toBeTruthy();
    const killedAt = Date.now();
    await remote.getContainer(victim!).kill({ signal: "SIGKILL" });
    const afterKill = await waitFor(
      "the PE serving again after kill -9",
      async () => {
        const state = await answering();
        return state && state.generation > afterRestart.generation ? state : undefined;
      },
      60_000,
    );
    const killRecoveryMs = Date.now() - killedAt;
    expect(afterKill.lines).toEqual(["a", "b"]);
    expect(await running()).toHaveLength(1);
    console.log(`engine restart: serving again ${restartRecoveryMs} ms after the engine answered; kill -9 after the restart: ${killRecoveryMs} ms`);

    await controller.stop();
    controller = undefined;
    await mustSucceed(project, "destroy");
  });
});
