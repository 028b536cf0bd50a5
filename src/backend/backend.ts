// The engine seam: everything reseat needs from a container engine, and nothing more. Docker
// implements it today; a Kubernetes backend (PVC + node-pinned pod) implements the same calls.

/** The desired executable, fully resolved (image id known), as the provider and controller pass it. */
export interface ExecutableDesired {
  peId: string;
  imageRef: string;
  imageId: string;
  command?: string[];
  env: Record<string, string>;
  ports: { container: number; host?: number; hostIp: string; protocol: "tcp" | "udp" }[];
  network: "bridge" | "host" | "none";
  resources: { memoryMiB?: number; cpus?: number };
  volumeName: string;
  mountPath: string;
  stop: { signal: string; graceSeconds: number };
  readiness?: { httpGet?: { port: number; path: string }; logLine?: string; timeout: number };
  commitIntervalMs: number;
  /** Where the workload commits its state; never the state volume. */
  store: StoreDesired;
  /** How the failure controller paces re-creation after repeated failures. */
  failureBackoff?: FailureBackoff;
}

export interface FailureBackoff {
  /** Delay before the 2nd consecutive re-creation (the 1st is immediate); doubles each time. */
  initialMs: number;
  maxMs: number;
  /** Running this long without failing resets the count. */
  resetAfterMs: number;
}

export const DEFAULT_FAILURE_BACKOFF: FailureBackoff = { initialMs: 1000, maxMs: 60_000, resetAfterMs: 120_000 };

/** The desired spec as stored in a container label: everything but the store password. */
export function desiredLabel(desired: ExecutableDesired): string {
  const store = desired.store.kind === "postgres" ? { ...desired.store, password: "" } : desired.store;
  return JSON.stringify({ ...desired, store });
}

export function desiredFromLabel(label: string | undefined): ExecutableDesired | undefined {
  if (!label) return undefined;
  try {
    return JSON.parse(label) as ExecutableDesired;
  } catch {
    return undefined;
  }
}

/** The persistent store as the executable sees it. The password only ever travels as a file. */
export type StoreDesired =
  | { kind: "none" }
  | { kind: "directory"; volume?: string; hostPath?: string; keep: number }
  | { kind: "postgres"; host: string; port: number; database: string; user: string; table: string; keep: number; password: string };

/** Where the store is mounted in the executable, and where the store password file lives in the volume. */
export const STORE_MOUNT = "/reseat-store";
export const STORE_PASSWORD_FILE = ".reseat/secrets/store-password";

/** The RESEAT_STORE value the workload's state library reads (no secret in it: a file path instead). */
export function storeEnv(store: StoreDesired, mountPath: string): string | undefined {
  switch (store.kind) {
    case "none":
      return undefined;
    case "directory":
      return JSON.stringify({ kind: "directory", path: STORE_MOUNT, keep: store.keep });
    case "postgres": {
      const { password: _secret, ...visible } = store;
      return JSON.stringify({ ...visible, passwordFile: `${mountPath}/${STORE_PASSWORD_FILE}` });
    }
  }
}

/** An executable as the engine reports it right now. */
export interface ObservedExecutable {
  id: string;
  name: string;
  peId: string;
  generation: number;
  specHash: string;
  volumeName: string;
  /** created, running, exited, dead, … (engine words) */
  state: string;
  running: boolean;
  startedAt?: string;
  exitCode?: number;
  restartCount?: number;
}

/** Written into the state volume before each executable starts; the durable home of the generation. */
export interface VolumeMeta {
  peId: string;
  generation: number;
  volume: string;
  updatedAt: string;
}

export interface VolumeInfo {
  name: string;
  driver: string;
  peId?: string;
  createdAt?: string;
}

export interface Backend {
  /** Name of the host the executables run on (for Docker: the engine's host name). */
  hostName(): Promise<string>;

  /** Resolves an image reference to its id, pulling it if absent. */
  ensureImage(ref: string): Promise<string>;

  /** All executables of one PE (any state), or of all PEs when peId is omitted. */
  listExecutables(peId?: string): Promise<ObservedExecutable[]>;
  /** Running containers that mount the volume, whoever owns them. */
  runningOnVolume(volumeName: string): Promise<{ id: string; name: string; peId?: string }[]>;

  /** Creates (does not start) an executable bound to the kept volume. */
  createExecutable(desired: ExecutableDesired, specHash: string): Promise<string>;
  readVolumeMeta(executableId: string, mountPath: string): Promise<VolumeMeta | undefined>;
  /** Writes small files into the state volume atomically (mode 0644 unless given: secrets use 0600). */
  writeVolumeFiles(executableId: string, mountPath: string, files: Record<string, string>, mode?: number): Promise<void>;
  readVolumeFile(executableId: string, mountPath: string, relativePath: string): Promise<string | undefined>;
  /** Reads a small file anywhere on the executable's mounts (e.g. the store's fence), or undefined. */
  readFile(executableId: string, containerPath: string): Promise<string | undefined>;
  nameExecutable(executableId: string, name: string): Promise<void>;
  start(executableId: string): Promise<void>;
  /** Waits until running, and ready when a readiness check is given; throws with the logs' tail otherwise. */
  waitReady(executableId: string, desired: ExecutableDesired): Promise<void>;
  /** Graceful stop (configured signal, grace, then kill) and removal of the container only. */
  stopAndRemove(executableId: string, stop: { graceSeconds: number }): Promise<void>;
  /** Graceful stop only: the container stays (exited) until removed. */
  stop(executableId: string, stop: { graceSeconds: number }): Promise<void>;
  remove(executableId: string): Promise<void>;

  /**
   * Takes the PE's lock: at most one replacement (provider, controller, rollout) at a time per PE.
   * Waits while another live holder has it; breaks it when the holder is gone or its lease expired.
   */
  acquireLock(peId: string, holder: string, options: { imageId: string; leaseMs: number; waitMs: number }): Promise<PeLock>;
  releaseLock(lock: PeLock): Promise<void>;

  inspectVolume(name: string): Promise<VolumeInfo | undefined>;
  createVolume(name: string, driver: string, peId: string): Promise<VolumeInfo>;
  removeVolume(name: string): Promise<void>;
}

export interface PeLock {
  peId: string;
  holder: string;
  token: string;
}

/** Labels that carry a PE's identity on its containers and volume. */
export const LABELS = {
  managed: "io.reseat.managed",
  peId: "io.reseat.pe-id",
  specHash: "io.reseat.spec-hash",
  volume: "io.reseat.volume",
  role: "io.reseat.role",
  /** The executable's desired spec (JSON, no secrets): what the controller re-creates after a failure. */
  desired: "io.reseat.desired",
  lockHolder: "io.reseat.lock-holder",
  lockExpires: "io.reseat.lock-expires",
} as const;

/** Container names carry the generation so that `docker ps` reads naturally: reseat-<pe>-g<n>. */
export function executableName(peId: string, generation: number): string {
  return `reseat-${peId}-g${generation}`;
}

export function generationFromName(name: string): number {
  const match = /-g(\d+)$/.exec(name.replace(/^\//, ""));
  return match ? Number(match[1]) : 0;
}
