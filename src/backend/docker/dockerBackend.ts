// Docker Engine implementation of the backend seam. Every call reads the engine fresh: the provider
// and the controller must never act on a stale picture of which executable is live.
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import {
  Backend,
  ExecutableDesired,
  LABELS,
  PeLock,
  STORE_MOUNT,
  desiredFromLabel,
  desiredLabel,
  storeEnv,
  ObservedExecutable,
  VolumeInfo,
  VolumeMeta,
  generationFromName,
} from "../backend";
import { DockerEngine, EngineAddress, EngineError, engineAddressFromEnv } from "./engine";
import { packTar, unpackTar } from "./tar";

interface ContainerSummary {
  Id: string;
  Names: string[];
  Labels: Record<string, string>;
  State: string;
  Mounts?: { Type: string; Name?: string; Destination: string }[];
}

interface ContainerInspect {
  Id: string;
  Name: string;
  RestartCount: number;
  Config: { Labels: Record<string, string> };
  State: { Status: string; Running: boolean; ExitCode: number; StartedAt: string; OOMKilled: boolean };
  NetworkSettings: {
    IPAddress?: string;
    Ports?: Record<string, { HostIp: string; HostPort: string }[] | null>;
    Networks?: Record<string, { IPAddress: string }>;
  };
  HostConfig: { NetworkMode: string };
}

export const META_PATH = ".reseat/meta.json";

export class DockerBackend implements Backend {
  readonly engine: DockerEngine;

  constructor(private readonly address: EngineAddress = engineAddressFromEnv()) {
    this.engine = new DockerEngine(address);
  }

  async hostName(): Promise<string> {
    const info = await this.engine.json<{ Name: string }>("GET", "/info");
    return info.Name;
  }

  async ensureImage(ref: string): Promise<string> {
    const present = await this.engine.jsonOrUndefined<{ Id: string }>("GET", `/images/${encodeURIComponent(ref)}/json`);
    if (present) return present.Id;
    try {
      // Pull answers 200 with a progress stream even on failure: errors arrive as {"error": …} lines.
      const { body } = await this.engine.request("POST", "/images/create", { query: { fromImage: ref } });
      const failure = body
        .toString("utf8")
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { error?: string })
        .find((event) => event.error);
      if (failure?.error) throw new Error(failure.error);
    } catch (error) {
      throw new Error(`image "${ref}" is not on the engine and could not be pulled: ${(error as Error).message}`);
    }
    const pulled = await this.engine.json<{ Id: string }>("GET", `/images/${encodeURIComponent(ref)}/json`);
    return pulled.Id;
  }

  async listExecutables(peId?: string): Promise<ObservedExecutable[]> {
    const label = [`${LABELS.role}=executable`];
    if (peId) label.push(`${LABELS.peId}=${peId}`);
    const containers = await this.engine.json<ContainerSummary[]>("GET", "/containers/json", {
      query: { all: true, filters: JSON.stringify({ label }) },
    });
    return containers.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? "").replace(/^\//, ""),
      peId: c.Labels[LABELS.peId] ?? "",
      generation: generationFromName(c.Names[0] ?? ""),
      specHash: c.Labels[LABELS.specHash] ?? "",
      volumeName: c.Labels[LABELS.volume] ?? "",
      state: c.State,
      running: c.State === "running" || c.State === "restarting" || c.State === "paused",
    }));
  }

  async inspectExecutable(id: string): Promise<ObservedExecutable | undefined> {
    const c = await this.engine.jsonOrUndefined<ContainerInspect>("GET", `/containers/${id}/json`);
    if (!c) return undefined;
    return {
      id: c.Id,
      name: c.Name.replace(/^\//, ""),
      peId: c.Config.Labels[LABELS.peId] ?? "",
      generation: generationFromName(c.Name),
      specHash: c.Config.Labels[LABELS.specHash] ?? "",
      volumeName: c.Config.Labels[LABELS.volume] ?? "",
      state: c.State.Status,
      running: c.State.Running,
      startedAt: c.State.StartedAt,
      exitCode: c.State.ExitCode,
      restartCount: c.RestartCount,
    };
  }

  /** The desired spec an executable was created with (its label), for the controller. */
  async desiredOf(executableId: string): Promise<ExecutableDesired | undefined> {
    const c = await this.engine.jsonOrUndefined<ContainerInspect>("GET", `/containers/${executableId}/json`);
    return desiredFromLabel(c?.Config.Labels[LABELS.desired]);
  }

  /** Reads a file of a state volume by the volume's name (local engines only), or undefined. */
  async readVolumeFileByName(volumeName: string, relativePath: string): Promise<string | undefined> {
    if (this.address.host) return undefined;
    const volume = await this.engine.jsonOrUndefined<{ Driver: string; Mountpoint: string }>("GET", `/volumes/${encodeURIComponent(volumeName)}`);
    if (!volume || volume.Driver !== "local") return undefined;
    try {
      return fs.readFileSync(path.join(volume.Mountpoint, relativePath), "utf8");
    } catch {
      return undefined;
    }
  }

  async listStateVolumes(): Promise<VolumeInfo[]> {
    const { Volumes } = await this.engine.json<{ Volumes: { Name: string; Driver: string; Labels: Record<string, string> | null; CreatedAt?: string }[] | null }>(
      "GET",
      "/volumes",
      { query: { filters: JSON.stringify({ label: [`${LABELS.role}=state-volume`] }) } },
    );
    return (Volumes ?? []).map((v) => ({ name: v.Name, driver: v.Driver, peId: v.Labels?.[LABELS.peId], createdAt: v.CreatedAt }));
  }

  async runningOnVolume(volumeName: string): Promise<{ id: string; name: string; peId?: string }[]> {
    const containers = await this.engine.json<ContainerSummary[]>("GET", "/containers/json", {
      query: { filters: JSON.stringify({ volume: [volumeName] }) },
    });
    return containers.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? "").replace(/^\//, ""),
      peId: c.Labels[LABELS.peId],
    }));
  }

  async createExecutable(desired: ExecutableDesired, specHash: string): Promise<string> {
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
    for (const p of desired.ports) {
      const key = `${p.container}/${p.protocol}`;
      exposed[key] = {};
      bindings[key] = [{ HostIp: p.hostIp, HostPort: p.host ? String(p.host) : "" }];
    }
    const mounts: { Type: string; Source: string; Target: string }[] = [{ Type: "volume", Source: desired.volumeName, Target: desired.mountPath }];
    const store = desired.store;
    if (store.kind === "directory") {
      mounts.push(store.hostPath ? { Type: "bind", Source: store.hostPath, Target: STORE_MOUNT } : { Type: "volume", Source: store.volume ?? "reseat-store", Target: STORE_MOUNT });
    }
    const reseatStore = storeEnv(store, desired.mountPath);
    const env: Record<string, string> = {
      ...desired.env,
      RESEAT_PE_ID: desired.peId,
      RESEAT_STATE_DIR: desired.mountPath,
      RESEAT_COMMIT_INTERVAL_MS: String(desired.commitIntervalMs),
      ...(reseatStore ? { RESEAT_STORE: reseatStore } : {}),
    };
    const body = {
      Image: desired.imageId,
      Cmd: desired.command,
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      Labels: {
        [LABELS.managed]: "true",
        [LABELS.role]: "executable",
        [LABELS.peId]: desired.peId,
        [LABELS.specHash]: specHash,
        [LABELS.volume]: desired.volumeName,
        [LABELS.desired]: desiredLabel(desired),
        "io.reseat.image": desired.imageRef,
      },
      StopSignal: desired.stop.signal,
      StopTimeout: desired.stop.graceSeconds,
      ExposedPorts: exposed,
      HostConfig: {
        Mounts: mounts,
        PortBindings: desired.network === "bridge" ? bindings : undefined,
        NetworkMode: desired.network === "bridge" ? "bridge" : desired.network,
        Memory: desired.resources.memoryMiB ? desired.resources.memoryMiB * 1024 * 1024 : undefined,
        NanoCpus: desired.resources.cpus ? Math.round(desired.resources.cpus * 1e9) : undefined,
        // reseat is the restart policy: the engine must not restart an executable behind its back.
        RestartPolicy: { Name: "no" },
      },
    };
    // A provisional name; the generation is known only after reading the volume's meta.
    const name = `reseat-${desired.peId}-next-${Date.now().toString(36)}`;
    const created = await this.engine.json<{ Id: string }>("POST", "/containers/create", { query: { name }, body });
    return created.Id;
  }

  async readVolumeFile(executableId: string, mountPath: string, relativePath: string): Promise<string | undefined> {
    return this.readFile(executableId, `${mountPath}/${relativePath}`);
  }

  /** Reads a small file at a path inside the executable (on one of its mounts), or undefined. */
  async readFile(executableId: string, containerPath: string): Promise<string | undefined> {
    const hostPath = await this.hostPathOf(executableId, containerPath);
    if (hostPath) {
      try {
        return fs.readFileSync(hostPath, "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw error;
      }
    }
    try {
      const { body } = await this.engine.request("GET", `/containers/${executableId}/archive`, { query: { path: containerPath } });
      const first = unpackTar(body).values().next();
      return first.done ? undefined : first.value.toString("utf8");
    } catch (error) {
      if (error instanceof EngineError && error.statusCode === 404) return undefined;
      throw error;
    }
  }

  async readVolumeMeta(executableId: string, mountPath: string): Promise<VolumeMeta | undefined> {
    const text = await this.readVolumeFile(executableId, mountPath, META_PATH);
    if (!text) return undefined;
    try {
      return JSON.parse(text) as VolumeMeta;
    } catch {
      throw new Error(`the state volume's ${META_PATH} is not valid JSON; refusing to guess the generation`);
    }
  }

  async writeVolumeFiles(executableId: string, mountPath: string, files: Record<string, string>, mode = 0o644): Promise<void> {
    const hostDir = await this.hostPathOf(executableId, mountPath);
    if (hostDir) {
      for (const [relativePath, text] of Object.entries(files)) writeDurably(path.join(hostDir, relativePath), text, mode);
      return;
    }
    const dirs = new Set<string>();
    for (const file of Object.keys(files)) {
      const parts = file.split("/").slice(0, -1);
      for (let i = 1; i <= parts.length; i++) dirs.add(`${parts.slice(0, i).join("/")}/`);
    }
    const archive = packTar([
      ...[...dirs].map((name) => ({ name })),
      ...Object.entries(files).map(([name, text]) => ({ name, content: Buffer.from(text), mode })),
    ]);
    await this.engine.request("PUT", `/containers/${executableId}/archive`, {
      query: { path: mountPath },
      rawBody: archive,
      contentType: "application/x-tar",
    });
  }

  /**
   * Where a path inside the executable lives on this host, when the engine is local, the path is on a
   * bind mount or a `local`-driver volume, and this process may write there (root next to the engine).
   * Reading and writing reseat's small files directly costs ~1 ms; through the Engine's archive
   * endpoint ~45 ms a call (the engine mounts the container's filesystem each time), and those calls
   * sit inside the replacement gap. Anything else falls back to the archive endpoint.
   */
  private async hostPathOf(executableId: string, containerPath: string): Promise<string | undefined> {
    if (process.env.RESEAT_VOLUME_ACCESS === "engine" || this.address.host) return undefined;
    const c = await this.engine.jsonOrUndefined<{ Mounts: { Type: string; Source: string; Destination: string; Driver?: string }[] }>(
      "GET",
      `/containers/${executableId}/json`,
    );
    const mount = c?.Mounts.filter((m) => containerPath === m.Destination || containerPath.startsWith(`${m.Destination}/`)).sort(
      (a, b) => b.Destination.length - a.Destination.length,
    )[0];
    if (!mount || !mount.Source || (mount.Type === "volume" && mount.Driver !== "local")) return undefined;
    try {
      fs.accessSync(mount.Source, fs.constants.W_OK);
    } catch {
      return undefined;
    }
    return path.join(mount.Source, containerPath.slice(mount.Destination.length));
  }

  async nameExecutable(executableId: string, name: string): Promise<void> {
    await this.engine.request("POST", `/containers/${executableId}/rename`, { query: { name } });
  }

  async start(executableId: string): Promise<void> {
    await this.engine.request("POST", `/containers/${executableId}/start`);
  }

  async waitReady(executableId: string, desired: ExecutableDesired): Promise<void> {
    const timeoutMs = desired.readiness?.timeout ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      const c = await this.engine.json<ContainerInspect>("GET", `/containers/${executableId}/json`);
      if (!c.State.Running) {
        const tail = await this.logsTail(executableId);
        throw new Error(
          `executable ${c.Name.replace(/^\//, "")} exited with code ${c.State.ExitCode}${c.State.OOMKilled ? " (out of memory)" : ""} before it was ready. Last log lines:\n${tail}`,
        );
      }
      if (!desired.readiness) return;
      if (await this.probe(c, desired)) return;
      if (Date.now() > deadline) {
        throw new Error(`executable ${c.Name.replace(/^\//, "")} was not ready within ${timeoutMs} ms. Last log lines:\n${await this.logsTail(executableId)}`);
      }
      // Tight polling at first: most workloads come up within a second, and every ms here is gap.
      await sleep(attempt < 200 ? 10 : 100);
    }
  }

  private async probe(c: ContainerInspect, desired: ExecutableDesired): Promise<boolean> {
    const readiness = desired.readiness;
    if (readiness?.logLine) {
      return new RegExp(readiness.logLine, "m").test(await this.logsTail(c.Id, 200));
    }
    if (readiness?.httpGet) {
      const target = httpTarget(c, desired, readiness.httpGet.port);
      if (!target) return false;
      return httpOk(target.host, target.port, readiness.httpGet.path);
    }
    return true;
  }

  async logsTail(executableId: string, lines = 20): Promise<string> {
    try {
      const { body } = await this.engine.request("GET", `/containers/${executableId}/logs`, {
        query: { stdout: true, stderr: true, tail: lines },
      });
      return demultiplex(body);
    } catch {
      return "(logs unavailable)";
    }
  }

  async stopAndRemove(executableId: string, stop: { graceSeconds: number }): Promise<void> {
    await this.stop(executableId, stop);
    await this.remove(executableId);
  }

  async stop(executableId: string, stop: { graceSeconds: number }): Promise<void> {
    try {
      await this.engine.request("POST", `/containers/${executableId}/stop`, {
        query: { t: stop.graceSeconds },
        timeoutMs: (stop.graceSeconds + 30) * 1000,
      });
    } catch (error) {
      // 304: already stopped; 404: already gone. Both are the state we want.
      if (!(error instanceof EngineError && (error.statusCode === 304 || error.statusCode === 404))) throw error;
    }
  }

  async remove(executableId: string): Promise<void> {
    try {
      // v=false: anonymous volumes only, and never the named state volume; force covers a racing restart.
      await this.engine.request("DELETE", `/containers/${executableId}`, { query: { v: false, force: true } });
    } catch (error) {
      if (!(error instanceof EngineError && error.statusCode === 404)) throw error;
    }
  }

  /**
   * The lock is a container that never runs, named reseat-lock-<peId>: the engine's unique names
   * make taking it atomic for every process that talks to this engine, on any host. Its labels say
   * who holds it and until when; the holder "host:pid:…" lets a process on the same host break the
   * lock of a holder that died (e.g. a killed `pulumi up`) at once instead of waiting out the lease.
   */
  async acquireLock(peId: string, holder: string, options: { imageId: string; leaseMs: number; waitMs: number }): Promise<PeLock> {
    const name = `reseat-lock-${peId}`;
    const deadline = Date.now() + options.waitMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const created = await this.engine.json<{ Id: string }>("POST", "/containers/create", {
          query: { name },
          body: {
            Image: options.imageId,
            Cmd: ["reseat-lock"],
            Labels: {
              [LABELS.managed]: "true",
              [LABELS.role]: "lock",
              [LABELS.peId]: peId,
              [LABELS.lockHolder]: holder,
              [LABELS.lockExpires]: String(Date.now() + options.leaseMs),
            },
            HostConfig: { NetworkMode: "none" },
          },
        });
        return { peId, holder, token: created.Id };
      } catch (error) {
        if (!(error instanceof EngineError && error.statusCode === 409)) throw error;
      }
      const current = await this.engine.jsonOrUndefined<{ Id: string; Config: { Labels: Record<string, string> } }>("GET", `/containers/${name}/json`);
      if (!current) continue; // released meanwhile
      const currentHolder = current.Config.Labels[LABELS.lockHolder] ?? "";
      const expires = Number(current.Config.Labels[LABELS.lockExpires] ?? 0);
      if (Date.now() > expires || holderIsGone(currentHolder)) {
        await this.remove(current.Id);
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(`reseat: PE "${peId}" is being changed by ${currentHolder} (lock held until ${new Date(expires).toISOString()}); try again later`);
      }
      await sleep(Math.min(20 * 2 ** attempt, 250));
    }
  }

  async releaseLock(lock: PeLock): Promise<void> {
    await this.remove(lock.token);
  }

  async inspectVolume(name: string): Promise<VolumeInfo | undefined> {
    const v = await this.engine.jsonOrUndefined<{ Name: string; Driver: string; Labels: Record<string, string> | null; CreatedAt?: string }>(
      "GET",
      `/volumes/${encodeURIComponent(name)}`,
    );
    if (!v) return undefined;
    return { name: v.Name, driver: v.Driver, peId: v.Labels?.[LABELS.peId], createdAt: v.CreatedAt };
  }

  async createVolume(name: string, driver: string, peId: string): Promise<VolumeInfo> {
    await this.engine.json("POST", "/volumes/create", {
      body: { Name: name, Driver: driver, Labels: { [LABELS.managed]: "true", [LABELS.role]: "state-volume", [LABELS.peId]: peId } },
    });
    const created = await this.inspectVolume(name);
    if (!created) throw new Error(`volume ${name} vanished right after it was created`);
    return created;
  }

  async removeVolume(name: string): Promise<void> {
    try {
      await this.engine.request("DELETE", `/volumes/${encodeURIComponent(name)}`);
    } catch (error) {
      if (error instanceof EngineError && error.statusCode === 404) return;
      throw error;
    }
  }
}

/** temp + fsync + rename + fsync(dir): a reader sees the old file or the new one, never a torn one. */
function writeDurably(file: string, text: string, mode: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.tmp-${process.pid}`;
  fs.rmSync(temp, { force: true });
  const fd = fs.openSync(temp, "w", mode);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, file);
  const dir = fs.openSync(path.dirname(file), "r");
  try {
    fs.fsyncSync(dir);
  } finally {
    fs.closeSync(dir);
  }
}

function httpTarget(c: ContainerInspect, desired: ExecutableDesired, port: number): { host: string; port: number } | undefined {
  if (desired.network === "host") return { host: "127.0.0.1", port };
  const published = c.NetworkSettings.Ports?.[`${port}/tcp`]?.[0];
  if (published?.HostPort) {
    const host = published.HostIp && published.HostIp !== "0.0.0.0" ? published.HostIp : "127.0.0.1";
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

/** Docker multiplexes stdout/stderr of non-TTY containers as frames with 8-byte headers. */
export function demultiplex(buffer: Buffer): string {
  const parts: string[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length && (buffer[offset] === 1 || buffer[offset] === 2 || buffer[offset] === 0)) {
    const size = buffer.readUInt32BE(offset + 4);
    parts.push(buffer.subarray(offset + 8, offset + 8 + size).toString("utf8"));
    offset += 8 + size;
  }
  return offset === 0 ? buffer.toString("utf8") : parts.join("");
}

/** A holder on this host whose process is gone cannot be holding the lock any more. */
function holderIsGone(holder: string): boolean {
  const [host, pid] = holder.split(":");
  if (host !== os.hostname() || !pid || !/^\d+$/.test(pid)) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/** "host:pid:role" — who holds a PE's lock, readable by people and checkable by holderIsGone. */
export function lockHolder(role: string): string {
  return `${os.hostname()}:${process.pid}:${role}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
