// The environment reseat gives every workload (and the state library reads): its names, the one
// function that builds it, and the names a spec may therefore not set itself.
import type { ExecutableDesired, Generation, PeId, StoreDesired } from "./domain";
import { STORE_PASSWORD_FILE } from "./records";

export const RESEAT_ENV = {
  /** The PE's id. */
  peId: "RESEAT_PE_ID",
  /** Where the state volume is mounted. */
  stateDir: "RESEAT_STATE_DIR",
  /** The commit interval at creation (the control record, when present, overrides it live). */
  commitIntervalMs: "RESEAT_COMMIT_INTERVAL_MS",
  /** The executable's generation: its fencing token. */
  generation: "RESEAT_GENERATION",
  /** The persistent store (StoreEnv as JSON; a password file path, never the password). */
  store: "RESEAT_STORE",
  /** Where the control record is when not beside the volume (Kubernetes: mounted from a ConfigMap). */
  controlFile: "RESEAT_CONTROL_FILE",
  /** "1": nobody writes meta into the volume from outside; the library records its generation itself. */
  claimGeneration: "RESEAT_CLAIM_GENERATION",
  /**
   * "1": a standby successor: the state library parks (reports phase "parked", opens nothing) until it holds
   * the volume's writer lock and its generation is the newest, then takes over (see lock.ts).
   */
  standby: "RESEAT_STANDBY",
} as const;

export type ReseatEnvName = (typeof RESEAT_ENV)[keyof typeof RESEAT_ENV];

/** Names a spec's env may not set: reseat sets them, and a spec's value would be silently overridden. */
export const RESERVED_ENV_NAMES: readonly ReseatEnvName[] = Object.values(RESEAT_ENV);

export function isReservedEnvName(name: string): boolean {
  return (RESERVED_ENV_NAMES as readonly string[]).includes(name);
}

/** reseat's own switches (its processes, never a workload's; not reserved): tracing, volume access, fault injection. */
export const RESEAT_TOOL_ENV = {
  /** The provider appends a JSON line per call to this file. */
  traceFile: "RESEAT_TRACE_FILE",
  /** "engine": the Docker backend reads and writes records through the Engine API even on a local engine. */
  volumeAccess: "RESEAT_VOLUME_ACCESS",
  /** Crash-safety tests: the named fault point writes the marker file and the process is killed there. */
  faultPoint: "RESEAT_FAULT_POINT",
  faultMarker: "RESEAT_FAULT_MARKER",
} as const;

/** Where a directory store is mounted in the executable. */
export const STORE_MOUNT = "/reseat-store";

/** The RESEAT_STORE value: the store as the state library opens it. */
export type StoreEnv =
  | { kind: "directory"; path: string; keep: number; allowEmptyStart?: true }
  | {
      kind: "postgres";
      host: string;
      port: number;
      database: string;
      user: string;
      table: string;
      keep: number;
      allowEmptyStart?: boolean;
      passwordFile: string;
    };

/**
 * The RESEAT_STORE value the workload's state library reads (no secret in it: a file path instead).
 * The password file is in the state volume unless the engine mounts it elsewhere (Kubernetes: a Secret).
 */
export function storeEnv(store: StoreDesired, mountPath: string, passwordFile = `${mountPath}/${STORE_PASSWORD_FILE}`): string | undefined {
  switch (store.kind) {
    case "none":
      return undefined;
    case "directory":
      return JSON.stringify({ kind: "directory", path: STORE_MOUNT, keep: store.keep, ...(store.allowEmptyStart ? { allowEmptyStart: true } : {}) });
    case "postgres": {
      const { password: _secret, ...visible } = store;
      return JSON.stringify({ ...visible, passwordFile });
    }
  }
}

export interface WorkloadEnvInput {
  /** The spec's own env (never holding a reserved name: the schema refuses those). */
  env: Record<string, string>;
  peId: PeId;
  stateDir: string;
  commitIntervalMs: number;
  /** Absent where the engine cannot give one at creation (the Terraform flavour: meta has it). */
  generation?: Generation;
  /** The RESEAT_STORE value (storeEnv); absent: no persistent store. */
  store?: string;
  /** Where the engine mounts the control record, when not beside the volume. */
  controlFile?: string;
  /** The library records the generation into the volume itself (no one writes meta from outside). */
  claimGeneration?: boolean;
  /** Started as a standby successor: parks until the old writer lets go of the volume's lock. */
  standby?: boolean;
}

/**
 * The environment every engine gives the workload: its spec's env plus what the state library reads.
 * The generation is the fencing token, fixed at creation: an executable restarted by hand later keeps
 * its own (older) generation and is refused by the state library once a newer one exists.
 */
export function workloadEnvironment(input: WorkloadEnvInput): Record<string, string> {
  return {
    ...input.env,
    [RESEAT_ENV.peId]: input.peId,
    [RESEAT_ENV.stateDir]: input.stateDir,
    [RESEAT_ENV.commitIntervalMs]: String(input.commitIntervalMs),
    ...(input.generation !== undefined ? { [RESEAT_ENV.generation]: String(input.generation) } : {}),
    ...(input.controlFile ? { [RESEAT_ENV.controlFile]: input.controlFile } : {}),
    ...(input.claimGeneration ? { [RESEAT_ENV.claimGeneration]: "1" } : {}),
    ...(input.standby ? { [RESEAT_ENV.standby]: "1" } : {}),
    ...(input.store ? { [RESEAT_ENV.store]: input.store } : {}),
  };
}

/**
 * The workload env of one executable of a desired spec (Docker, the fake; Kubernetes adds its mounts). Every
 * executable of a "standby" hand-over starts as a standby: with no writer on the volume it takes the lock at once.
 */
export function workloadEnv(
  desired: Pick<ExecutableDesired, "env" | "peId" | "mountPath" | "commitIntervalMs" | "handover">,
  generation: Generation,
  store: string | undefined,
  engine: Pick<WorkloadEnvInput, "controlFile" | "claimGeneration" | "standby"> = {},
): Record<string, string> {
  return workloadEnvironment({
    env: desired.env,
    peId: desired.peId,
    stateDir: desired.mountPath,
    commitIntervalMs: desired.commitIntervalMs,
    generation,
    store,
    ...(desired.handover === "standby" ? { standby: true } : {}),
    ...engine,
  });
}
