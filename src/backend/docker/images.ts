// Images: resolving a reference read-only (check, preview), pulling with progress and the registry's
// credentials (up), and the user an image runs as.
import Dockerode from "dockerode";
import type { FileOwner, ImageResolution } from "../backend";
import { LABELS } from "../backend";
import { resolveRegistryAuth } from "./credentials";
import { DockerEngine } from "./engine";
import { PullEvent, PullProgress, registryAnswer, repositoryOf, splitReference } from "./imagePull";

/** Budget of asking the registry for a manifest digest in check: past it, the preview says "resolved at up". */
const REGISTRY_LOOKUP_TIMEOUT_MS = 20_000;
/** How often a running pull reports its progress. */
const PULL_PROGRESS_EVERY_MS = 2000;

export class DockerImages extends DockerEngine {
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
      throw new Error(
        `image "${ref}" is not on the engine (${this.connection.address}) and could not be pulled: ${(error as Error).message} [registry credentials: ${credentials.source}]`,
      );
    }
    report(`pulled ${ref}: ${progress.layersDone} layers in ${((Date.now() - progress.startedAt) / 1000).toFixed(1)} s`);
    const pulled = await this.imageId(ref);
    if (!pulled) throw new Error(`image "${ref}" was pulled but the engine (${this.connection.address}) does not list it`);
    return pulled;
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
    if (user === "" || user === "root" || user === "0")
      return group === undefined || group === "0" || group === "root" ? undefined : { uid: 0, gid: await this.resolveId(imageId, "group", group) };
    const uid = await this.resolveId(imageId, "passwd", user);
    const gid = group !== undefined ? await this.resolveId(imageId, "group", group) : await this.primaryGroup(imageId, user, uid);
    return { uid, gid };
  }

  private async resolveId(imageId: string, table: "passwd" | "group", name: string): Promise<number> {
    if (/^\d+$/.test(name)) return Number(name);
    const entry = (await this.imageFile(imageId, `/etc/${table}`))
      ?.split("\n")
      .map((line) => line.split(":"))
      .find((fields) => fields[0] === name);
    if (!entry?.[2] || !/^\d+$/.test(entry[2]))
      throw new Error(
        `image ${imageId.slice(0, 19)}: its USER names ${table === "passwd" ? "user" : "group"} "${name}", which its /etc/${table} does not list; set runAsUser/runAsGroup`,
      );
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
}
