/** Base class so a workload can catch every state-library error with one `instanceof`. */
export class ReseatStateError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Missing or invalid configuration (env vars, options, RESEAT_STORE JSON). */
export class StateConfigError extends ReseatStateError {}

/**
 * A newer generation of this processing element exists, so this process must not write:
 * either the volume's meta.json names a newer generation ("volume"), or the persistent
 * store has accepted a commit from a newer generation ("store").
 */
export class StaleGenerationError extends ReseatStateError {
  constructor(
    readonly ownGeneration: number,
    readonly newerGeneration: number,
    readonly source: "volume" | "store",
  ) {
    super(
      source === "volume"
        ? `generation ${ownGeneration} is stale: the volume's meta record names generation ${newerGeneration}; refusing to write`
        : `generation ${ownGeneration} is stale: the persistent store has accepted generation ${newerGeneration}; commit rejected`,
    );
  }
}

/** The store refused a commit (or a generation claim) older than the newest generation it accepted. */
export class StaleCommitError extends StaleGenerationError {
  constructor(ownGeneration: number, newerGeneration: number) {
    super(ownGeneration, newerGeneration, "store");
  }
}

/** The local database cannot be used (not a reseat state database, or a 0.1 volume that cannot be migrated). */
export class LocalStateCorruptError extends ReseatStateError {}

/** An earlier write transaction failed; what reached the disk is unknown, so the handle refuses further writes. */
export class StateWriteFailedError extends ReseatStateError {}

/**
 * The volume holds no state and the persistent store lists commits, but none of them verifies (checksum,
 * SQLite integrity check, identity). Starting empty would hide that data and, once newer commits are made,
 * let pruning delete the last copies; so the workload refuses to start unless the PE allows starting empty.
 */
export class RestoreFailedError extends ReseatStateError {
  constructor(
    /** One line per commit tried, newest first: "<commit id>: <why it does not verify>". */
    readonly reasons: string[],
  ) {
    super(
      `refusing to start empty: the persistent store has ${reasons.length} commit(s) and none verifies ` +
        `(set persistentStore.allowEmptyStart to start empty anyway):\n  ${reasons.join("\n  ")}`,
    );
  }
}

/** RESEAT_STORE names a kind this library does not implement (yet). */
export class UnsupportedStoreKindError extends StateConfigError {
  constructor(readonly kind: string) {
    super(`unsupported store kind "${kind}" (supported: "directory", "postgres")`);
  }
}

/** The handle was closed (or is closing). */
export class StateClosedError extends ReseatStateError {
  constructor() {
    super("state handle is closed");
  }
}

/**
 * Another process holds the volume's writer lock (contract/lock.ts) and did not let go within the wait: it is
 * still the writer (alive, or stopped/frozen: the kernel releases the lock only when it exits or is killed).
 */
export class WriterLockTimeoutError extends ReseatStateError {
  constructor(
    readonly file: string,
    readonly timeoutMs: number,
  ) {
    super(
      `another process holds the volume's writer lock ${file} (still running, or stopped) and did not release it within ${timeoutMs}ms; refusing to open the state`,
    );
  }
}
