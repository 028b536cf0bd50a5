/**
 * Workload-side state library (@reseat/state): runs inside the PE's container, uses only node: built-ins
 * (node:sqlite's backup(), the `timeout` option and isTransaction: Node >= 22.16). See openState() for the entry point.
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
  WriterLockTimeoutError,
} from "./errors";
export type { CommitListing, CommitRecord, DirectoryStoreConfig, FetchResult, PersistentStore, StoreConfig } from "./store/types";
export { DirectoryStore, type DirectoryStoreOptions } from "./store/directoryStore";
export { DEFAULT_CHUNK_BYTES, PostgresStore, PostgresStoreError, type PostgresStoreConfig, type PostgresStoreOptions } from "./store/postgresStore";
export { openStore, openStoreFromEnv, parseStoreConfig } from "./store/openStore";
