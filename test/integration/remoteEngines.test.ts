// PEs on a second Docker Engine that the test owns (its own dockerd, data root and name), reached over
// tcp:// with TLS (certificates made by the test) and over ssh:// (an sshd the test starts, running
// `docker system dial-stdio`). Each PE is created, then replaced by an image change with its state
// kept. Real Pulumi CLI, real engines; the machine's main engine must see none of it.
import { execFileSync } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABELS } from "../../src/backend/backend";
import { followEvents } from "../../src/backend/docker/events";
import {
  Project,
  containersOf,
  demoSpec,
  engineEventsUntilNow,
  httpJson,
  makeProject,
  mustSucceed,
  peOutputs,
  setSecret,
  setSpecs,
  volumeExists,
} from "../support/harness";
import { freePort } from "../support/remoteEngines/daemon";
import { SshServer } from "../support/remoteEngines/sshServer";
import { TestEngine } from "../support/remoteEngines/testEngine";

type StateView = { version: string; generation: number; lines: string[] };
const IMAGES = ["reseat-demo-workload:v1", "reseat-demo-workload:v2"];

describe("processing elements on another Docker Engine", () => {
  let engine: TestEngine;
  let ssh: SshServer;
  /** The test's own view of the second engine (its unix socket), independent of reseat. */
  let remote: Dockerode;

  beforeAll(async () => {
    engine = await TestEngine.start({ tls: true });
    await engine.loadImages(IMAGES);
    ssh = await SshServer.start({ dockerHost: engine.unixHost });
    remote = new Dockerode({ socketPath: engine.socket });
  });
  afterAll(async () => {
    await ssh?.stop();
    await engine?.destroy();
  });

  it("the TLS engine answers only clients holding a certificate of the test's CA", async () => {
    const port = engine.tcpPort!;
    const ca = engine.tls!.client.ca;
    await expect(new Dockerode({ host: "127.0.0.1", port, protocol: "http" }).ping()).rejects.toThrow();
    await expect(new Dockerode({ host: "127.0.0.1", port, protocol: "https", ca } as Dockerode.DockerOptions).ping()).rejects.toThrow();
    const { client } = engine.tls!;
    expect(String(await new Dockerode({ host: "127.0.0.1", port, protocol: "https", ...client }).ping())).toBe("OK");
  });

  it("a PE over tcp:// with TLS: created there, then replaced (image change) with its state kept", async () => {
    const peId = `it-tls-${process.pid}`;
    const port = await freePort();
    const { ca, cert, key } = engine.tls!.client;
    const spec = (image: string) => demoSpec(peId, port, { image, docker: { host: engine.tcpHost, tls: { ca, cert, keySecret: "engineTlsKey" } } });
    const project = makeProject("remote-tls", [spec(IMAGES[0]!)]);
    setSecret(project, "engineTlsKey", key);
    await replacedWithStateKept(project, peId, port, spec);
    // The client key went in as a Pulumi secret: encrypted in state, in plain text nowhere.
    const exported = stackExport(project);
    for (const line of pemLines(key)) expect(exported).not.toContain(line);
  });

  it("a PE over ssh://: created there, then replaced (image change) with its state kept", async () => {
    const peId = `it-ssh-${process.pid}`;
    const port = await freePort();
    const spec = (image: string) => demoSpec(peId, port, { image, docker: { host: ssh.engineAddress(), ssh: { privateKeySecret: "engineSshKey" } } });
    const project = makeProject("remote-ssh", [spec(IMAGES[0]!)]);
    setSecret(project, "engineSshKey", ssh.privateKey);
    await replacedWithStateKept(project, peId, port, spec);
    // Every engine call went through the test's sshd, authenticated with the test's key.
    expect(ssh.logTail(10_000)).toMatch(/Accepted publickey for root from 127\.0\.0\.1/);
    const exported = stackExport(project);
    for (const line of pemLines(ssh.privateKey)) expect(exported).not.toContain(line);
  });

  /** up on the second engine, state written, image v1 → v2, then destroy (the volume stays). */
  async function replacedWithStateKept(project: Project, peId: string, port: number, spec: (image: string) => Record<string, unknown>): Promise<void> {
    setSpecs(project, [spec(IMAGES[0]!)]);
    const first = peOutputs(await mustSucceed(project, "up"), peId);
    // Its host is the second engine (its own name, not this machine's), and only that engine runs it.
    expect(first.host).toBe(engine.name);
    expect(first.host).not.toBe(os.hostname());
    expect((await runningOn(remote, peId)).map((c) => c.Id)).toEqual([first.executableId]);
    expect(await containersOf(peId)).toHaveLength(0);
    expect(await volumeExists(first.volumeName)).toBe(false);
    for (const line of ["a", "b", "c"]) await httpJson(port, `/append?line=${line}`, "POST");

    setSpecs(project, [spec(IMAGES[1]!)]);
    const live = await recordLiveness(peId);
    const second = peOutputs(await mustSucceed(project, "up"), peId);
    const { maxLive, starts } = await live.stop();

    expect(second.host).toBe(engine.name);
    expect(second.volumeName).toBe(first.volumeName);
    expect(second.generation).toBe(first.generation + 1);
    expect(second.executableId).not.toBe(first.executableId);
    const state = await httpJson<StateView>(port, "/state");
    expect(state.version).toBe("v2");
    expect(state.lines).toEqual(["a", "b", "c"]);
    expect(maxLive).toBeLessThanOrEqual(1);
    expect(starts).toBe(1);
    expect((await runningOn(remote, peId)).map((c) => c.Id)).toEqual([second.executableId]);

    await mustSucceed(project, "destroy");
    expect(await runningOn(remote, peId)).toHaveLength(0);
    expect(await remote.getVolume(first.volumeName).inspect()).toMatchObject({ Name: first.volumeName });
  }

  /** start/die events of one PE on the second engine: the most executables live at once. */
  async function recordLiveness(peId: string): Promise<{ stop: () => Promise<{ maxLive: number; starts: number }> }> {
    // `since` counts whole seconds: ask from a second early, keep only what happened from now on (timeNano).
    const startedNano = Date.now() * 1e6;
    const since = Math.floor(Date.now() / 1000) - 1;
    const filters = { type: ["container"], label: [`${LABELS.peId}=${peId}`], event: ["start", "die"] };
    const byKey = new Map<string, { action: string; id: string; timeNano: number }>();
    const collect = (e: { Action: string; id: string; timeNano: number }) =>
      byKey.set(`${e.id}/${e.Action}/${e.timeNano}`, { action: e.Action, id: e.id, timeNano: e.timeNano });
    const subscription = await followEvents(remote, engine.unixHost, filters, collect, { since });
    return {
      stop: async () => {
        // The last event (the new executable's start) happened before `up` returned: the engine's own log up
        // to now has it even if the live stream has not delivered it yet.
        for (const e of await engineEventsUntilNow(remote, since, filters)) collect(e);
        subscription.close();
        const events = [...byKey.values()].filter((e) => e.timeNano >= startedNano).sort((a, b) => a.timeNano - b.timeNano);
        const live = new Set<string>();
        let maxLive = 0;
        for (const e of events) {
          if (e.action === "start") live.add(e.id);
          else live.delete(e.id);
          maxLive = Math.max(maxLive, live.size);
        }
        return { maxLive, starts: events.filter((e) => e.action === "start").length };
      },
    };
  }
});

async function runningOn(docker: Dockerode, peId: string): Promise<Dockerode.ContainerInfo[]> {
  return docker.listContainers({ filters: { label: [`${LABELS.peId}=${peId}`] } });
}

function stackExport(project: Project, ...flags: string[]): string {
  const env = { ...process.env, PULUMI_BACKEND_URL: `file://${path.join(project.dir, ".pulumi-state")}` };
  return execFileSync("pulumi", ["stack", "export", "--stack", project.stack, ...flags], { cwd: project.dir, env }).toString();
}

/** A PEM's base64 lines: any of them in a text means the key leaked (JSON escapes only the newlines). */
function pemLines(pem: string): string[] {
  return pem.split("\n").filter((line) => line && !line.startsWith("-----"));
}
