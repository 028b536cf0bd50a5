import { RESEAT_ENV } from "../contract";
import { StateConfigError, UnsupportedStoreKindError } from "../errors";
import { DirectoryStore } from "./directoryStore";
import { PostgresStore } from "./postgresStore";
import type { PersistentStore, StoreConfig } from "./types";

/** Parse the RESEAT_STORE JSON; undefined/empty means "no persistent store". */
export function parseStoreConfig(json: string | undefined): StoreConfig | null {
  if (json === undefined || json.trim() === "") return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new StateConfigError(`${RESEAT_ENV.store} is not valid JSON: ${json}`, { cause: error });
  }
  if (typeof parsed !== "object" || parsed === null || typeof (parsed as { kind?: unknown }).kind !== "string") {
    throw new StateConfigError(`${RESEAT_ENV.store} must be a JSON object with a string "kind", got: ${json}`);
  }
  return parsed as StoreConfig;
}

/** Open the store a config describes, for one PE. New kinds (e.g. "postgres") slot in here. */
export function openStore(config: StoreConfig, peId: string): PersistentStore {
  switch (config.kind) {
    case "directory": {
      const { path, keep } = config as { path?: unknown; keep?: unknown };
      if (typeof path !== "string" || path === "") throw new StateConfigError('directory store needs a string "path"');
      if (keep !== undefined && typeof keep !== "number") throw new StateConfigError('directory store "keep" must be a number');
      return new DirectoryStore(path, peId, keep === undefined ? {} : { keep });
    }
    case "postgres":
      return PostgresStore.fromConfig(config, peId);
    default:
      throw new UnsupportedStoreKindError(config.kind);
  }
}

/** The store named by RESEAT_STORE in `env`, or null when it is unset. */
export function openStoreFromEnv(peId: string, env: NodeJS.ProcessEnv = process.env): PersistentStore | null {
  const config = parseStoreConfig(env[RESEAT_ENV.store]);
  return config ? openStore(config, peId) : null;
}
