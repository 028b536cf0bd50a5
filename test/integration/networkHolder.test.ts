// A standby-handover bridge PE's network holder on the machine's Docker Engine: its executables join one
// network namespace that a tiny container holds across generations (one IP, one set of published host
// ports), so a successor can be created and started while the old executable still serves, and takes the
// port once the old one exits. Driven through the backend (prepare, start, stop, remove, retire).
import * as http from "node:http";
import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerBackend } from "../../src/backend/docker/dockerBackend";
import { ExecutableDesired, LABELS, executableName } from "../../src/backend/backend";
import { DockerNetworkHolders, NETWORK_HOLDER_ROLE, networkHolderName } from "../../src/backend/docker/networkHolder";
import { ContainerInspect } from "../../src/backend/docker/engine";
import { retire } from "../../src/replacement/retire";
import { poll } from "../../src/util/retry";
import { Project, cleanup, containersOf, makeProject, mustSucceed, peOutputs, recordLiveness, sessionSpec, setSpecs, volumeExists } from "../support/harness";

const PE = `it-netholder-${process.pid}`;
const PLAIN_PE = `it-netholder-plain-${process.pid}`;
const VOLUME = `reseat-${PE}-state`;
const PLAIN_VOLUME = `reseat-${PLAIN_PE}-state`;
const STACK_PE = `it-netholder-up-${process.pid}`;
const TEST_IMAGE = `reseat-it-netholder-${process.pid}:test`;
const WORKLOAD_PORT = 8080;
const WAIT_MS = 120_000;
const CASE_MS = 300_000;

/**
 * A standby stand-in on the demo image (it does not use the state library): it starts beside the old
 * executable, in its network, waits while the port answers there (the old one serves it), then serves.
 */
const WAIT_THEN_SERVE = [
  'const net = require("node:net");',
  'console.log("standby: parked, the port is taken");',
  "const attempt = () => {",
  `  const socket = net.connect(${WORKLOAD_PORT}, "127.0.0.1");`,
  '  socket.on("connect", () => { socket.destroy(); setTimeout(attempt, 10); });',
  '  socket.on("error", () => { console.log("standby: the port is free, serving"); require("/app/server.js"); });',
  "};",
  "attempt();",
].join("\n");

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function healthz(port: number): Promise<{ generation: number | null }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/healthz", agent: false, timeout: 5000 }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () =>
        res.statusCode === 200 ? resolve(JSON.parse(body) as { generation: number | null }) : reject(new Error(`GET /healthz: ${res.statusCode} ${body}`)),
      );
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("GET /healthz timed out")));
  });
}

describe("a standby-handover bridge PE's network holder (Docker)", () => {
  const backend = new DockerBackend();
  const holders = new DockerNetworkHolders(backend.docker, backend.connection);
  let hostPort: number;
  let demoImageId: string;

  const desiredFor = (peId: string, volumeName: string, overrides: Partial<ExecutableDesired> = {}): ExecutableDesired => ({
    peId,
    owner: `it/netholder/${peId}`,
    imageRef: "reseat-demo-workload:v1",
    imageId: demoImageId,
    env: { PORT: String(WORKLOAD_PORT), LISTEN_HOST: "0.0.0.0" },
    ports: [{ container: WORKLOAD_PORT, host: hostPort, hostIp: "127.0.0.1", protocol: "tcp" }],
    network: "bridge",
    handover: "standby",
    resources: {},
    volumeName,
    mountPath: "/state",
    stop: { signal: "SIGTERM", graceSeconds: 5 },
    readiness: { httpGet: { port: WORKLOAD_PORT, path: "/healthz" }, timeout: WAIT_MS },
    commitIntervalMs: 5000,
    store: { kind: "none" },
    ...overrides,
  });
  const prepared = (desired: ExecutableDesired, generation: number): Promise<string> =>
    backend.prepare(desired, { name: executableName(desired.peId, generation), generation, specHash: `hash-${generation}` });
  const inspect = async (id: string): Promise<ContainerInspect> => (await backend.docker.getContainer(id).inspect()) as unknown as ContainerInspect;
  const holderNetwork = async (desired: ExecutableDesired): Promise<{ ip: string; hostPort: string }> => {
    const holder = await inspect(networkHolderName(desired));
    return { ip: holder.NetworkSettings.IPAddress ?? "", hostPort: holder.NetworkSettings.Ports?.[`${WORKLOAD_PORT}/tcp`]?.[0]?.HostPort ?? "" };
  };
  const holdersOnEngine = async (peId: string): Promise<string[]> =>
    (await backend.docker.listContainers({ all: true, filters: { label: [`${LABELS.role}=${NETWORK_HOLDER_ROLE}`, `${LABELS.peId}=${peId}`] } })).map(
      (c) => c.Id,
    );
  const cleanupPe = async (peId: string, volume: string): Promise<void> => {
    const all = await backend.docker.listContainers({ all: true, filters: { label: [`${LABELS.peId}=${peId}`] } });
    // Executables first: a holder goes last, as retire does it.
    all.sort((a, b) => Number(a.Labels[LABELS.role] === NETWORK_HOLDER_ROLE) - Number(b.Labels[LABELS.role] === NETWORK_HOLDER_ROLE));
    for (const c of all) await backend.remove(c.Id);
    await backend.removeVolume(volume).catch(() => undefined);
  };

  beforeAll(async () => {
    hostPort = await freePort();
    demoImageId = await backend.ensureImage("reseat-demo-workload:v1");
    await cleanupPe(PE, VOLUME);
    await cleanupPe(PLAIN_PE, PLAIN_VOLUME);
    for (const [peId, name] of [
      [PE, VOLUME],
      [PLAIN_PE, PLAIN_VOLUME],
    ] as const) {
      await backend.claimVolume({ name, driver: "local", peId, owner: `it/netholder/${peId}` });
    }
  }, CASE_MS);

  afterAll(async () => {
    await cleanupPe(PE, VOLUME);
    await cleanupPe(PLAIN_PE, PLAIN_VOLUME);
    const test = await backend.docker.listContainers({ all: true, filters: { ancestor: [TEST_IMAGE] } }).catch(() => []);
    for (const c of test) await backend.remove(c.Id);
    // Only the tag this test built (untagged only, should the same image carry reseat's own tag too).
    await backend.docker
      .getImage(TEST_IMAGE)
      .remove()
      .catch(() => undefined);
  }, CASE_MS);

  it(
    "the holder image builds on the engine from reseat's bytes, and its program runs (PID 1 ignores SIGTERM until killed)",
    async () => {
      const imageId = await holders.ensureImage(TEST_IMAGE);
      const image = await backend.docker.getImage(TEST_IMAGE).inspect();
      expect(image.Id).toBe(imageId);
      expect(image.Config.Entrypoint).toEqual(["/pause"]);
      expect(image.Config.Labels?.[LABELS.managed]).toBe("true");
      expect(image.Architecture).toBe((await backend.docker.info()).Architecture === "aarch64" ? "arm64" : "amd64");
      const container = await backend.docker.createContainer({ Image: TEST_IMAGE, HostConfig: { NetworkMode: "none" } });
      try {
        await container.start();
        // Running the program: a stop's SIGTERM does nothing to it, the kill after the grace does (137).
        await container.stop({ t: 1 });
        const stopped = await container.inspect();
        expect(stopped.State.ExitCode).toBe(137);
        expect(stopped.State.Error).toBe("");
      } finally {
        await container.remove({ force: true });
      }
      // A second call finds it: no rebuild.
      expect(await holders.ensureImage(TEST_IMAGE)).toBe(imageId);
    },
    CASE_MS,
  );

  it(
    "keeps its container IP and host port across two replacements; a client gets each new generation on the same port",
    async () => {
      const desired = desiredFor(PE, VOLUME);
      const holderName = networkHolderName(desired);

      // Generation 1: the holder is made (not started) with the executable, and started with it.
      const g1 = await prepared(desired, 1);
      const holderPrepared = await inspect(holderName);
      expect(holderPrepared.State.Running).toBe(false);
      const g1Config = await inspect(g1);
      // The engine records the holder by id: the executable can only ever join this very holder.
      expect(g1Config.HostConfig.NetworkMode).toBe(`container:${holderPrepared.Id}`);
      await backend.start(g1);
      await backend.waitReady(g1, desired);
      const first = await holderNetwork(desired);
      expect(first.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(first.hostPort).toBe(String(hostPort));
      expect((await healthz(hostPort)).generation).toBe(1);
      // The holder is no executable; the executable says it runs in it.
      const listed = await backend.listExecutables(PE);
      expect(listed.map((e) => e.id)).toEqual([g1]);
      expect(listed[0]?.networkHolder).toBe(holderName);
      expect((await backend.inspectExecutable(g1))?.networkHolder).toBe(holderName);

      let previous = g1;
      for (const generation of [2, 3]) {
        const next = desiredFor(PE, VOLUME, { command: ["node", "-e", WAIT_THEN_SERVE], env: { ...desired.env, WORKLOAD_VERSION: `g${generation}` } });
        // A standby may start beside the one that serves: it publishes nothing itself.
        expect(backend.standbyBlockedBy(await backend.inspectExecutable(previous).then((e) => e!), next)).toBeUndefined();
        const id = await prepared(next, generation);
        await backend.start(id);
        await poll({ what: `generation ${generation} to wait beside generation ${generation - 1}`, deadlineMs: WAIT_MS, pauseMs: 20 }, async () =>
          /standby: parked/.test(await backend.logsTail(id, 20)) ? true : undefined,
        );
        // Two executables run in one network: the old one still answers on the port.
        expect((await inspect(previous)).State.Running).toBe(true);
        expect((await inspect(id)).State.Running).toBe(true);
        expect((await healthz(hostPort)).generation).toBe(generation - 1);
        // The hand-over: the old one exits, the new one binds the port in the same namespace.
        await backend.stop(previous, desired.stop);
        await backend.waitReady(id, next);
        await backend.remove(previous);
        const answer = await healthz(hostPort);
        expect(answer.generation).toBe(generation);
        expect(await holderNetwork(desired)).toEqual(first);
        previous = id;
      }
      expect((await backend.listExecutables(PE)).map((e) => e.name)).toEqual([executableName(PE, 3)]);
      expect(await holdersOnEngine(PE)).toHaveLength(1);

      // The PE's delete (retire: the provider's delete, pulumi destroy) leaves no holder behind.
      const retired = await retire(backend, desired, `it-netholder-${process.pid}`);
      expect(retired).toEqual([executableName(PE, 3)]);
      expect(await backend.listExecutables(PE)).toEqual([]);
      expect(await holdersOnEngine(PE)).toEqual([]);
    },
    CASE_MS,
  );

  it(
    "a bridge PE moving from staged to standby and back: a staged replacement each way, on the same host port; other specs unchanged",
    async () => {
      const plainPort = await freePort();
      const ports: ExecutableDesired["ports"] = [{ container: WORKLOAD_PORT, host: plainPort, hostIp: "127.0.0.1", protocol: "tcp" }];
      const staged = desiredFor(PLAIN_PE, PLAIN_VOLUME, { handover: undefined, ports });
      const standby = desiredFor(PLAIN_PE, PLAIN_VOLUME, { ports });

      // Staged, as ever: the executable publishes its ports itself; no holder.
      const g1 = await prepared(staged, 1);
      const c1 = await inspect(g1);
      expect(c1.HostConfig.NetworkMode).toBe("bridge");
      expect(c1.Config.Labels[LABELS.role]).toBe("executable");
      expect(c1.Config.Labels["io.reseat.network-holder"]).toBeUndefined();
      await backend.start(g1);
      await backend.waitReady(g1, staged);
      expect((await healthz(plainPort)).generation).toBe(1);
      expect(await holdersOnEngine(PLAIN_PE)).toEqual([]);
      const observed = (await backend.inspectExecutable(g1))!;
      expect(observed.networkHolder).toBeUndefined();

      // Upgraded to standby: the old one keeps the ports, so this one replacement is staged (the routine
      // asks standbyBlockedBy); the new executable is made in the holder, started once the old stopped.
      expect(backend.standbyBlockedBy(observed, standby)).toMatch(/publishes its ports itself/);
      expect(backend.standbyBlockedBy(observed, staged)).toBeUndefined();
      const g2 = await prepared(standby, 2);
      await backend.stop(g1, staged.stop);
      await backend.start(g2);
      await backend.waitReady(g2, standby);
      await backend.remove(g1);
      expect((await healthz(plainPort)).generation).toBe(2);
      expect((await backend.inspectExecutable(g2))?.networkHolder).toBe(networkHolderName(standby));
      expect(await holdersOnEngine(PLAIN_PE)).toHaveLength(1);

      // Back to staged: the idle holder gives the ports back when the new executable starts.
      const g3 = await prepared(staged, 3);
      await backend.stop(g2, standby.stop);
      await backend.start(g3);
      await backend.waitReady(g3, staged);
      await backend.remove(g2);
      expect((await healthz(plainPort)).generation).toBe(3);
      expect(await holdersOnEngine(PLAIN_PE)).toEqual([]);
      await retire(backend, staged, `it-netholder-${process.pid}`);
      expect(await backend.listExecutables(PLAIN_PE)).toEqual([]);
    },
    CASE_MS,
  );
});

describe("a standby-handover bridge PE through pulumi up and destroy (Docker, the session workload)", () => {
  let project: Project;
  let hostPort: number;
  const spec = (image: string): Record<string, unknown> =>
    sessionSpec(STACK_PE, WORKLOAD_PORT, {
      image,
      network: "bridge",
      handover: "standby",
      ports: [{ container: WORKLOAD_PORT, host: hostPort, hostIp: "127.0.0.1" }],
      env: { PORT: String(WORKLOAD_PORT), LISTEN_HOST: "0.0.0.0" },
    });
  const holderIp = async (): Promise<string> => {
    const holders = (await containersOf(STACK_PE)).filter((c) => c.Labels[LABELS.role] === NETWORK_HOLDER_ROLE);
    expect(holders).toHaveLength(1);
    const holder = (await new DockerBackend().docker.getContainer(holders[0]!.Id).inspect()) as unknown as ContainerInspect;
    expect(holder.NetworkSettings.Ports?.[`${WORKLOAD_PORT}/tcp`]?.[0]?.HostPort).toBe(String(hostPort));
    return holder.NetworkSettings.IPAddress ?? "";
  };

  beforeAll(async () => {
    hostPort = await freePort();
    await cleanup([STACK_PE]);
    project = makeProject("netholder", [spec("reseat-session-workload:v1")]);
  });
  afterAll(async () => {
    await cleanup([STACK_PE]);
  });

  it(
    "two standby replacements by up and a re-creation after kill -9 keep the holder's IP and host port; the client gets each new generation; destroy leaves no holder",
    async () => {
      const first = peOutputs(await mustSucceed(project, "up"), STACK_PE);
      expect(first.generation).toBe(1);
      expect((await healthz(hostPort)).generation).toBe(1);
      const ip = await holderIp();
      expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);

      let generation = 1;
      let previous = first.executableId;
      for (const image of ["reseat-session-workload:v2", "reseat-session-workload:v1"]) {
        setSpecs(project, [spec(image)]);
        const liveness = await recordLiveness(STACK_PE);
        const next = peOutputs(await mustSucceed(project, "up"), STACK_PE);
        const { events } = await liveness.stop();
        generation += 1;
        expect(next.generation).toBe(generation);
        expect((await healthz(hostPort)).generation).toBe(generation);
        expect(await holderIp()).toBe(ip);
        // A standby: the new executable started (in the old one's network, its host port taken) before the old one died.
        const startNew = events.find((e) => e.action === "start" && e.id === next.executableId);
        const dieOld = events.find((e) => e.action === "die" && e.id === previous);
        expect(startNew, JSON.stringify(events)).toBeDefined();
        expect(dieOld, JSON.stringify(events)).toBeDefined();
        expect(startNew!.timeNano).toBeLessThan(dieOld!.timeNano);
        // One executable runs (the holder is none), in the holder.
        const executables = (await containersOf(STACK_PE, false)).filter((c) => c.Labels[LABELS.role] === "executable");
        expect(executables.map((c) => c.Id)).toEqual([next.executableId]);
        previous = next.executableId;
      }

      // The executable dies (kill -9): its re-creation (refresh + up, as the failure controller's routine)
      // starts the next generation in the same holder, on the same IP and host port.
      await new DockerBackend().docker.getContainer(previous).kill({ signal: "SIGKILL" });
      await mustSucceed(project, "refresh");
      const healed = peOutputs(await mustSucceed(project, "up"), STACK_PE);
      expect(healed.generation).toBe(generation + 1);
      expect((await healthz(hostPort)).generation).toBe(generation + 1);
      expect(await holderIp()).toBe(ip);

      await mustSucceed(project, "destroy");
      expect(await containersOf(STACK_PE)).toEqual([]);
      expect(await volumeExists(first.volumeName)).toBe(true);
    },
    CASE_MS,
  );
});
