// What every part of the Docker backend shares: the Engine API client and its connection, each call
// within a time budget (failures as EngineError), and the few container calls all parts use. The parts
// (images, executables, volumes and records, leases) extend it; they share one client and connection.
import Dockerode from "dockerode";
import { LABELS } from "../backend";
import { packArchive, firstFile } from "./archive";
import type { EngineConnection, RegistryCredentials } from "./connection";
import { engineCall, engineCallOrUndefined, hasStatus } from "./engineCall";
import type { PullEvent } from "./imagePull";

export interface ContainerSummary {
  Id: string;
  Names: string[];
  Labels: Record<string, string>;
  State: string;
}

export interface ContainerInspect {
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

export interface VolumeInspect {
  Name: string;
  Driver: string;
  Mountpoint: string;
  Labels: Record<string, string> | null;
  CreatedAt?: string;
}

/** A tiny image made on the engine itself (no registry, no PE image): lease and volume-access containers. */
export const HELPER_IMAGE = "reseat-helper:1";

export interface DockerBackendOptions {
  /** Credentials for pulls from this registry (never sent to another one); else the user's Docker config. */
  registryAuth?: RegistryCredentials;
  /** Where pull progress lines go (default: stderr, every 2 s while a pull runs). */
  onPullProgress?: (line: string) => void;
}

export class DockerEngine {
  constructor(
    readonly docker: Dockerode,
    readonly connection: EngineConnection,
    protected readonly options: DockerBackendOptions = {},
  ) {}

  /** One Engine call within the connection's budget (or `timeoutMs`), failures as EngineError. */
  call<T>(what: string, fn: (abortSignal: AbortSignal) => Promise<T>, timeoutMs = this.connection.callTimeoutMs): Promise<T> {
    return engineCall(this.connection.address, what, timeoutMs, fn);
  }

  /** Like call(), but "no such …" (404) answers undefined. */
  callOrUndefined<T>(what: string, fn: (abortSignal: AbortSignal) => Promise<T>): Promise<T | undefined> {
    return engineCallOrUndefined(this.connection.address, what, this.connection.callTimeoutMs, fn);
  }

  async imageId(ref: string): Promise<string | undefined> {
    const image = await this.callOrUndefined(`inspect image ${ref}`, () => this.docker.getImage(ref).inspect());
    return image?.Id;
  }

  inspectContainer(id: string): Promise<ContainerInspect | undefined> {
    return this.callOrUndefined(
      `inspect container ${id}`,
      (abortSignal) => this.docker.getContainer(id).inspect({ abortSignal }) as unknown as Promise<ContainerInspect>,
    );
  }

  /** One file out of a container's filesystem (GET …/archive), or undefined when it is not there. */
  async readContainerFile(id: string, containerPath: string): Promise<Buffer | undefined> {
    const archive = await this.callOrUndefined(`read ${containerPath} of container ${id}`, async (abortSignal) => {
      const stream = await this.docker.getContainer(id).getArchive({ path: containerPath, abortSignal } as { path: string });
      return firstFile(stream);
    });
    return archive;
  }

  async putArchive(id: string, dir: string, archive: Buffer): Promise<void> {
    await this.call(`write into ${dir} of container ${id}`, (abortSignal) =>
      this.docker.getContainer(id).putArchive(archive, { path: dir, abortSignal } as { path: string }),
    );
  }

  async remove(executableId: string): Promise<void> {
    try {
      // v=false: anonymous volumes only, and never the named state volume; force covers a racing restart.
      await this.call(`remove container ${executableId}`, (abortSignal) =>
        this.docker.getContainer(executableId).remove({ v: false, force: true, abortSignal }),
      );
    } catch (error) {
      if (!hasStatus(error, 404)) throw error;
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
}
