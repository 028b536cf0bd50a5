// Docker Engine implementation of the backend seam, through dockerode (docker-modem): unix://, tcp://
// with TLS and ssh:// engines alike (see connection.ts), each call with a time budget. Every call
// reads the engine fresh: the provider and the controller must never act on a stale picture of which
// executable is live.
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import Dockerode from "dockerode";
import {
  Backend,
  EngineIdentity,
  EventStream,
  ExecutableDesired,
  FileOwner,
  ExecutableEvent,
  ImageResolution,
  LABELS,
  LeaseRecord,
  STORE_MOUNT,
  VolumeClaim,
  VolumeHolder,
  assertSecretEnvKnown,
  desiredFromLabel,
  desiredLabel,
  storeEnv,
  withSecretEnv,
  workloadEnv,
  ObservedExecutable,
  VolumeInfo,
  VolumeMeta,
  generationFromName,
} from "../backend";
import { packArchive, firstFile } from "./archive";
import { dockerClient } from "./client";
import { EngineConnection, RegistryCredentials, resolveConnection } from "./connection";
import { resolveRegistryAuth } from "./credentials";
import { engineCall, engineCallOrUndefined, hasStatus } from "./engineCall";
import { followEvents } from "./events";
import { PullEvent, PullProgress, registryAnswer, repositoryOf, splitReference } from "./imagePull";
import { Demuxer, logText } from "./logs";

interface ContainerSummary {
  Id: string;
  Names: string[];
  Labels: Record<string, string>;
  State: string;
}

interface ContainerInspect {
  Id: string;
  Name: string;
  RestartCount: number;
  Config: { Labels: Record<string, string>; Env?: string[] | null; Tty?: boolean };
  State: { Status: string; Running: boolean; ExitCode: number; StartedAt: string; OOMKilled: boolean };
  NetworkSettings: {
    IPAddress?: string;
    Ports?: Record<string, { HostIp: string; HostPort: string }[] | null>;
    Networks?: Record<string, { IPAddress: string }>;
  };
  HostConfig: { NetworkMode: string };
}

interface VolumeInspect {
  Name: string;
  Driver: string;
  Mountpoint: string;
  Labels: Record<string, string> | null;
  CreatedAt?: string;
}

export const META_PATH = ".reseat/meta.json";
/** A tiny image made on the engine itself (no registry, no PE image): lease and volume-access containers. */
export const HELPER_IMAGE = "reseat-helper:1";
const LEASE_FILE = "lease.json";
/** Budget of asking the registry for a manifest digest in check: past it, the preview says "resolved at up". */
const REGISTRY_LOOKUP_TIMEOUT_MS = 20_000;
/** How often a running pull reports its progress. */
const PULL_PROGRESS_EVERY_MS = 2000;

export interface DockerBackendOptions {
  /** Credentials for pulls from this registry (never sent to another one); else the user's Docker config. */
  registryAuth?: RegistryCredentials;
  /** Where pull progress lines go (default: stderr, every 2 s while a pull runs). */
  onPullProgress?: (line: string) => void;
}

export class DockerBackend implements Backend {
  readonly kind = "docker" as const;
  /** The dockerode client, for the few callers (tests, benchmarks) that need the raw Engine API. */
  readonly docker: Dockerode;
  private pingClient?: Dockerode;
  private identityCache?: EngineIdentity;

  constructor(
    readonly connection: EngineConnection = resolveConnection(),
    private readonly options: DockerBackendOptions = {},
  ) {
    this.docker = dockerClient(connection);
  }

  /** One Engine call within the connection's budget (or `timeoutMs`), failures as EngineError. */
  private call<T>(what: string, fn: (abortSignal: AbortSignal) => Promise<T>, timeoutMs = this.connection.callTimeoutMs): Promise<T> {
    return engineCall(this.connection.address, what, timeoutMs, fn);
  }

  /** Like call(), but "no such …" (404) answers undefined. */
  private callOrUndefined<T>(what: string, fn: (abortSignal: AbortSignal) => Promise<T>): Promise<T | undefined> {
    return engineCallOrUndefined(this.connection.address, what, this.connection.callTimeoutMs, fn);
  }

  async identity(): Promise<EngineIdentity> {
    if (!this.identityCache) {
      // The ID plus the data root: two daemons on one host can share an ID (Docker 20.10 derives it from
      // /etc/docker/key.json), never a data root — which is where their volumes live.
      const info = (await this.call("GET /info", (abortSignal) => optionsCall(this.docker, "info", { abortSignal }))) as { ID: string; Name: string; DockerRootDir: string };
      this.identityCache = { kind: "docker", id: `${info.ID}@${info.DockerRootDir}`, name: info.Name, address: this.connection.address };
    }
    return this.identityCache;
  }

  /** On a new connection: the engine accepts calls (not merely serving the connections already open). */
  async ping(): Promise<void> {
    this.pingClient ??= dockerClient(this.connection, { freshConnections: true });
    const client = this.pingClient;
    await this.call("GET /_ping", (abortSignal) => optionsCall(client, "ping", { abortSignal }), Math.min(5000, this.connection.callTimeoutMs));
  }

  private async imageId(ref: string): Promise<string | undefined> {
    const image = await this.callOrUndefined(`inspect image ${ref}`, () => this.docker.getImage(ref).inspect());
    return image?.Id;
  }

  /**
   * Read-only (no pull): the image the engine has under `ref`; else what the registry names for it
   * (GET /distribution/…/json asks the registry for the manifest and pulls nothing): the image already
   * pulled from that very manifest into this repository (its tag removed locally since: same content),
   * or the bare digest; else why not (registry unreachable, unauthorized, no such tag).
   */
  async resolveImage(ref: string): Promise<ImageResolution> {
    const present = await this.imageId(ref);
    if (present) return { kind: "resolved", imageId: present };
    const credentials = await resolveRegistryAuth(ref, this.options.registryAuth);
    let digest: string | undefined;
    try {
      const info = await this.call(
        `GET /distribution/${ref}/json`,
        () => this.docker.getImage(ref).distribution(credentials.auth ? { authconfig: credentials.auth as Dockerode.AuthConfig } : {}),
        Math.min(this.connection.callTimeoutMs, REGISTRY_LOOKUP_TIMEOUT_MS),
      );
      digest = info?.Descriptor?.digest;
    } catch (error) {
      return { kind: "unresolved", reason: `the registry did not name its manifest: ${registryAnswer(error)}` };
    }
    if (!digest) return { kind: "unresolved", reason: "the registry named no manifest digest" };
    const pulledBefore = await this.imageId(`${repositoryOf(ref)}@${digest}`);
    return pulledBefore ? { kind: "resolved", imageId: pulledBefore } : { kind: "registry", digest };
  }

  /**
   * The image's id, pulling it when the engine lacks it: streamed, with progress lines, and with the
   * registry's credentials in the X-Registry-Auth header (docker-modem puts them nowhere else).
   */
  async ensureImage(ref: string): Promise<string> {
    const present = await this.imageId(ref);
    if (present) return present;
    const credentials = await resolveRegistryAuth(ref, this.options.registryAuth);
    const progress = new PullProgress(ref);
    const report = this.options.onPullProgress ?? ((line: string) => process.stderr.write(`reseat: ${line}\n`));
    try {
      const { fromImage, tag } = splitReference(ref);
      // Until the engine answers: the call budget. Then the stream may run as long as it makes progress.
      const stream = (await this.call(`pull ${ref}`, (abortSignal) =>
        this.docker.createImage(credentials.auth as Dockerode.AuthConfig, { fromImage, tag, abortSignal } as unknown as Record<string, string>),
      )) as NodeJS.ReadableStream & { destroy(error?: Error): void };
      await new Promise<void>((resolve, reject) => {
        let lastReport = Date.now();
        let stalled: NodeJS.Timeout | undefined;
        const armStallTimer = () => {
          if (stalled) clearTimeout(stalled);
          stalled = setTimeout(() => stream.destroy(new Error(`no progress for ${this.connection.callTimeoutMs} ms`)), this.connection.callTimeoutMs);
        };
        armStallTimer();
        this.docker.modem.followProgress(
          stream,
          (error: Error | null) => {
            clearTimeout(stalled);
            if (error) reject(error);
            else if (progress.error) reject(new Error(progress.error));
            else resolve();
          },
          (event: PullEvent) => {
            armStallTimer();
            progress.update(event);
            if (Date.now() - lastReport >= PULL_PROGRESS_EVERY_MS) {
              lastReport = Date.now();
              report(progress.line());
            }
          },
        );
      });
    } catch (error) {
      throw new Error(`image "${ref}" is not on the engine (${this.connection.address}) and could not be pulled: ${(error as Error).message} [registry credentials: ${credentials.source}]`);
    }
    report(`pulled ${ref}: ${progress.layersDone} layers in ${((Date.now() - progress.startedAt) / 1000).toFixed(1)} s`);
    const pulled = await this.imageId(ref);
    if (!pulled) throw new Error(`image "${ref}" was pulled but the engine (${this.connection.address}) does not list it`);
    return pulled;
  }

  async listExecutables(peId?: string): Promise<ObservedExecutable[]> {
    const label = [`${LABELS.role}=executable`];
    if (peId) label.push(`${LABELS.peId}=${peId}`);
    const containers = (await this.call("list containers", (abortSignal) => this.docker.listContainers({ all: true, filters: { label }, abortSignal }))) as unknown as ContainerSummary[];
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

  private inspectContainer(id: string): Promise<ContainerInspect | undefined> {
    return this.callOrUndefined(`inspect container ${id}`, (abortSignal) => this.docker.getContainer(id).inspect({ abortSignal }) as unknown as Promise<ContainerInspect>);
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

  async listStateVolumes(): Promise<VolumeInfo[]> {
    const { Volumes } = (await this.call("list volumes", (abortSignal) =>
      this.docker.listVolumes({ filters: { label: [`${LABELS.role}=state-volume`] }, abortSignal }),
    )) as unknown as { Volumes: VolumeInspect[] | null };
    return (Volumes ?? []).map(volumeInfo);
  }

  async runningOnVolume(volumeName: string): Promise<VolumeHolder[]> {
    const containers = (await this.call("list containers", (abortSignal) => this.docker.listContainers({ filters: { volume: [volumeName] }, abortSignal }))) as unknown as ContainerSummary[];
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
    const mounts: { Type: "volume" | "bind"; Source: string; Target: string }[] = [{ Type: "volume", Source: desired.volumeName, Target: desired.mountPath }];
    const store = desired.store;
    if (store.kind === "directory") {
      mounts.push(store.hostPath ? { Type: "bind", Source: store.hostPath, Target: STORE_MOUNT } : { Type: "volume", Source: store.volume ?? "reseat-store", Target: STORE_MOUNT });
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
        [LABELS.desired]: desiredLabel(withoutCredentials(desired)),
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
    const created = await this.call(`create container ${identity.name}`, (abortSignal) => this.docker.createContainer({ ...options, abortSignal } as Dockerode.ContainerCreateOptions));
    return created.id;
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

  async recordGeneration(meta: VolumeMeta, owner?: FileOwner): Promise<void> {
    // Generations only go up (the fencing token), as on Kubernetes. The caller holds the PE's lease, so
    // nobody records in between this read and the write.
    const current = (await this.readGeneration(meta.volume))?.generation;
    if (current !== undefined && current >= meta.generation) {
      throw new Error(`reseat: volume ${meta.volume} is already at generation ${current}; refusing to record ${meta.generation} (another replacement ran concurrently)`);
    }
    await this.writeVolumeFiles(meta.volume, { [META_PATH]: JSON.stringify(meta) }, { owner });
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
    // Read-only where it can be (a refresh in `pulumi preview` reads here): through an executable that
    // mounts it already; a never-started accessor (created, then removed) only when none does.
    const mounted = await this.executableMounting(source);
    if (mounted) {
      const text = await this.readContainerFile(mounted.id, `${mounted.destination}/${relativePath}`);
      if (text !== undefined || (await this.inspectContainer(mounted.id))) return text?.toString("utf8");
      // Removed since it was listed (a replacement): the accessor then.
    }
    return this.withAccessor(source, async (id) => (await this.readContainerFile(id, `/v/${relativePath}`))?.toString("utf8"));
  }

  /** An executable (any state) with the volume, or the bind-mounted host path, mounted; and where. */
  private async executableMounting(source: string): Promise<{ id: string; destination: string } | undefined> {
    const bind = source.startsWith("/");
    const filters = { label: [`${LABELS.role}=executable`], ...(bind ? {} : { volume: [source] }) };
    const containers = (await this.call("list containers", (abortSignal) => this.docker.listContainers({ all: true, filters, abortSignal }))) as unknown as (ContainerSummary & {
      Mounts?: { Type: string; Name?: string; Source: string; Destination: string }[];
    })[];
    for (const c of containers) {
      const mount = c.Mounts?.find((m) => (bind ? m.Type === "bind" && m.Source === source : m.Type === "volume" && m.Name === source));
      if (mount) return { id: c.Id, destination: mount.Destination.replace(/\/$/, "") };
    }
    return undefined;
  }

  /** One file out of a container's filesystem (GET …/archive), or undefined when it is not there. */
  private async readContainerFile(id: string, containerPath: string): Promise<Buffer | undefined> {
    const archive = await this.callOrUndefined(`read ${containerPath} of container ${id}`, async (abortSignal) => {
      const stream = await this.docker.getContainer(id).getArchive({ path: containerPath, abortSignal } as { path: string });
      return firstFile(stream);
    });
    return archive;
  }

  async writeVolumeFiles(source: string, files: Record<string, string>, options: { mode?: number; owner?: FileOwner; rootMode?: number } = {}): Promise<void> {
    const mode = options.mode ?? 0o644;
    const owner = options.owner && (options.owner.uid !== 0 || options.owner.gid !== 0) ? options.owner : undefined;
    const root = "./" in files; // the volume's root directory itself
    const dirs = new Set<string>();
    for (const file of Object.keys(files)) {
      if (file === "./") continue;
      const parts = file.split("/").filter(Boolean);
      if (!file.endsWith("/")) parts.pop();
      for (let i = 1; i <= parts.length; i++) dirs.add(`${parts.slice(0, i).join("/")}/`);
    }
    const regular = Object.entries(files).filter(([name]) => !name.endsWith("/"));
    const hostDir = await this.hostPathOf(source);
    if (hostDir) {
      for (const dir of dirs) {
        fs.mkdirSync(path.join(hostDir, dir), { recursive: true });
        if (owner) fs.chownSync(path.join(hostDir, dir), owner.uid, owner.gid);
      }
      if (owner && root) chownOnRootMismatch(hostDir, owner);
      if (root && options.rootMode !== undefined) fs.chmodSync(hostDir, options.rootMode);
      for (const [relativePath, text] of regular) writeDurably(path.join(hostDir, relativePath), text, mode, owner);
      return;
    }
    const ids = owner ? { uid: owner.uid, gid: owner.gid } : {};
    // For the root's owner or mode the archive goes to / with a "v/" entry: the engine skips an archive's
    // "." but applies the owner and mode of "v/", i.e. of the volume's root (mounted at /v).
    const touchRoot = root && (owner !== undefined || options.rootMode !== undefined);
    const prefix = touchRoot ? "v/" : "";
    const archive = await packArchive([
      ...(touchRoot ? [{ name: prefix, ...ids, ...(options.rootMode !== undefined ? { mode: options.rootMode } : {}) }] : []),
      ...[...dirs].map((name) => ({ name: prefix + name, ...ids })),
      ...regular.map(([name, text]) => ({ name: prefix + name, content: Buffer.from(text), mode, ...ids })),
    ]);
    await this.withAccessor(source, (id) => this.putArchive(id, touchRoot ? "/" : "/v", archive));
  }

  private readonly imageUsers = new Map<string, Promise<FileOwner | undefined>>();

  /** The image's USER as numbers: "uid[:gid]" directly, names through the image's /etc/passwd and /etc/group. */
  imageUser(imageId: string): Promise<FileOwner | undefined> {
    // Image ids name immutable content: one look per image and process.
    let known = this.imageUsers.get(imageId);
    if (!known) {
      known = this.readImageUser(imageId);
      known.catch(() => this.imageUsers.delete(imageId));
      this.imageUsers.set(imageId, known);
    }
    return known;
  }

  private async readImageUser(imageId: string): Promise<FileOwner | undefined> {
    const image = await this.call(`inspect image ${imageId}`, () => this.docker.getImage(imageId).inspect());
    const [user = "", group] = (image.Config?.User ?? "").split(":");
    if (user === "" || user === "root" || user === "0") return group === undefined || group === "0" || group === "root" ? undefined : { uid: 0, gid: await this.resolveId(imageId, "group", group) };
    const uid = await this.resolveId(imageId, "passwd", user);
    const gid = group !== undefined ? await this.resolveId(imageId, "group", group) : await this.primaryGroup(imageId, user, uid);
    return { uid, gid };
  }

  private async resolveId(imageId: string, table: "passwd" | "group", name: string): Promise<number> {
    if (/^\d+$/.test(name)) return Number(name);
    const entry = (await this.imageFile(imageId, `/etc/${table}`))?.split("\n").map((line) => line.split(":")).find((fields) => fields[0] === name);
    if (!entry?.[2] || !/^\d+$/.test(entry[2])) throw new Error(`image ${imageId.slice(0, 19)}: its USER names ${table === "passwd" ? "user" : "group"} "${name}", which its /etc/${table} does not list; set runAsUser/runAsGroup`);
    return Number(entry[2]);
  }

  private async primaryGroup(imageId: string, user: string, uid: number): Promise<number> {
    const entries = (await this.imageFile(imageId, "/etc/passwd"))?.split("\n").map((line) => line.split(":")) ?? [];
    const entry = entries.find((fields) => fields[0] === user || fields[2] === String(uid));
    // As Docker does: the user's primary group from /etc/passwd, else group 0.
    return entry?.[3] && /^\d+$/.test(entry[3]) ? Number(entry[3]) : 0;
  }

  /** A file of an image, read through a created (never started) container. */
  private async imageFile(imageId: string, file: string): Promise<string | undefined> {
    const created = await this.call(`create a container to read ${file} of image ${imageId}`, (abortSignal) =>
      this.docker.createContainer({
        Image: imageId,
        Entrypoint: ["/reseat-never-started"],
        Labels: { [LABELS.managed]: "true", [LABELS.role]: "image-inspect" },
        HostConfig: { NetworkMode: "none" },
        abortSignal,
      } as Dockerode.ContainerCreateOptions),
    );
    try {
      return (await this.readContainerFile(created.id, file))?.toString("utf8");
    } finally {
      await this.remove(created.id).catch(() => undefined);
    }
  }

  private async putArchive(id: string, dir: string, archive: Buffer): Promise<void> {
    await this.call(`write into ${dir} of container ${id}`, (abortSignal) => this.docker.getContainer(id).putArchive(archive, { path: dir, abortSignal } as { path: string }));
  }

  /**
   * Where a volume (or a bind source) lives on this host, when the engine is local (unix socket), the
   * volume uses the `local` driver and this process may write there (root next to the engine). Reading
   * and writing reseat's small files directly costs ~1 ms; through the Engine's archive endpoint ~45 ms
   * a call, and those calls sit inside the replacement gap. Remote engines always use the endpoint.
   */
  private async hostPathOf(source: string): Promise<string | undefined> {
    if (process.env.RESEAT_VOLUME_ACCESS === "engine" || !this.connection.local) return undefined;
    let dir = source;
    if (!source.startsWith("/")) {
      const volume = (await this.callOrUndefined(`inspect volume ${source}`, (abortSignal) => this.docker.getVolume(source).inspect({ abortSignal }))) as VolumeInspect | undefined;
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
    const mount = source.startsWith("/") ? { Type: "bind" as const, Source: source, Target: "/v" } : { Type: "volume" as const, Source: source, Target: "/v" };
    const created = await this.call("create volume-access container", (abortSignal) =>
      this.docker.createContainer({
        Image: HELPER_IMAGE,
        Cmd: ["/reseat-helper"],
        // The volume it opens, so that its engine events name it (its PE's, for a state volume).
        Labels: { [LABELS.managed]: "true", [LABELS.role]: "volume-access", [LABELS.volume]: source },
        HostConfig: { Mounts: [mount], NetworkMode: "none" },
        abortSignal,
      } as Dockerode.ContainerCreateOptions),
    );
    try {
      return await work(created.id);
    } finally {
      await this.remove(created.id).catch(() => undefined);
    }
  }

  /** Imports reseat's helper image from a one-file archive when the engine lacks it (no registry needed). */
  async ensureHelperImage(): Promise<void> {
    if (await this.imageId(HELPER_IMAGE)) return;
    const [repo, tag] = HELPER_IMAGE.split(":");
    const archive = await packArchive([{ name: "reseat-helper", content: Buffer.from("reseat helper image: never started\n"), mode: 0o644 }, { name: "v/" }]);
    await this.call("import the helper image", async (abortSignal) => {
      const stream = await this.docker.importImage(archive as unknown as NodeJS.ReadableStream, { repo, tag, abortSignal } as { repo: string; tag: string });
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.followProgress(stream, (error: Error | null, output: PullEvent[]) => {
          const failed = output?.find((event) => event.error);
          if (error || failed) reject(error ?? new Error(failed?.error));
          else resolve();
        }),
      );
    });
  }

  async start(executableId: string): Promise<void> {
    await this.call(`start container ${executableId}`, (abortSignal) => this.docker.getContainer(executableId).start({ abortSignal }));
  }

  async waitReady(executableId: string, desired: ExecutableDesired): Promise<void> {
    const timeoutMs = desired.readiness?.timeout ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      const c = await this.inspectContainer(executableId);
      if (!c) throw new Error(`executable ${executableId} was removed before it was ready`);
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
      return new RegExp(readiness.logLine, "m").test(await this.logsTail(c.Id, 200, c.Config.Tty));
    }
    if (readiness?.httpGet) {
      const target = httpTarget(c, desired, readiness.httpGet.port, this.connection.hostname ?? "127.0.0.1");
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
        this.docker.getContainer(executableId).logs({ stdout: true, stderr: true, tail: lines, follow: false, abortSignal } as Dockerode.ContainerLogsOptions & { follow: false }),
      );
      return await logText(this.docker.modem as Demuxer, body, isTty);
    } catch {
      return "(logs unavailable)";
    }
  }

  async stop(executableId: string, stop: { graceSeconds: number }): Promise<void> {
    try {
      await this.call(`stop container ${executableId}`, (abortSignal) => this.docker.getContainer(executableId).stop({ t: stop.graceSeconds, abortSignal }), (stop.graceSeconds + 30) * 1000);
    } catch (error) {
      // 304: already stopped; 404: already gone. Both are the state we want.
      if (!hasStatus(error, 304, 404)) throw error;
    }
  }

  async remove(executableId: string): Promise<void> {
    try {
      // v=false: anonymous volumes only, and never the named state volume; force covers a racing restart.
      await this.call(`remove container ${executableId}`, (abortSignal) => this.docker.getContainer(executableId).remove({ v: false, force: true, abortSignal }));
    } catch (error) {
      if (!hasStatus(error, 404)) throw error;
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
        const created = await this.call(`create lease ${containerName}`, (abortSignal) =>
          this.docker.createContainer({
            name: containerName,
            Image: HELPER_IMAGE,
            Cmd: ["/reseat-helper"],
            Labels: { [LABELS.managed]: "true", [LABELS.role]: "lease", [LABELS.leaseHolder]: holder, [LABELS.leaseMs]: String(leaseMs) },
            HostConfig: { NetworkMode: "none" },
            abortSignal,
          } as Dockerode.ContainerCreateOptions),
        );
        const lease: LeaseRecord = { name, holder, token: created.id, leaseMs, renewals: 0, renewedAt: new Date().toISOString() };
        await this.writeLeaseFile(lease).catch(() => undefined);
        return { acquired: true, lease };
      } catch (error) {
        if (!hasStatus(error, 409)) throw error;
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
      if (hasStatus(error, 404)) return false;
      throw error;
    }
  }

  async holdsLease(lease: LeaseRecord): Promise<boolean> {
    const c = await this.inspectContainer(leaseContainer(lease.name));
    return c?.Id === lease.token;
  }

  async releaseLease(lease: LeaseRecord): Promise<void> {
    await this.remove(lease.token);
  }

  async readLease(name: string): Promise<LeaseRecord | undefined> {
    const c = await this.inspectContainer(leaseContainer(name));
    if (!c) return undefined;
    let renewals = 0;
    let renewedAt = "";
    let text: string | undefined;
    try {
      text = (await this.readContainerFile(c.Id, `/${LEASE_FILE}`))?.toString("utf8");
    } catch (error) {
      // A lease removed while we read it answers 500 ("RWLayer … is unexpectedly nil") on some engines.
      if (!(await this.inspectContainer(c.Id))) return undefined;
      // Docker 20.10 cannot read files of a never-started container after an engine restart ("driver
      // overlay2 is returning inconsistent paths"); its holder cannot renew it either. An unreadable
      // count never moves, so waiters take the lease over after one lease of standstill.
      return { name, holder: c.Config.Labels[LABELS.leaseHolder] ?? "", token: c.Id, leaseMs: Number(c.Config.Labels[LABELS.leaseMs] ?? 0), renewals: -1, renewedAt: "" };
    }
    if (text) {
      const parsed = JSON.parse(text) as { renewals?: number; renewedAt?: string };
      renewals = parsed.renewals ?? 0;
      renewedAt = parsed.renewedAt ?? "";
    } else if (!(await this.inspectContainer(c.Id))) {
      // Removed after the inspect; otherwise taken before its first renewal file: "as is".
      return undefined;
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
    const archive = await packArchive([{ name: LEASE_FILE, content: Buffer.from(JSON.stringify({ renewals: lease.renewals, renewedAt: lease.renewedAt })), mode: 0o644 }]);
    await this.putArchive(lease.token, "/", archive);
  }

  /** One subscription to the engine's container events; it ends (see `ended`) when the engine goes away. */
  async watchExecutables(onEvent: (event: ExecutableEvent) => void): Promise<EventStream> {
    return followEvents(this.docker, this.connection.address, { type: ["container"], label: [`${LABELS.role}=executable`], event: ["die", "oom", "health_status", "destroy"] }, (event) => {
      const peId = event.Actor.Attributes[LABELS.peId];
      if (!peId) return;
      if (event.Action === "die") onEvent({ peId, kind: "exited", reason: `exited with code ${event.Actor.Attributes.exitCode ?? "?"}` });
      else if (event.Action === "oom") onEvent({ peId, kind: "oom", reason: "out of memory" });
      else if (event.Action === "destroy") onEvent({ peId, kind: "removed", reason: "removed" });
      else if (event.Action.startsWith("health_status") && event.Action.includes("unhealthy")) onEvent({ peId, kind: "unhealthy", reason: "unhealthy" });
    });
  }

  async inspectVolume(name: string): Promise<VolumeInfo | undefined> {
    const v = (await this.callOrUndefined(`inspect volume ${name}`, (abortSignal) => this.docker.getVolume(name).inspect({ abortSignal }))) as VolumeInspect | undefined;
    return v ? volumeInfo(v) : undefined;
  }

  /**
   * Docker's volume create is idempotent by name and keeps the labels of whoever created it first
   * (the engine serializes creates of one name): after our create, the labels say who owns it.
   */
  async claimVolume(claim: VolumeClaim): Promise<VolumeInfo & { created: boolean }> {
    const existed = await this.inspectVolume(claim.name);
    await this.call(`create volume ${claim.name}`, (abortSignal) =>
      this.docker.createVolume({
        Name: claim.name,
        Driver: claim.driver,
        Labels: { [LABELS.managed]: "true", [LABELS.role]: "state-volume", [LABELS.peId]: claim.peId, [LABELS.owner]: claim.owner },
        abortSignal,
      } as Dockerode.VolumeCreateOptions),
    );
    const now = await this.inspectVolume(claim.name);
    if (!now) throw new Error(`volume ${claim.name} vanished right after it was created`);
    return { ...now, created: !existed && now.owner === claim.owner };
  }

  async removeVolume(name: string): Promise<void> {
    try {
      await this.call(`remove volume ${name}`, (abortSignal) => this.docker.getVolume(name).remove({ abortSignal }));
    } catch (error) {
      if (hasStatus(error, 404)) return;
      throw error;
    }
  }
}

/** dockerode's info() and ping() take options (the abort signal) that its type declarations omit. */
function optionsCall(docker: Dockerode, method: "info" | "ping", options: { abortSignal: AbortSignal }): Promise<unknown> {
  return (docker as unknown as Record<typeof method, (options: object) => Promise<unknown>>)[method](options);
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
 * The volume's root, and when its owner was another (a volume written by a root workload, e.g. by reseat
 * 0.1), everything in it: Kubernetes' fsGroupChangePolicy "OnRootMismatch". Once the root matches, later
 * calls cost one stat.
 */
function chownOnRootMismatch(dir: string, owner: FileOwner): void {
  const stat = fs.statSync(dir);
  if (stat.uid === owner.uid && stat.gid === owner.gid) return;
  const walk = (current: string): void => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      fs.lchownSync(full, owner.uid, owner.gid);
      if (entry.isDirectory()) walk(full);
    }
  };
  walk(dir);
  fs.chownSync(dir, owner.uid, owner.gid); // last: an interrupted walk is done again next time
}

/** temp + fsync + rename + fsync(dir): a reader sees the old file or the new one, never a torn one. */
function writeDurably(file: string, text: string, mode: number, owner?: FileOwner): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.tmp-${process.pid}`;
  fs.rmSync(temp, { force: true });
  const fd = fs.openSync(temp, "w", mode);
  try {
    if (owner) fs.fchownSync(fd, owner.uid, owner.gid);
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

/** Where to probe a container's port from here: the engine's machine (loopback for a local engine). */
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

function volumeInfo(v: VolumeInspect): VolumeInfo {
  return { name: v.Name, driver: v.Driver, peId: v.Labels?.[LABELS.peId], owner: v.Labels?.[LABELS.owner], createdAt: v.CreatedAt };
}

function leaseContainer(name: string): string {
  return `reseat-lease-${name}`;
}


export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
