// Executables: containers listed and inspected by the PE's labels, prepared (created, not started)
// with the contract's workload environment, started, waited for, stopped and removed.
import * as http from "node:http";
import Dockerode from "dockerode";
import {
  ExecutableDesired,
  LABELS,
  ObservedExecutable,
  STORE_MOUNT,
  assertSecretEnvKnown,
  desiredFromLabel,
  desiredLabel,
  generationFromName,
  storeEnv,
  withSecretEnv,
  workloadEnv,
} from "../backend";
import { poll } from "../../util/retry";
import { ContainerInspect, ContainerSummary, DockerEngine } from "./engine";
import { hasStatus } from "./engineCall";
import { Demuxer, logText } from "./logs";
import { DockerNetworkHolders, NETWORK_HOLDER_LABEL, publishedPorts, usesNetworkHolder } from "./networkHolder";

export class DockerExecutables extends DockerEngine {
  /** The network holders of standby-handover bridge PEs (see networkHolder.ts). */
  readonly holders = new DockerNetworkHolders(this.docker, this.connection, this.options);
  /**
   * The holder (or none: null) of each executable this process prepared, so that starting it, in the
   * gap, costs no inspect; one prepared elsewhere is inspected.
   */
  private readonly holderOf = new Map<string, string | null>();

  async listExecutables(peId?: string): Promise<ObservedExecutable[]> {
    const label = [`${LABELS.role}=executable`];
    if (peId) label.push(`${LABELS.peId}=${peId}`);
    const containers = (await this.call("list containers", (abortSignal) =>
      this.docker.listContainers({ all: true, filters: { label }, abortSignal }),
    )) as unknown as ContainerSummary[];
    return containers.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? "").replace(/^\//, ""),
      peId: c.Labels[LABELS.peId] ?? "",
      owner: c.Labels[LABELS.owner],
      generation: generationFromName(c.Names[0] ?? ""),
      specHash: c.Labels[LABELS.specHash] ?? "",
      volumeName: c.Labels[LABELS.volume] ?? "",
      state: c.State,
      running: c.State === "running" || c.State === "restarting" || c.State === "paused",
      ...(c.Labels[NETWORK_HOLDER_LABEL] ? { networkHolder: c.Labels[NETWORK_HOLDER_LABEL] } : {}),
    }));
  }

  async inspectExecutable(id: string): Promise<ObservedExecutable | undefined> {
    const c = await this.inspectContainer(id);
    if (!c) return undefined;
    return {
      id: c.Id,
      name: c.Name.replace(/^\//, ""),
      peId: c.Config.Labels[LABELS.peId] ?? "",
      owner: c.Config.Labels[LABELS.owner],
      generation: generationFromName(c.Name),
      specHash: c.Config.Labels[LABELS.specHash] ?? "",
      volumeName: c.Config.Labels[LABELS.volume] ?? "",
      state: c.State.Status,
      running: c.State.Running,
      startedAt: c.State.StartedAt,
      exitCode: c.State.ExitCode,
      restartCount: c.RestartCount,
      ...(c.Config.Labels[NETWORK_HOLDER_LABEL] ? { networkHolder: c.Config.Labels[NETWORK_HOLDER_LABEL] } : {}),
    };
  }

  /**
   * The desired spec an executable was created with (its label), for the controller and a revert. The
   * label blanks secret env values; the container's own environment has them (Docker keeps no other
   * place for them), and the container is still there whenever its spec is read back.
   */
  async desiredOf(executableId: string): Promise<ExecutableDesired | undefined> {
    const c = await this.inspectContainer(executableId);
    const desired = desiredFromLabel(c?.Config.Labels[LABELS.desired]);
    return desired && withSecretEnv(desired, (name) => envValue(c?.Config.Env, name));
  }

  async prepare(desired: ExecutableDesired, identity: { name: string; generation: number; specHash: string }): Promise<string> {
    const { exposed, bindings } = publishedPorts(desired);
    // A standby-handover bridge PE: the executable joins the PE's network holder, which publishes the
    // ports for every generation (an executable in a container's network may publish none itself).
    const holder = usesNetworkHolder(desired) ? await this.holders.ensureCreated(desired) : undefined;
    const mounts: { Type: "volume" | "bind"; Source: string; Target: string }[] = [{ Type: "volume", Source: desired.volumeName, Target: desired.mountPath }];
    const store = desired.store;
    if (store.kind === "directory") {
      mounts.push(
        store.hostPath
          ? { Type: "bind", Source: store.hostPath, Target: STORE_MOUNT }
          : { Type: "volume", Source: store.volume ?? "reseat-store", Target: STORE_MOUNT },
      );
    }
    assertSecretEnvKnown(desired, identity.name);
    const reseatStore = storeEnv(store, desired.mountPath);
    const env = workloadEnv(desired, identity.generation, reseatStore);
    const options: Dockerode.ContainerCreateOptions = {
      name: identity.name,
      Image: desired.imageId,
      Cmd: desired.command,
      ...(desired.user ? { User: `${desired.user.uid}:${desired.user.gid}` } : {}),
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      Labels: {
        [LABELS.managed]: "true",
        [LABELS.role]: "executable",
        [LABELS.peId]: desired.peId,
        [LABELS.specHash]: identity.specHash,
        [LABELS.generation]: String(identity.generation),
        [LABELS.volume]: desired.volumeName,
        ...(desired.owner ? { [LABELS.owner]: desired.owner } : {}),
        ...(holder ? { [NETWORK_HOLDER_LABEL]: holder } : {}),
        [LABELS.desired]: desiredLabel(withoutCredentials(desired)),
        "io.reseat.image": desired.imageRef,
      },
      StopSignal: desired.stop.signal,
      StopTimeout: desired.stop.graceSeconds,
      ExposedPorts: holder ? undefined : exposed,
      HostConfig: {
        Mounts: mounts,
        PortBindings: desired.network === "bridge" && !holder ? bindings : undefined,
        NetworkMode: holder ? `container:${holder}` : desired.network === "bridge" ? "bridge" : desired.network,
        Memory: desired.resources.memoryMiB ? desired.resources.memoryMiB * 1024 * 1024 : undefined,
        NanoCpus: desired.resources.cpus ? Math.round(desired.resources.cpus * 1e9) : undefined,
        // reseat is the restart policy: the engine must not restart an executable behind its back.
        RestartPolicy: { Name: "no" },
      },
    };
    const created = await this.call(`create container ${identity.name}`, (abortSignal) =>
      this.docker.createContainer({ ...options, abortSignal } as Dockerode.ContainerCreateOptions),
    );
    this.holderOf.set(created.id, holder ?? null);
    return created.id;
  }

  async start(executableId: string): Promise<void> {
    let holder = this.holderOf.get(executableId);
    this.holderOf.delete(executableId); // started once: the map stays as small as what is prepared
    if (holder === undefined) holder = (await this.inspectContainer(executableId))?.Config.Labels[NETWORK_HOLDER_LABEL] ?? null;
    // The holder publishes the ports from the first executable in it on; it stays up across generations.
    if (holder) await this.holders.ensureRunning(holder);
    const start = () => this.call(`start container ${executableId}`, (abortSignal) => this.docker.getContainer(executableId).start({ abortSignal }));
    try {
      await start();
    } catch (error) {
      // A PE that leaves standby hand-over (or is reverted to a spec without it) publishes its ports
      // itself again: its holder, idle now that the old executable stopped, still holds them. Only then,
      // off the usual path (no extra call in the gap), the idle holders go and the start is tried again.
      if (holder || !isPortTaken(error)) throw error;
      const peId = (await this.inspectContainer(executableId))?.Config.Labels[LABELS.peId];
      if (!peId || !(await this.holders.removeIdleHolders(peId)).length) throw error;
      await start();
    }
  }

  async waitReady(executableId: string, desired: ExecutableDesired): Promise<void> {
    const timeoutMs = desired.readiness?.timeout ?? 60_000;
    let name = executableId;
    await poll(
      {
        what: `executable ${executableId} to be ready`,
        deadlineMs: timeoutMs,
        // Tight polling at first: most workloads come up within a second, and every ms here is gap.
        pauseMs: (attempt) => (attempt < 200 ? 10 : 100),
        exhausted: async () => new Error(`executable ${name} was not ready within ${timeoutMs} ms. Last log lines:\n${await this.logsTail(executableId)}`),
      },
      async () => {
        const c = await this.inspectContainer(executableId);
        if (!c) throw new Error(`executable ${executableId} was removed before it was ready`);
        name = c.Name.replace(/^\//, "");
        if (!c.State.Running) {
          const tail = await this.logsTail(executableId);
          throw new Error(
            `executable ${name} exited with code ${c.State.ExitCode}${c.State.OOMKilled ? " (out of memory)" : ""} before it was ready. Last log lines:\n${tail}`,
          );
        }
        if (!desired.readiness || (await this.probe(c, desired))) return true;
        return undefined;
      },
    );
  }

  private async probe(c: ContainerInspect, desired: ExecutableDesired): Promise<boolean> {
    const readiness = desired.readiness;
    if (readiness?.logLine) {
      return new RegExp(readiness.logLine, "m").test(await this.logsTail(c.Id, 200, c.Config.Tty));
    }
    if (readiness?.httpGet) {
      // In a network holder the executable has no network settings of its own: the holder's are its.
      const holder = c.Config.Labels[NETWORK_HOLDER_LABEL];
      const network = holder ? await this.holders.inspectHolder(holder) : c;
      if (!network) return false;
      const target = httpTarget(network, desired, readiness.httpGet.port, this.connection.hostname ?? "127.0.0.1");
      if (!target) return false;
      return httpOk(target.host, target.port, readiness.httpGet.path);
    }
    return true;
  }

  /** `tty`: the container's Config.Tty when the caller has inspected it already (else looked up, as `docker logs` does). */
  async logsTail(executableId: string, lines = 20, tty?: boolean): Promise<string> {
    try {
      const isTty = tty ?? (await this.inspectContainer(executableId))?.Config.Tty ?? false;
      const body = await this.call(`logs of container ${executableId}`, (abortSignal) =>
        this.docker
          .getContainer(executableId)
          .logs({ stdout: true, stderr: true, tail: lines, follow: false, abortSignal } as Dockerode.ContainerLogsOptions & { follow: false }),
      );
      return await logText(this.docker.modem as Demuxer, body, isTty);
    } catch {
      return "(logs unavailable)";
    }
  }

  async stop(executableId: string, stop: { graceSeconds: number }): Promise<void> {
    try {
      await this.call(
        `stop container ${executableId}`,
        (abortSignal) => this.docker.getContainer(executableId).stop({ t: stop.graceSeconds, abortSignal }),
        (stop.graceSeconds + 30) * 1000,
      );
    } catch (error) {
      // 304: already stopped; 404: already gone. Both are the state we want.
      if (!hasStatus(error, 304, 404)) throw error;
    }
  }
}

/** The engine's answer when a host port to publish is taken (by another container or process). */
function isPortTaken(error: unknown): boolean {
  return /port is already allocated|address already in use/i.test((error as Error)?.message ?? "");
}

/** One variable of a container's environment (Config.Env: "NAME=value" lines). */
function envValue(env: string[] | null | undefined, name: string): string | undefined {
  const line = (env ?? []).find((entry) => entry.startsWith(`${name}=`));
  return line === undefined ? undefined : line.slice(name.length + 1);
}

/** The desired spec without anything secret about reaching the engine, for the container's label. */
function withoutCredentials(desired: ExecutableDesired): ExecutableDesired {
  const { engineCredentials: _secret, ...rest } = desired as ExecutableDesired & { engineCredentials?: unknown };
  return rest;
}

/**
 * Where to probe a container's port from here: the engine's machine (loopback for a local engine).
 * `c`: the container whose network it is (the executable's own, or its network holder).
 */
function httpTarget(c: ContainerInspect, desired: ExecutableDesired, port: number, engineHost: string): { host: string; port: number } | undefined {
  if (desired.network === "host") return { host: engineHost, port };
  const published = c.NetworkSettings.Ports?.[`${port}/tcp`]?.[0];
  if (published?.HostPort) {
    const host = published.HostIp && published.HostIp !== "0.0.0.0" ? published.HostIp : engineHost;
    return { host, port: Number(published.HostPort) };
  }
  const ip = c.NetworkSettings.IPAddress || Object.values(c.NetworkSettings.Networks ?? {})[0]?.IPAddress;
  return ip ? { host: ip, port } : undefined;
}

function httpOk(host: string, port: number, path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path, timeout: 1000 }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 400);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
  });
}
