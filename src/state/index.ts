/**
 * Workload-side state library: runs inside the PE's container, uses only node: built-ins.
 * See openState() for the entry point.
 */
export { openState } from "./openState";
export type { StateHandle } from "./stateHandle";
export { DEFAULT_COMMIT_INTERVAL_MS, type OpenStateOptions } from "./config";
export type { CommitSummary, ResumeSource, StateStatus, VolumeMeta } from "./volumeFiles";
export { statePaths, type StatePaths } from "./layout";
export {
  JournalCorruptError,
  JournalWriteFailedError,
  LocalStateCorruptError,
  ReseatStateError,
  StaleCommitError,
  StaleGenerationError,
  StateClosedError,
  StateConfigError,
  UnsupportedStoreKindError,
} from "./errors";
export type {
  CommitListing,
  CommitRecord,
  DirectoryStoreConfig,
  PersistentStore,
  StoreConfig,
  VerifiedCommit,
} from "./store/types";
export { DirectoryStore, type DirectoryStoreOptions } from "./store/directoryStore";
export {
  PostgresStore,
  PostgresStoreError,
  type PostgresStoreConfig,
  type PostgresStoreOptions,
} from "./store/postgresStore";
export { openStore, openStoreFromEnv, parseStoreConfig } from "./store/openStore";
