// Leases on top of the backend's atomic primitives: the PE lock (one replacement at a time per PE)
// and the controller's presence. The liveness rule is the one Kubernetes leader election uses: a
// holder is alive while its renewal count moves; an observer that sees it stand still for a whole
// lease, on its own monotonic clock, may break it. No wall clocks compared across hosts, no PIDs.
import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import type { Backend, LeaseRecord } from "../backend/backend";
import { poll } from "../util/retry";

export class LeaseLostError extends Error {
  constructor(readonly lease: LeaseRecord) {
    super(
      `reseat: lost the lease "${lease.name}" (held as ${lease.holder}): it was broken or removed (e.g. \`docker container prune\`); stopping before acting on stale ownership`,
    );
    this.name = "LeaseLostError";
  }
}

export class LeaseBusyError extends Error {
  constructor(
    readonly current: LeaseRecord,
    waitedMs: number,
  ) {
    super(`reseat: "${current.name}" is held by ${current.holder} (still renewing after ${Math.round(waitedMs)} ms of waiting); try again later`);
    this.name = "LeaseBusyError";
  }
}

export interface HeldLease {
  readonly record: LeaseRecord;
  /** Throws LeaseLostError once a renewal found the lease gone or taken over. */
  assertHeld(): void;
  /** Asks the engine now (not the last renewal): for right before an irreversible step. */
  confirm(): Promise<void>;
  readonly lost: boolean;
  release(): Promise<void>;
}

export interface LeaseOptions {
  leaseMs: number;
  /** How long to wait for a live holder before giving up. */
  waitMs: number;
  /** Renewal period (default: a third of the lease). */
  renewEveryMs?: number;
  /** Poll period while waiting (default: grows from 20 ms to 250 ms). */
  pollMs?: number;
  /** Stops waiting (the caller no longer needs the lease): the acquisition rejects with RetryAbortedError. */
  signal?: AbortSignal;
}

/**
 * Holdings this process finished with but could not release (the engine was going away): nobody uses
 * them any more, so this process takes them back at once instead of waiting a whole lease for them.
 */
const abandoned = new Set<string>();
const holdingKey = (lease: LeaseRecord) => `${lease.name}\u0000${lease.holder}\u0000${lease.token}`;

export async function acquireLease(backend: Backend, name: string, holder: string, options: LeaseOptions): Promise<HeldLease> {
  // What we last saw of the current holding, and when (our clock) it last moved.
  let seen: { token: string; renewals: number; at: number } | undefined;
  let current: LeaseRecord | undefined;
  return poll<HeldLease>(
    {
      what: `the lease "${name}"`,
      pauseMs: (attempt) => options.pollMs ?? Math.min(20 * 2 ** attempt, 250),
      deadlineMs: options.waitMs,
      signal: options.signal,
      exhausted: (_attempts, waitedMs) => new LeaseBusyError(current!, waitedMs),
    },
    async () => {
      let result = await backend.tryAcquireLease(name, holder, options.leaseMs);
      if (result.acquired) return hold(backend, result.lease, options);
      current = result.current;
      const now = performance.now();
      let breakIt = abandoned.delete(holdingKey(current));
      if (!breakIt && (!seen || seen.token !== current.token || seen.renewals !== current.renewals)) {
        seen = { token: current.token, renewals: current.renewals, at: now };
      } else if (!breakIt && now - seen!.at > Math.max(current.leaseMs, 1)) {
        breakIt = true; // stood still for a whole lease: its holder is gone
      }
      if (!breakIt) return undefined;
      // Break exactly that holding (ours, abandoned, or a dead holder's) and take it at once.
      await backend.releaseLease(current);
      seen = undefined;
      result = await backend.tryAcquireLease(name, holder, options.leaseMs);
      if (result.acquired) return hold(backend, result.lease, options);
      current = result.current;
      return undefined;
    },
  );
}

function hold(backend: Backend, record: LeaseRecord, options: LeaseOptions): HeldLease {
  let lost = false;
  let released = false;
  let renewing: Promise<void> = Promise.resolve();
  let renewalInFlight = false;
  const timer = setInterval(
    () => {
      // One renewal at a time: while the engine is slow (a call waits for its deadline), ticks are skipped, not queued.
      if (renewalInFlight) return;
      renewalInFlight = true;
      renewing = renewing
        .then(async () => {
          if (lost || released) return;
          const still = await backend.renewLease(record).catch(() => true); // an engine hiccup is not a loss; the count stands still
          if (!still) lost = true;
        })
        .finally(() => (renewalInFlight = false));
    },
    options.renewEveryMs ?? Math.max(Math.floor(options.leaseMs / 3), 10),
  );
  timer.unref();
  return {
    record,
    get lost() {
      return lost;
    },
    assertHeld() {
      if (lost) throw new LeaseLostError(record);
    },
    async confirm() {
      if (lost || !(await backend.holdsLease(record))) {
        lost = true;
        throw new LeaseLostError(record);
      }
    },
    async release() {
      released = true;
      clearInterval(timer);
      await renewing;
      if (lost) return;
      try {
        await backend.releaseLease(record);
      } catch (error) {
        abandoned.add(holdingKey(record));
        throw error;
      }
    },
  };
}

/** Runs `work` holding the lease; work calls assertHeld() before each step that acts on the engine. */
export async function withLease<T>(backend: Backend, name: string, holder: string, options: LeaseOptions, work: (lease: HeldLease) => Promise<T>): Promise<T> {
  const lease = await acquireLease(backend, name, holder, options);
  try {
    return await work(lease);
  } finally {
    await lease.release().catch(() => undefined);
  }
}

/** "host:pid:role": who holds a lease, for people reading errors and `reseat status` (never parsed). */
export function holderName(role: string): string {
  return `${hostname()}:${process.pid}:${role}`;
}
