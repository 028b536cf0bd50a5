import { META_RECORD, RESEAT_ENV, type WorkloadStatus } from "./contract";
import { StateConfigError } from "./errors";
import { openStore, parseStoreConfig } from "./store/openStore";
import type { PersistentStore, StoreConfig } from "./store/types";
import { isPositiveInteger, type VolumeMeta } from "./volumeFiles";

export const DEFAULT_COMMIT_INTERVAL_MS = 30_000;

/** Options of openState(); each falls back to the RESEAT_* environment the provider sets. */
export interface OpenStateOptions {
  /** Mount path of the state volume (default: RESEAT_STATE_DIR). */
  stateDir?: string;
  /** Default: RESEAT_PE_ID, else meta.json's peId. */
  peId?: string;
  /** This executable's generation (default: RESEAT_GENERATION, else meta.json's, else 0). */
  generation?: number;
  /** Used until control.json gives one (default: RESEAT_COMMIT_INTERVAL_MS, else 30 s). */
  commitIntervalMs?: number;
  /** A store, a store config, or null for none (default: RESEAT_STORE). */
  store?: PersistentStore | StoreConfig | null;
  /** On SIGTERM/SIGINT: final commit, then process.exit (default false). */
  handleSignals?: boolean;
  /** Bound on the final commit when a signal arrives (default 8 s, under Docker's 10 s grace period). */
  signalTimeoutMs?: number;
  /**
   * Start empty even when the store lists commits of which none verifies (default: RESEAT_STORE's
   * "allowEmptyStart", else false: such a start is refused with RestoreFailedError).
   */
  allowEmptyStart?: boolean;
  /** First retry delay after a failed commit (default 500 ms); doubles up to retryMaxMs (default 30 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /**
   * Start as a standby successor (default: RESEAT_STANDBY "1"): after its checks (config, generation fence)
   * the process reports phase "parked" (its own standby status file, and `onParked`), opens nothing, and waits
   * — for ever — for the volume's writer lock; holding it, it checks the fence again, records its generation
   * in the volume and opens the state. The old writer's graceful stop (final commit, exit) or death hands over.
   */
  standby?: boolean;
  /** Called once parked, with the parked status (e.g. for the workload's own status endpoint). */
  onParked?: (status: WorkloadStatus) => void;
  /**
   * Without standby: how long to wait for the writer lock held by a process still letting go (default 10 s,
   * then WriterLockTimeoutError).
   */
  lockTimeoutMs?: number;
  /** How often a waiter tries the writer lock (default 2 ms): the hand-over's added latency is up to this. */
  lockPollMs?: number;
  /** Environment to read instead of process.env (tests). */
  env?: NodeJS.ProcessEnv;
}

export interface ResolvedConfig {
  stateDir: string;
  peId: string;
  generation: number;
  fallbackIntervalMs: number;
  store: PersistentStore | null;
  handleSignals: boolean;
  signalTimeoutMs: number;
  allowEmptyStart: boolean;
  retryBaseMs: number;
  retryMaxMs: number;
  standby: boolean;
  lockTimeoutMs: number;
  lockPollMs: number;
}

export function resolveStateDir(options: OpenStateOptions): string {
  const stateDir = options.stateDir ?? (options.env ?? process.env)[RESEAT_ENV.stateDir];
  if (!stateDir) throw new StateConfigError(`no state directory: pass stateDir or set ${RESEAT_ENV.stateDir}`);
  return stateDir;
}

export function resolveConfig(options: OpenStateOptions, stateDir: string, meta: VolumeMeta | null): ResolvedConfig {
  const env = options.env ?? process.env;
  const peId = options.peId ?? nonEmpty(env[RESEAT_ENV.peId]) ?? meta?.peId;
  if (!peId) throw new StateConfigError(`no PE id: pass peId, set ${RESEAT_ENV.peId}, or provide ${META_RECORD.file}`);
  const config: ResolvedConfig = {
    stateDir,
    peId,
    generation: options.generation ?? integerFromEnv(env, RESEAT_ENV.generation, 0) ?? meta?.generation ?? 0,
    fallbackIntervalMs: options.commitIntervalMs ?? integerFromEnv(env, RESEAT_ENV.commitIntervalMs, 1) ?? DEFAULT_COMMIT_INTERVAL_MS,
    store: resolveStore(options.store, env, peId),
    handleSignals: options.handleSignals ?? false,
    signalTimeoutMs: options.signalTimeoutMs ?? 8_000,
    allowEmptyStart: options.allowEmptyStart ?? parseStoreConfig(env[RESEAT_ENV.store])?.allowEmptyStart === true,
    retryBaseMs: options.retryBaseMs ?? 500,
    retryMaxMs: options.retryMaxMs ?? 30_000,
    standby: options.standby ?? env[RESEAT_ENV.standby] === "1",
    lockTimeoutMs: options.lockTimeoutMs ?? 10_000,
    lockPollMs: options.lockPollMs ?? 2,
  };
  for (const name of ["fallbackIntervalMs", "signalTimeoutMs", "retryBaseMs", "retryMaxMs", "lockTimeoutMs", "lockPollMs"] as const) {
    if (!isPositiveInteger(config[name])) throw new StateConfigError(`${name} must be a positive integer, got ${config[name]}`);
  }
  return config;
}

function resolveStore(store: OpenStateOptions["store"], env: NodeJS.ProcessEnv, peId: string): PersistentStore | null {
  if (store === null) return null;
  if (store === undefined) {
    const config = parseStoreConfig(env[RESEAT_ENV.store]);
    return config ? openStore(config, peId) : null;
  }
  return "commit" in store && typeof store.commit === "function" ? (store as PersistentStore) : openStore(store as StoreConfig, peId);
}

function integerFromEnv(env: NodeJS.ProcessEnv, name: string, min: number): number | undefined {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) throw new StateConfigError(`${name} must be an integer >= ${min}, got "${raw}"`);
  return value;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
