// State volumes and the small files beside them: claimed by label, inspected, removed; files read and
// written directly on a local engine's host path, else through the Engine's archive endpoint (an
// executable that mounts the volume, or a never-started accessor). The seam's records are these files
// (FileRecords, in ../fileRecords.ts).
import { RESEAT_TOOL_ENV } from "@reseat/state/contract";
import * as fs from "node:fs";
import * as path from "node:path";
import Dockerode from "dockerode";
import { FileOwner, LABELS, VolumeClaim, VolumeHolder, VolumeInfo } from "../backend";
import type { VolumeFileAccess } from "../fileRecords";
import { packArchive } from "./archive";
import { ContainerSummary, DockerEngine, HELPER_IMAGE, VolumeInspect } from "./engine";
import { hasStatus } from "./engineCall";

export class DockerVolumes extends DockerEngine implements VolumeFileAccess {
  async inspectVolume(name: string): Promise<VolumeInfo | undefined> {
    const v = (await this.callOrUndefined(`inspect volume ${name}`, (abortSignal) => this.docker.getVolume(name).inspect({ abortSignal }))) as
      VolumeInspect | undefined;
    return v ? volumeInfo(v) : undefined;
  }

  async listStateVolumes(): Promise<VolumeInfo[]> {
    const { Volumes } = (await this.call("list volumes", (abortSignal) =>
      this.docker.listVolumes({ filters: { label: [`${LABELS.role}=state-volume`] }, abortSignal }),
    )) as unknown as { Volumes: VolumeInspect[] | null };
    return (Volumes ?? []).map(volumeInfo);
  }

  async runningOnVolume(volumeName: string): Promise<VolumeHolder[]> {
    const containers = (await this.call("list containers", (abortSignal) =>
      this.docker.listContainers({ filters: { volume: [volumeName] }, abortSignal }),
    )) as unknown as ContainerSummary[];
    return containers.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? "").replace(/^\//, ""),
      peId: c.Labels[LABELS.peId],
    }));
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

  readFile(source: string, relativePath: string): Promise<string | undefined> {
    return this.readVolumeFile(source, relativePath);
  }

  writeFiles(source: string, files: Record<string, string>, options?: { mode?: number; owner?: FileOwner; rootMode?: number }): Promise<void> {
    return this.writeVolumeFiles(source, files, options);
  }

  private async readVolumeFile(source: string, relativePath: string): Promise<string | undefined> {
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
    const containers = (await this.call("list containers", (abortSignal) =>
      this.docker.listContainers({ all: true, filters, abortSignal }),
    )) as unknown as (ContainerSummary & {
      Mounts?: { Type: string; Name?: string; Source: string; Destination: string }[];
    })[];
    for (const c of containers) {
      const mount = c.Mounts?.find((m) => (bind ? m.Type === "bind" && m.Source === source : m.Type === "volume" && m.Name === source));
      if (mount) return { id: c.Id, destination: mount.Destination.replace(/\/$/, "") };
    }
    return undefined;
  }

  private async writeVolumeFiles(
    source: string,
    files: Record<string, string>,
    options: { mode?: number; owner?: FileOwner; rootMode?: number } = {},
  ): Promise<void> {
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

  /**
   * Where a volume (or a bind source) lives on this host, when the engine is local (unix socket), the
   * volume uses the `local` driver and this process may write there (root next to the engine). Reading
   * and writing reseat's small files directly costs ~1 ms; through the Engine's archive endpoint ~45 ms
   * a call, and those calls sit inside the replacement gap. Remote engines always use the endpoint.
   */
  private async hostPathOf(source: string): Promise<string | undefined> {
    if (process.env[RESEAT_TOOL_ENV.volumeAccess] === "engine" || !this.connection.local) return undefined;
    let dir = source;
    if (!source.startsWith("/")) {
      const volume = (await this.callOrUndefined(`inspect volume ${source}`, (abortSignal) => this.docker.getVolume(source).inspect({ abortSignal }))) as
        VolumeInspect | undefined;
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

function volumeInfo(v: VolumeInspect): VolumeInfo {
  return { name: v.Name, driver: v.Driver, peId: v.Labels?.[LABELS.peId], owner: v.Labels?.[LABELS.owner], createdAt: v.CreatedAt };
}
