// The records reseat and the workload keep for a PE, each a typed value with one encoding. Who writes
// what: reseat (the provider, the controller) writes meta, control, revert, controller and the store
// password; the workload's state library writes status (and, where nobody writes into the claim from
// outside, meta) and the directory store's fence. Each engine keeps them natively (Docker: files beside
// the volume at `file`; Kubernetes: the claim's annotations, a ConfigMap key, a Secret), but always in
// this encoding, so both sides read what the other wrote, on every engine and across releases.
//
// Versions: every record written since 0.5 carries `"version": 1`; a record without one is the 0.4.0
// form (the same fields), read as version 1. A version newer than this code knows is refused with
// RecordCorruptError rather than misread. Decoding never throws anything else: not JSON, not an
// object, a field of the wrong type → RecordCorruptError naming the record and the field.

import type { ExecutableDesired, FailureBackoff, PeId } from "./domain";

/** A record could not be decoded: its text is damaged, or written by a newer reseat. */
export class RecordCorruptError extends Error {
  constructor(
    readonly record: string,
    readonly reason: string,
  ) {
    super(`reseat: the ${record} record is unreadable: ${reason}`);
    this.name = "RecordCorruptError";
  }
}

/** A record's codec: its name, where it lives beside the state volume, its version, and its encoding. */
export interface RecordCodec<T> {
  /** The record's name in errors and in the engine's own keys (a ConfigMap key on Kubernetes). */
  readonly name: string;
  /** Path of the file relative to the state volume's root (Docker, the fake; the workload's side). */
  readonly file: string;
  readonly version: number;
  encode(value: T): string;
  /** The value, or RecordCorruptError (never a SyntaxError of JSON.parse). */
  decode(text: string): T;
}

/** The directory inside the state volume that holds reseat's records (never the workload's data). */
export const RECORD_DIR = ".reseat";
export const RECORD_VERSION = 1;

type Fields = Record<string, unknown>;

function parseObject(record: string, text: string): Fields {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new RecordCorruptError(record, `not JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new RecordCorruptError(record, "not a JSON object");
  const version = (parsed as Fields).version;
  if (version !== undefined && (!Number.isSafeInteger(version) || (version as number) < 1))
    throw new RecordCorruptError(record, `"version" is ${JSON.stringify(version)}, not a positive integer`);
  if (typeof version === "number" && version > RECORD_VERSION) {
    throw new RecordCorruptError(record, `version ${version} was written by a newer reseat (this one reads up to version ${RECORD_VERSION})`);
  }
  return parsed as Fields;
}

function encodeObject(value: object): string {
  return JSON.stringify({ version: RECORD_VERSION, ...value });
}

function integer(record: string, fields: Fields, name: string, min = 0): number {
  const value = fields[name];
  if (!Number.isSafeInteger(value) || (value as number) < min)
    throw new RecordCorruptError(record, `"${name}" is ${JSON.stringify(value)}, not an integer ≥ ${min}`);
  return value as number;
}

function optional<T>(record: string, fields: Fields, name: string, check: (value: unknown) => boolean, what: string): T | undefined {
  const value = fields[name];
  if (value === undefined || value === null) return undefined;
  if (!check(value)) throw new RecordCorruptError(record, `"${name}" is ${JSON.stringify(value)}, not ${what}`);
  return value as T;
}

const isString = (value: unknown) => typeof value === "string";
const isBoolean = (value: unknown) => typeof value === "boolean";
const isInteger = (value: unknown) => Number.isSafeInteger(value);

function codec<T>(name: string, file: string, encode: (value: T) => string, decode: (fields: Fields) => T): RecordCodec<T> {
  return { name, file, version: RECORD_VERSION, encode, decode: (text) => decode(parseObject(name, text)) };
}

// --- meta: the generation (the fencing token) -------------------------------------------------------

/** The durable home of a PE's generation, beside its state volume. */
export interface VolumeMeta {
  peId: PeId;
  generation: number;
  volume: string;
  updatedAt: string;
}

export const META_RECORD: RecordCodec<VolumeMeta> = codec(
  "meta",
  `${RECORD_DIR}/meta.json`,
  (meta) => encodeObject({ peId: meta.peId, generation: meta.generation, volume: meta.volume, updatedAt: meta.updatedAt }),
  (fields) => ({
    generation: integer("meta", fields, "generation"),
    // The state library writes meta without the volume's name (Kubernetes); 0.1 volumes may lack the PE id.
    peId: optional<string>("meta", fields, "peId", isString, "a string") ?? "",
    volume: optional<string>("meta", fields, "volume", isString, "a string") ?? "",
    updatedAt: optional<string>("meta", fields, "updatedAt", isString, "a string") ?? "",
  }),
);

// --- control: what changes without a new executable --------------------------------------------------

/** The settings that change in place: the workload reads the commit interval, the controller the backoff. */
export interface ControlRecord {
  commitIntervalMs: number;
  failureBackoff?: FailureBackoff;
}

function backoffOf(fields: Fields): FailureBackoff | undefined {
  const value = optional<Fields>("control", fields, "failureBackoff", (v) => typeof v === "object" && !Array.isArray(v), "an object");
  if (!value) return undefined;
  return {
    initialMs: integer("control", value, "initialMs"),
    maxMs: integer("control", value, "maxMs"),
    resetAfterMs: integer("control", value, "resetAfterMs"),
  };
}

/** The control record of a desired spec. */
export function controlOf(desired: Pick<ExecutableDesired, "commitIntervalMs" | "failureBackoff">): ControlRecord {
  return { commitIntervalMs: desired.commitIntervalMs, ...(desired.failureBackoff ? { failureBackoff: desired.failureBackoff } : {}) };
}

export const CONTROL_RECORD: RecordCodec<ControlRecord> = codec(
  "control",
  `${RECORD_DIR}/control.json`,
  (control) => encodeObject({ commitIntervalMs: control.commitIntervalMs, ...(control.failureBackoff ? { failureBackoff: control.failureBackoff } : {}) }),
  (fields) => {
    const failureBackoff = backoffOf(fields);
    return { commitIntervalMs: integer("control", fields, "commitIntervalMs", 1), ...(failureBackoff ? { failureBackoff } : {}) };
  },
);

// --- revert: the last replacement that did not become ready --------------------------------------------

export interface RevertRecord {
  reverted: boolean;
  at?: string;
  failedExecutable?: string;
  failedSpecHash?: string;
  servingGeneration?: number;
  servingExecutable?: string;
  /** When the previous spec was ready again. */
  readyAt?: string;
  error?: string;
}

export const NO_REVERT: RevertRecord = { reverted: false };

export const REVERT_RECORD: RecordCodec<RevertRecord> = codec(
  "revert",
  `${RECORD_DIR}/revert.json`,
  (record) => encodeObject(record),
  (fields) => {
    const reverted = fields.reverted;
    if (!isBoolean(reverted)) throw new RecordCorruptError("revert", `"reverted" is ${JSON.stringify(reverted)}, not a boolean`);
    const record: RevertRecord = { reverted: reverted as boolean };
    for (const name of ["at", "failedExecutable", "failedSpecHash", "servingExecutable", "readyAt", "error"] as const) {
      const value = optional<string>("revert", fields, name, isString, "a string");
      if (value !== undefined) record[name] = value;
    }
    const serving = optional<number>("revert", fields, "servingGeneration", isInteger, "an integer");
    if (serving !== undefined) record.servingGeneration = serving;
    return record;
  },
);

// --- controller: what the failure controller did to a PE -----------------------------------------------

export interface ControllerRecord {
  restarts: number;
  consecutiveFailures: number;
  lastFailureAt: string | null;
  lastFailure: string | null;
  lastReseatAt: string | null;
  state: "ok" | "backoff" | "failing";
}

const CONTROLLER_STATES: readonly ControllerRecord["state"][] = ["ok", "backoff", "failing"];

export const CONTROLLER_RECORD: RecordCodec<ControllerRecord> = codec(
  "controller",
  `${RECORD_DIR}/controller.json`,
  (record) => encodeObject(record),
  (fields) => {
    // 0.4.0 always wrote a state; a record without one reads as "ok" (what its restarts left).
    const state = fields.state ?? "ok";
    if (!CONTROLLER_STATES.includes(state as ControllerRecord["state"]))
      throw new RecordCorruptError("controller", `"state" is ${JSON.stringify(state)}, not one of ${CONTROLLER_STATES.join(", ")}`);
    return {
      restarts: integer("controller", fields, "restarts"),
      consecutiveFailures: optional<number>("controller", fields, "consecutiveFailures", isInteger, "an integer") ?? 0,
      lastFailureAt: optional<string>("controller", fields, "lastFailureAt", isString, "a string") ?? null,
      lastFailure: optional<string>("controller", fields, "lastFailure", isString, "a string") ?? null,
      lastReseatAt: optional<string>("controller", fields, "lastReseatAt", isString, "a string") ?? null,
      state: state as ControllerRecord["state"],
    };
  },
);

// --- status: what the workload's state library says about its commits ---------------------------------

export type ResumeSource = "local" | "persistent" | "empty";

/**
 * A workload's phase: parked (a standby: started, checks passed, waiting for the volume's writer lock, nothing
 * opened; lock.ts) or serving (the writer).
 */
export type WorkloadPhase = "parked" | "serving";

export interface CommitSummary {
  seq: number;
  at: string;
  bytes: number;
  sha256: string;
  generation: number;
}

/** The workload's status (the state library writes it; the provider, `reseat status` and the Terraform flavour read it). */
export interface WorkloadStatus {
  peId: string;
  generation: number;
  /**
   * "serving": the writer (status.json). "parked": a standby waiting for the volume's lock, which has opened
   * nothing (its own file, standbyStatusFile). Statuses written before the hand-over have none: "serving".
   */
  phase: WorkloadPhase;
  /**
   * Set (decoding only) when the record names no phase: a library from before the writer lock wrote it, and
   * its writer holds no lock a standby could wait on (the routine then replaces staged). Absent otherwise.
   */
  phaseUnrecorded?: true;
  /** Where this generation's state came from; null while it did not start (see restoreFailed). */
  resumedFrom: ResumeSource | null;
  resumedSeq: number;
  /** Seq of the last applied (durable) write. */
  seq: number;
  commitIntervalMs: number;
  lastCommit: CommitSummary | null;
  lastCommitError: string | null;
  lastCommitAttemptAt: string | null;
  /**
   * Set when the volume held no state and the store's commits all failed verification: the workload
   * refused to start (resumedFrom null), or started empty because the PE allows it (resumedFrom "empty").
   * Absent in statuses of reseat 0.1.
   */
  restoreFailed: { reasons: string[]; at: string } | null;
  updatedAt: string;
}

const RESUME_SOURCES: readonly (ResumeSource | null)[] = ["local", "persistent", "empty", null];
const PHASES: readonly WorkloadPhase[] = ["parked", "serving"];

export const STATUS_RECORD: RecordCodec<WorkloadStatus> = {
  name: "status",
  file: `${RECORD_DIR}/status.json`,
  version: RECORD_VERSION,
  // Pretty, as operators read it by hand; the state library rewrites it often.
  encode: (status) => `${JSON.stringify({ version: RECORD_VERSION, ...status }, null, 2)}\n`,
  decode(text) {
    const fields = parseObject("status", text);
    const resumedFrom = fields.resumedFrom ?? null;
    if (!RESUME_SOURCES.includes(resumedFrom as ResumeSource | null)) throw new RecordCorruptError("status", `"resumedFrom" is ${JSON.stringify(resumedFrom)}`);
    const phase = fields.phase ?? "serving";
    if (!PHASES.includes(phase as WorkloadPhase))
      throw new RecordCorruptError("status", `"phase" is ${JSON.stringify(phase)}, not one of ${PHASES.join(", ")}`);
    const last = optional<Fields>("status", fields, "lastCommit", (v) => typeof v === "object" && !Array.isArray(v), "an object");
    const failed = optional<Fields>("status", fields, "restoreFailed", (v) => typeof v === "object" && !Array.isArray(v), "an object");
    return {
      peId: optional<string>("status", fields, "peId", isString, "a string") ?? "",
      generation: integer("status", fields, "generation"),
      phase: phase as WorkloadPhase,
      ...(fields.phase === undefined ? { phaseUnrecorded: true as const } : {}),
      resumedFrom: resumedFrom as ResumeSource | null,
      // Statuses of older workloads may lack what came later: only the generation and seq are required.
      resumedSeq: optional<number>("status", fields, "resumedSeq", isInteger, "an integer") ?? 0,
      seq: integer("status", fields, "seq"),
      commitIntervalMs: optional<number>("status", fields, "commitIntervalMs", isInteger, "an integer") ?? 0,
      lastCommit: last
        ? {
            seq: integer("status", last, "seq"),
            at: optional<string>("status", last, "at", isString, "a string") ?? "",
            bytes: integer("status", last, "bytes"),
            sha256: optional<string>("status", last, "sha256", isString, "a string") ?? "",
            generation: optional<number>("status", last, "generation", isInteger, "an integer") ?? 0,
          }
        : null,
      lastCommitError: optional<string>("status", fields, "lastCommitError", isString, "a string") ?? null,
      lastCommitAttemptAt: optional<string>("status", fields, "lastCommitAttemptAt", isString, "a string") ?? null,
      restoreFailed: failed
        ? { reasons: Array.isArray(failed.reasons) ? failed.reasons.map(String) : [], at: optional<string>("status", failed, "at", isString, "a string") ?? "" }
        : null,
      updatedAt: optional<string>("status", fields, "updatedAt", isString, "a string") ?? "",
    };
  },
};

// --- fence: the newest generation a directory store accepted -------------------------------------------

export interface FenceRecord {
  generation: number;
}

/** In the directory store, per PE: `<store>/<encodeURIComponent(peId)>/fence.json` (see storeFolder). */
export const FENCE_RECORD: RecordCodec<FenceRecord> = codec(
  "fence",
  "fence.json",
  (fence) => encodeObject({ generation: fence.generation }),
  (fields) => ({ generation: integer("fence", fields, "generation") }),
);

/** A PE's folder in a directory store (PEs share a store; each commits into its own folder). */
export function storeFolder(peId: PeId): string {
  return encodeURIComponent(peId);
}

// --- the store password: a secret, never in a record's text --------------------------------------------

/** Where the PostgreSQL store's password file is, relative to the state volume (Docker, the fake). */
export const STORE_PASSWORD_FILE = `${RECORD_DIR}/secrets/store-password`;
/** Its name as a key (Kubernetes: the key in the PE's password Secret). */
export const STORE_PASSWORD_KEY = "store-password";
