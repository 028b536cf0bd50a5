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
        ? `generation ${ownGeneration} is stale: the volume's meta.json names generation ${newerGeneration}; refusing to write`
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

/** The journal is damaged somewhere other than its tail, so dropping the damage would lose acknowledged writes. */
export class JournalCorruptError extends ReseatStateError {
  constructor(
    readonly path: string,
    readonly offset: number,
    reason: string,
  ) {
    super(`journal ${path} is corrupt at byte ${offset}: ${reason}`);
  }
}

/** The local snapshot (or snapshot bytes from the store) cannot be parsed, or snapshot and journal do not line up. */
export class LocalStateCorruptError extends ReseatStateError {}

/** An earlier journal append or fsync failed; the on-disk tail is unknown, so the handle refuses further writes. */
export class JournalWriteFailedError extends ReseatStateError {}

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
