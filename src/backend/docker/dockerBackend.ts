// Docker Engine implementation of the backend seam. Every call reads the engine fresh: the provider
// and the controller must never act on a stale picture of which executable is live.
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import {
  Backend,
  EngineIdentity,
  EventStream,
  ExecutableDesired,
  ExecutableEvent,
  LABELS,
  LeaseRecord,
  STORE_MOUNT,
  VolumeClaim,
  VolumeHolder,
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
/** A tiny image made on the engine itself (no registry, no PE image): lease and volume-access containers. */
export const HELPER_IMAGE = "reseat-helper:1";
const LEASE_FILE = "lease.json";

interface VolumeInspect {
  Name: string;
  Driver: string;
  Mountpoint: string;
  Labels: Record<string, string> | null;
  CreatedAt?: string;
}

export class DockerBackend implements Backend {
  readonly kind = "docker" as const;
  readonly engine: DockerEngine;
  private identityCache?: EngineIdentity;

  constructor(private readonly address: EngineAddress = engineAddressFromEnv()) {
    this.engine = new DockerEngine(address);
  }

  async identity(): Promise<EngineIdentity> {
    if (!this.identityCache) {
      const info = await this.engine.json<{ ID: string; Name: string }>("GET", "/info");
      this.identityCache = { kind: "docker", id: info.ID, name: info.Name, address: describeAddress(this.address) };
    }
    return this.identityCache;
  }

  async ping(): Promise<void> {
    await this.engine.request("GET", "/_ping", { timeoutMs: 5000 });
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
      owner: c.Labels[LABELS.owner],
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
      owner: c.Config.Labels[LABELS.owner],
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

  async listStateVolumes(): Promise<VolumeInfo[]> {
    const { Volumes } = await this.engine.json<{ Volumes: { Name: string; Driver: string; Labels: Record<string, string> | null; CreatedAt?: string }[] | null }>(
      "GET",
      "/volumes",
      { query: { filters: JSON.stringify({ label: [`${LABELS.role}=state-volume`] }) } },
    );
    return (Volumes ?? []).map((v) => volumeInfo({ ...v, Mountpoint: "" }));
  }

  async runningOnVolume(volumeName: string): Promise<VolumeHolder[]> {
    const containers = await this.engine.json<ContainerSummary[]>("GET", "/containers/json", {
      query: { filters: JSON.stringify({ volume: [volumeName] }) },
    });
    return containers.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? "").replace(/^\//, ""),
      peId: c.Labels[LABELS.peId],
    }));
  }

  async prepare(desired: ExecutableDesired, identity: { name: string; generation: number; specHash: string }): Promise<string> {
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
      // The fencing token, fixed at creation: a container restarted by hand later keeps its own
      // (older) generation and is refused by the state library once a newer one exists.
      RESEAT_GENERATION: String(identity.generation),
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
        [LABELS.specHash]: identity.specHash,
        [LABELS.generation]: String(identity.generation),
        [LABELS.volume]: desired.volumeName,
        ...(desired.owner ? { [LABELS.owner]: desired.owner } : {}),
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
    const created = await this.engine.json<{ Id: string }>("POST", "/containers/create", { query: { name: identity.name }, body });
    return created.Id;
  }

  async readGeneration(volumeName: string): Promise<VolumeMeta | undefined> {
    const text = await this.readVolumeFile(volumeName, META_PATH);
    if (!text) return undefined;
    try {
      return JSON.parse(text) as VolumeMeta;
    } catch {
      throw new Error(`the state volume's ${META_PATH} is not valid JSON; refusing to guess the generation`);
    }
  }

  async recordGeneration(meta: VolumeMeta): Promise<void> {
    await this.writeVolumeFiles(meta.volume, { [META_PATH]: JSON.stringify(meta) });
  }

  async readVolumeFile(source: string, relativePath: string): Promise<string | undefined> {
    const hostDir = await this.hostPathOf(source);
    if (hostDir) {
      try {
        return fs.readFileSync(path.join(hostDir, relativePath), "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw error;
      }
    }
    return this.withAccessor(source, async (id) => {
      try {
        const { body } = await this.engine.request("GET", `/containers/${id}/archive`, { query: { path: `/v/${relativePath}` } });
        const first = unpackTar(body).values().next();
        return first.done ? undefined : first.value.toString("utf8");
      } catch (error) {
        if (error instanceof EngineError && error.statusCode === 404) return undefined;
        throw error;
      }
    });
  }

  async writeVolumeFiles(source: string, files: Record<string, string>, options: { mode?: number } = {}): Promise<void> {
    const mode = options.mode ?? 0o644;
    const hostDir = await this.hostPathOf(source);
    if (hostDir) {
      for (const [relativePath, text] of Object.entries(files)) writeDurably(path.join(hostDir, relativePath), text, mode);
      return;
    }
    const dirs = new Set<string>();
    for (const file of Object.keys(files)) {
      const parts = file.split("/").slice(0, -1);
      for (let i = 1; i <= parts.length; i++) dirs.add(`${parts.slice(0, i).join("/")}/`);
    }
    const archive = packTar([...[...dirs].map((name) => ({ name })), ...Object.entries(files).map(([name, text]) => ({ name, content: Buffer.from(text), mode }))]);
    await this.withAccessor(source, (id) =>
      this.engine.request("PUT", `/containers/${id}/archive`, { query: { path: "/v" }, rawBody: archive, contentType: "application/x-tar" }),
    );
  }

  /**
   * Where a volume (or a bind source) lives on this host, when the engine is local, the volume uses
   * the `local` driver and this process may write there (root next to the engine). Reading and
   * writing reseat's small files directly costs ~1 ms; through the Engine's archive endpoint ~45 ms
   * a call, and those calls sit inside the replacement gap.
   */
  private async hostPathOf(source: string): Promise<string | undefined> {
    if (process.env.RESEAT_VOLUME_ACCESS === "engine" || this.address.host) return undefined;
    let dir = source;
    if (!source.startsWith("/")) {
      const volume = await this.engine.jsonOrUndefined<VolumeInspect>("GET", `/volumes/${encodeURIComponent(source)}`);
      if (!volume || volume.Driver !== "local" || !volume.Mountpoint) return undefined;
      dir = volume.Mountpoint;
    }
    try {
      fs.accessSync(dir, fs.constants.W_OK);
    } catch {
      return undefined;
    }
    return dir;
  }

  /** A never-started helper container with the volume (or bind source) at /v, for the archive endpoint. */
  private async withAccessor<T>(source: string, work: (id: string) => Promise<T>): Promise<T> {
    await this.ensureHelperImage();
    const mount = source.startsWith("/") ? { Type: "bind", Source: source, Target: "/v" } : { Type: "volume", Source: source, Target: "/v" };
    const { Id } = await this.engine.json<{ Id: string }>("POST", "/containers/create", {
      body: { Image: HELPER_IMAGE, Cmd: ["/reseat-helper"], Labels: { [LABELS.managed]: "true", [LABELS.role]: "volume-access" }, HostConfig: { Mounts: [mount], NetworkMode: "none" } },
    });
    try {
      return await work(Id);
    } finally {
      await this.remove(Id).catch(() => undefined);
    }
  }

  /** Imports reseat's helper image from a one-file archive when the engine lacks it (no registry needed). */
  async ensureHelperImage(): Promise<void> {
    if (await this.engine.jsonOrUndefined("GET", `/images/${encodeURIComponent(HELPER_IMAGE)}/json`)) return;
    const [repo, tag] = HELPER_IMAGE.split(":");
    const archive = packTar([{ name: "reseat-helper", content: Buffer.from("reseat helper image: never started\n"), mode: 0o644 }, { name: "v/" }]);
    await this.engine.request("POST", "/images/create", { query: { fromSrc: "-", repo, tag }, rawBody: archive, contentType: "application/x-tar" });
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
   * A lease is a never-started container named reseat-lease-<name>: the engine's unique container
   * names make taking it atomic for every process that talks to this engine, on any host. Its id is
   * the holding's token; renewals bump a counter in a file inside it (the archive endpoint), which
   * observers watch for movement. `docker container prune` removes it like any stopped container: the
   * holder's next renewal finds it gone and the holder stops acting (see the README).
   */
  async tryAcquireLease(name: string, holder: string, leaseMs: number): Promise<{ acquired: true; lease: LeaseRecord } | { acquired: false; current: LeaseRecord }> {
    await this.ensureHelperImage();
    const containerName = leaseContainer(name);
    for (;;) {
      try {
        const created = await this.engine.json<{ Id: string }>("POST", "/containers/create", {
          query: { name: containerName },
          body: {
            Image: HELPER_IMAGE,
            Cmd: ["/reseat-helper"],
            Labels: { [LABELS.managed]: "true", [LABELS.role]: "lease", [LABELS.leaseHolder]: holder, [LABELS.leaseMs]: String(leaseMs) },
            HostConfig: { NetworkMode: "none" },
          },
        });
        const lease: LeaseRecord = { name, holder, token: created.Id, leaseMs, renewals: 0, renewedAt: new Date().toISOString() };
        await this.writeLeaseFile(lease).catch(() => undefined);
        return { acquired: true, lease };
      } catch (error) {
        if (!(error instanceof EngineError && error.statusCode === 409)) throw error;
      }
      const current = await this.readLease(name);
      if (current) return { acquired: false, current };
      // Released between our create and our look: try again.
    }
  }

  async renewLease(lease: LeaseRecord): Promise<boolean> {
    lease.renewals += 1;
    lease.renewedAt = new Date().toISOString();
    try {
      await this.writeLeaseFile(lease);
      return true;
    } catch (error) {
      if (error instanceof EngineError && error.statusCode === 404) return false;
      throw error;
    }
  }

  async holdsLease(lease: LeaseRecord): Promise<boolean> {
    const c = await this.engine.jsonOrUndefined<{ Id: string }>("GET", `/containers/${leaseContainer(lease.name)}/json`);
    return c?.Id === lease.token;
  }

  async releaseLease(lease: LeaseRecord): Promise<void> {
    await this.remove(lease.token);
  }

  async readLease(name: string): Promise<LeaseRecord | undefined> {
    const c = await this.engine.jsonOrUndefined<{ Id: string; Config: { Labels: Record<string, string> } }>("GET", `/containers/${leaseContainer(name)}/json`);
    if (!c) return undefined;
    let renewals = 0;
    let renewedAt = "";
    try {
      const { body } = await this.engine.request("GET", `/containers/${c.Id}/archive`, { query: { path: `/${LEASE_FILE}` } });
      const text = unpackTar(body).values().next().value?.toString("utf8");
      const parsed = text ? (JSON.parse(text) as { renewals?: number; renewedAt?: string }) : {};
      renewals = parsed.renewals ?? 0;
      renewedAt = parsed.renewedAt ?? "";
    } catch (error) {
      if (error instanceof EngineError && error.statusCode === 404) {
        // Removed after the inspect, or taken before its first renewal file: both read as "as is".
        const still = await this.engine.jsonOrUndefined("GET", `/containers/${c.Id}/json`);
        if (!still) return undefined;
      } else throw error;
    }
    return {
      name,
      holder: c.Config.Labels[LABELS.leaseHolder] ?? "",
      token: c.Id,
      leaseMs: Number(c.Config.Labels[LABELS.leaseMs] ?? 0),
      renewals,
      renewedAt,
    };
  }

  private async writeLeaseFile(lease: LeaseRecord): Promise<void> {
    const archive = packTar([{ name: LEASE_FILE, content: Buffer.from(JSON.stringify({ renewals: lease.renewals, renewedAt: lease.renewedAt })), mode: 0o644 }]);
    await this.engine.request("PUT", `/containers/${lease.token}/archive`, { query: { path: "/" }, rawBody: archive, contentType: "application/x-tar" });
  }

  async watchExecutables(onEvent: (event: ExecutableEvent) => void): Promise<EventStream> {
    let resolveEnded!: (error: Error | undefined) => void;
    const ended = new Promise<Error | undefined>((resolve) => (resolveEnded = resolve));
    const subscription = await this.engine.events<{ Action: string; Actor: { Attributes: Record<string, string> } }>(
      { filters: JSON.stringify({ type: ["container"], label: [`${LABELS.role}=executable`], event: ["die", "oom", "health_status", "destroy"] }) },
      (event) => {
        const peId = event.Actor.Attributes[LABELS.peId];
        if (!peId) return;
        if (event.Action === "die") onEvent({ peId, kind: "exited", reason: `exited with code ${event.Actor.Attributes.exitCode ?? "?"}` });
        else if (event.Action === "oom") onEvent({ peId, kind: "oom", reason: "out of memory" });
        else if (event.Action === "destroy") onEvent({ peId, kind: "removed", reason: "removed" });
        else if (event.Action.startsWith("health_status") && event.Action.includes("unhealthy")) onEvent({ peId, kind: "unhealthy", reason: "unhealthy" });
      },
      (error) => resolveEnded(error),
    );
    return { close: () => subscription.close(), ended };
  }

  async inspectVolume(name: string): Promise<VolumeInfo | undefined> {
    const v = await this.engine.jsonOrUndefined<VolumeInspect>("GET", `/volumes/${encodeURIComponent(name)}`);
    return v ? volumeInfo(v) : undefined;
  }

  /**
   * Docker's volume create is idempotent by name and keeps the labels of whoever created it first
   * (the engine serializes creates of one name): after our create, the labels say who owns it.
   */
  async claimVolume(claim: VolumeClaim): Promise<VolumeInfo & { created: boolean }> {
    const existed = await this.inspectVolume(claim.name);
    await this.engine.json("POST", "/volumes/create", {
      body: {
        Name: claim.name,
        Driver: claim.driver,
        Labels: { [LABELS.managed]: "true", [LABELS.role]: "state-volume", [LABELS.peId]: claim.peId, [LABELS.owner]: claim.owner },
      },
    });
    const now = await this.inspectVolume(claim.name);
    if (!now) throw new Error(`volume ${claim.name} vanished right after it was created`);
    return { ...now, created: !existed && now.owner === claim.owner };
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

function volumeInfo(v: VolumeInspect): VolumeInfo {
  return { name: v.Name, driver: v.Driver, peId: v.Labels?.[LABELS.peId], owner: v.Labels?.[LABELS.owner], createdAt: v.CreatedAt };
}

function leaseContainer(name: string): string {
  return `reseat-lease-${name}`;
}

function describeAddress(address: EngineAddress): string {
  return address.host ? `tcp://${address.host}:${address.port ?? 2375}` : `unix://${address.socketPath ?? "/var/run/docker.sock"}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
