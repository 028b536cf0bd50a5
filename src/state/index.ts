/**
 * Workload-side state library: runs inside the PE's container, uses only node: built-ins (node:sqlite:
 * Node >= 22.5). See openState() for the entry point.
 */
export { openState } from "./openState";
export type { StateHandle } from "./stateHandle";
export { DEFAULT_COMMIT_INTERVAL_MS, type OpenStateOptions } from "./config";
export type { CommitSummary, ResumeSource, StateStatus, VolumeMeta } from "./volumeFiles";
export { statePaths, type StatePaths } from "./layout";
export {
  LocalStateCorruptError,
  ReseatStateError,
  RestoreFailedError,
  StaleCommitError,
  StaleGenerationError,
  StateClosedError,
  StateConfigError,
  StateWriteFailedError,
  UnsupportedStoreKindError,
} from "./errors";
export type {
  CommitListing,
  CommitRecord,
  DirectoryStoreConfig,
  FetchResult,
  PersistentStore,
  StoreConfig,
} from "./store/types";
export { DirectoryStore, type DirectoryStoreOptions } from "./store/directoryStore";
export {
  PostgresStore,
  PostgresStoreError,
  type PostgresStoreConfig,
  type PostgresStoreOptions,
} from "./store/postgresStore";
export { openStore, openStoreFromEnv, parseStoreConfig } from "./store/openStore";
