// `reseat watch`: the failure controller. Level-triggered: on start, on every reconnect and on a
// periodic resync it lists what runs and reseats every PE whose executable failed; engine events are
// only hints that make it react sooner. It reseats with the same routine the provider uses: a new
// executable on the same host, bound to the kept volume, generation + 1, resumed from local state.
// It talks to the engine only through the Backend seam.
import { Backend, DEFAULT_FAILURE_BACKOFF, EventStream, ExecutableDesired, FailureBackoff, ObservedExecutable } from "../backend/backend";
import { openBackend } from "../backend/open";
import { HeldLease, acquireLease, holderName } from "../lease/lease";
import { backoffDelay, nextFailureCount } from "../plan/backoff";
import { CONTROLLER_RECORD, RecordCorruptError, type ControllerRecord } from "@reseat/state/contract";
import { reseat, workloadOwner } from "../replacement/reseat";
import { poll, retry } from "../util/retry";

/** The lease a running controller holds on its engine: `reseat status` reads it to say who watches. */
export const CONTROLLER_LEASE = "controller";

/** The controller's record of a PE (the contract's controller record). */
export type ControllerStatus = ControllerRecord;

export type WatchEventKind =
  | "watching"
  | "standby"
  | "disconnected"
  | "reconnected"
  | "failure"
  | "backoff"
  | "reseated"
  | "reseat-failed"
  | "crash-looping"
  | "skipped"
  /** Our presence lease was found lost; one re-acquisition starts (never two at once). */
  | "presence-lost"
  /** That re-acquisition did not win (held by another, or the engine failed): the next tick tries again. */
  | "presence-waiting"
  /** It won: acting again, after a resync. */
  | "presence-regained"
  /** A re-acquisition won when the presence was no longer needed (stopping, or already held): released at once. */
  | "presence-released";

export interface WatchEvent {
  at: string;
  kind: WatchEventKind;
  peId?: string;
  reason?: string;
  generation?: number;
  executableName?: string;
  consecutiveFailures?: number;
  delayMs?: number;
  error?: string;
}

export interface WatchOptions {
  backend?: Backend;
  /** Called for every decision; the CLI prints these (as JSON lines with --json). */
  onEvent?: (event: WatchEvent) => void;
  /** Consecutive failures from which a PE is reported as crash-looping. */
  crashLoopAfter?: number;
  /** How often the controller re-lists everything even without events (default 10 s). */
  resyncMs?: number;
  /** Lease of the controller's presence (default 10 s). */
  leaseMs?: number;
  /** How often to try the engine again while it is away (default 500 ms). */
  reconnectMs?: number;
  /**
   * How many PEs are reseated at once (default 8): a node's worth of fleet members failing together is
   * repaired a few at a time, so the calls to the engine stay bounded whatever the number of PEs.
   */
  maxConcurrentReseats?: number;
}

export interface Watcher {
  stop(): Promise<void>;
  /** Resolves when nothing is scheduled or in progress (tests and `--once` use it). */
  idle(): Promise<void>;
}

interface PeTracking {
  consecutiveFailures: number;
  /** The count this failure will have if it turns out to be one (decided under the lock). */
  pendingCount: number;
  lastReseatAt?: number;
  timer?: NodeJS.Timeout;
  /** Its backoff is over and it waits for a free reseat lane (maxConcurrentReseats). */
  queued: boolean;
  busy: boolean;
  /** An unhealthy (still running) executable must be replaced, not adopted. */
  replaceRunning: boolean;
  /**
   * The spec and backoff last seen for this PE. A reseat that fails removes its new executable, so a
   * retry may find no executable left to read them from; what was failing is retried all the same.
   */
  desired?: ExecutableDesired;
  backoff?: FailureBackoff;
}

export async function watch(options: WatchOptions = {}): Promise<Watcher> {
  const backend = options.backend ?? openBackend(undefined);
  const emit = (event: Omit<WatchEvent, "at">) => options.onEvent?.({ at: new Date().toISOString(), ...event });
  const crashLoopAfter = options.crashLoopAfter ?? 3;
  const resyncMs = options.resyncMs ?? 10_000;
  const reconnectMs = options.reconnectMs ?? 500;
  const holder = holderName("controller");
  const tracking = new Map<string, PeTracking>();
  const reseatLanes = lanes(options.maxConcurrentReseats ?? 8);
  const inFlight = new Set<Promise<void>>();
  let stopped = false;
  /** Acting is allowed only while subscribed to a live engine (never while it shuts down or is away). */
  let connected = false;
  let stream: EventStream | undefined;
  let presence: HeldLease | undefined;
  let resyncTimer: NodeJS.Timeout | undefined;
  /** Ends every wait of this controller (reconnect pauses, presence re-acquisition) when it stops. */
  const stopping = new AbortController();
  /** The one presence re-acquisition in flight, if any. */
  let reacquiring: Promise<void> | undefined;
  /** Acting on the engine needs our presence: while it is lost, another controller may be acting. */
  const present = () => !presence?.lost;

  const track = (peId: string): PeTracking => {
    let t = tracking.get(peId);
    if (!t) tracking.set(peId, (t = { consecutiveFailures: 0, pendingCount: 0, queued: false, busy: false, replaceRunning: false }));
    return t;
  };

  /** A failure of one PE: count it, wait its backoff, then handle it. Coalesces bursts. */
  const onFailure = async (peId: string, reason: string, replaceRunning = false): Promise<void> => {
    const t = track(peId);
    if (t.busy || t.timer || t.queued || stopped || !connected || !present()) return; // already being handled (the handler reads fresh state), or left to the resync
    const backoff = (await currentBackoff(backend, peId).catch(() => undefined)) ?? t.backoff ?? DEFAULT_FAILURE_BACKOFF;
    if (t.busy || t.timer || t.queued) return;
    t.backoff = backoff;
    // Counted only if, under the lock, it turns out to be a failure (a graceful stop by `pulumi up`
    // also ends in a die event, and is skipped).
    t.pendingCount = nextFailureCount(t.consecutiveFailures, t.lastReseatAt, Date.now(), backoff);
    t.replaceRunning = replaceRunning;
    const delayMs = backoffDelay(t.pendingCount, backoff);
    if (delayMs > 0) emit({ kind: "backoff", peId, delayMs, consecutiveFailures: t.pendingCount, reason });
    t.timer = setTimeout(() => {
      t.timer = undefined;
      t.queued = true;
      const run = reseatLanes
        .run(() => {
          t.queued = false;
          return handle(peId, reason);
        })
        .catch((error: Error) => emit({ kind: "reseat-failed", peId, reason, error: error.message }))
        .finally(() => {
          t.queued = false;
          inFlight.delete(run);
        });
      inFlight.add(run);
    }, delayMs);
  };

  const handle = async (peId: string, reason: string): Promise<void> => {
    const t = track(peId);
    if (!connected || stopped || !present()) return; // the resync after reconnecting (or regaining the presence) picks it up again
    t.busy = true;
    let retry = false;
    try {
      // An engine going down stops its containers while the event stream is still open: those stops
      // are not failures to act on. It no longer takes new calls, so ask it first; if it is going
      // away, the resync after reconnecting (or the next periodic one) sees what really failed.
      if (
        !(await backend.ping().then(
          () => true,
          () => false,
        ))
      ) {
        emit({ kind: "skipped", peId, reason: "the engine is not taking new calls (shutting down?): left to the next resync" });
        return;
      }
      // Only a retry of our own failed reseat may use the remembered spec: otherwise an executable that
      // is gone was removed on purpose.
      const isRetry = reason.startsWith("previous reseat failed");
      const desired = (await latestDesired(backend, peId)) ?? (isRetry ? t.desired : undefined);
      if (desired) t.desired = desired;
      if (!desired) {
        emit({ kind: "skipped", peId, reason: "no executable with a recorded spec left (removed on purpose?)" });
        return;
      }
      const replaceRunning = t.replaceRunning;
      presence?.assertHeld();
      const result = await reseat(backend, desired, {
        holder,
        replaceRunning,
        keepControl: true,
        // Judged fresh under the lock: only a PE whose executable failed and is still there
        // (exited, or running but unhealthy) is reseated. A PE that `pulumi up` or a person just
        // changed or removed is left alone.
        stillNeeded: (observed) => connected && (replaceRunning || needsReseat(observed) || (isRetry && !observed.some((e) => e.running))),
      });
      if (!result) {
        emit({ kind: "skipped", peId, reason: "already converged by someone else" });
        return;
      }
      t.consecutiveFailures = t.pendingCount;
      emit({ kind: "failure", peId, reason, consecutiveFailures: t.consecutiveFailures });
      if (t.consecutiveFailures >= crashLoopAfter) emit({ kind: "crash-looping", peId, consecutiveFailures: t.consecutiveFailures, reason });
      t.lastReseatAt = Date.now();
      emit({ kind: "reseated", peId, reason, generation: result.generation, executableName: result.executableName });
      await writeControllerStatus(backend, desired, t, reason, "ok").catch(() => undefined);
    } catch (error) {
      retry = true;
      t.consecutiveFailures = t.pendingCount;
      emit({ kind: "reseat-failed", peId, reason, error: (error as Error).message, consecutiveFailures: t.consecutiveFailures });
    } finally {
      t.busy = false;
    }
    if (stopped || !connected) return;
    if (retry) {
      await onFailure(peId, `previous reseat failed (${reason})`, t.replaceRunning);
    } else if (needsReseat(await backend.listExecutables(peId).catch(() => []))) {
      // It failed again while we were busy (its failure event was coalesced away): count it now.
      await onFailure(peId, "failed again right after being reseated");
    }
  };

  /** The level trigger: whatever failed, whether or not we saw an event for it. */
  const resync = async (why: string): Promise<void> => {
    if (!connected || stopped || !present()) return;
    const all = await backend.listExecutables().catch(() => undefined);
    if (!all) return;
    const byPe = new Map<string, ObservedExecutable[]>();
    for (const e of all) byPe.set(e.peId, [...(byPe.get(e.peId) ?? []), e]);
    for (const [peId, executables] of byPe) {
      if (needsReseat(executables)) void onFailure(peId, `found failed ${why}`);
    }
  };

  /** Subscribe first, then look: a failure between the two is seen by one or the other. */
  const connect = async (): Promise<void> => {
    stream = await backend.watchExecutables((event) => {
      if (event.kind === "removed") return; // removal is on purpose (or a retire); nothing to reseat
      void onFailure(event.peId, event.reason, event.kind === "unhealthy");
    });
    connected = true;
    void stream.ended.then((error) => onDisconnect(error));
  };

  const onDisconnect = (error: Error | undefined): void => {
    if (stopped) return;
    connected = false;
    // Whatever was scheduled is dropped: the engine may be shutting down (its own stops look like
    // failures). After reconnecting, the resync sees what really failed.
    for (const t of tracking.values()) {
      if (t.timer) clearTimeout(t.timer);
      t.timer = undefined;
    }
    emit({ kind: "disconnected", error: error?.message });
    void reconnectLoop();
  };

  /** Until the engine answers again (or the controller stops): never rejects. */
  const reconnectLoop = async (): Promise<void> => {
    const back = await retry({ what: "the engine to answer again", pauseMs: reconnectMs, signal: stopping.signal }, async () => {
      await backend.ping();
      await connect();
    }).then(
      () => true,
      () => false, // stopped
    );
    if (!back) return;
    emit({
      kind: "reconnected",
      reason: await backend.identity().then(
        (engine) => engine.name,
        () => "the engine",
      ),
    });
    await resync("after reconnecting");
  };

  // Presence: one active controller per engine; a second one waits as a standby.
  const existing = await backend.readLease(CONTROLLER_LEASE).catch(() => undefined);
  if (existing) emit({ kind: "standby", reason: `a controller is already watching (${existing.holder}); waiting for it to stop` });
  const leaseMs = options.leaseMs ?? 10_000;
  presence = await acquireLease(backend, CONTROLLER_LEASE, holder, { leaseMs, waitMs: Number.MAX_SAFE_INTEGER });

  /**
   * Our presence was lost (e.g. its lease pruned, or broken while the engine was away): take it again.
   * One re-acquisition at a time, each bounded (long enough to outwait a dead holder's lease), its
   * failure logged and retried on a later tick; a win nobody needs any more is released at once.
   */
  const reacquirePresence = (): void => {
    if (reacquiring || stopped) return;
    emit({ kind: "presence-lost", reason: "the controller's presence lease is gone or taken over: not acting until it is taken again" });
    const attempt = acquireLease(backend, CONTROLLER_LEASE, holder, { leaseMs, waitMs: resyncMs + 2 * leaseMs, signal: stopping.signal });
    reacquiring = attempt
      .then(async (lease) => {
        if (stopped || present()) {
          await lease.release().catch(() => undefined);
          emit({ kind: "presence-released", reason: stopped ? "the controller is stopping" : "the presence is already held" });
          return;
        }
        const lost = presence;
        presence = lease;
        await lost?.release().catch(() => undefined); // stops the lost holding's renewal timer (nothing to delete)
        emit({ kind: "presence-regained", reason: "acting again" });
        await resync("after taking the presence again");
      })
      .catch((error: Error) => {
        if (!stopped) emit({ kind: "presence-waiting", error: error.message, reason: "retried on the next tick" });
      })
      .finally(() => (reacquiring = undefined));
  };

  await connect();
  emit({ kind: "watching", reason: `on ${(await backend.identity()).name}` });
  await resync("when the controller started");
  resyncTimer = setInterval(() => {
    if (!present()) {
      // Our presence lease was removed (e.g. pruned): take it again before acting further.
      reacquirePresence();
      return;
    }
    void resync("at resync");
  }, resyncMs);
  resyncTimer.unref();

  return {
    async stop() {
      stopped = true;
      stopping.abort();
      if (resyncTimer) clearInterval(resyncTimer);
      stream?.close();
      for (const t of tracking.values()) if (t.timer) clearTimeout(t.timer);
      await Promise.allSettled([...inFlight, ...(reacquiring ? [reacquiring] : [])]);
      await presence?.release().catch(() => undefined);
    },
    async idle() {
      await poll({ what: "the controller to be idle", pauseMs: 50 }, async () => {
        const pending = [...tracking.values()].some((t) => t.timer || t.queued || t.busy);
        if (!pending && inFlight.size === 0) return true;
        await Promise.allSettled([...inFlight]);
        return undefined;
      });
    },
  };
}

/** At most `count` tasks run at once; the others wait their turn, in order. */
function lanes(count: number): { run<T>(task: () => Promise<T>): Promise<T> } {
  if (!Number.isSafeInteger(count) || count < 1) throw new Error(`reseat watch: maxConcurrentReseats must be a whole number ≥ 1 (got ${count})`);
  let running = 0;
  const waiting: (() => void)[] = [];
  return {
    async run<T>(task: () => Promise<T>): Promise<T> {
      if (running >= count) await new Promise<void>((resolve) => waiting.push(resolve));
      else running++;
      try {
        return await task();
      } finally {
        // Hand the lane to the next waiter directly (running stays the same), or free it.
        const next = waiting.shift();
        if (next) next();
        else running--;
      }
    },
  };
}

/** A PE needs reseating when none of its executables runs and a failed one is still there. */
export function needsReseat(observed: ObservedExecutable[]): boolean {
  return !observed.some((e) => e.running) && observed.some((e) => !e.running);
}

/** The backoff in force: the volume's control file (updated in place), else the executable's record. */
async function currentBackoff(backend: Backend, peId: string): Promise<FailureBackoff | undefined> {
  const desired = await latestDesired(backend, peId);
  if (!desired) return undefined;
  // An unreadable control record falls back to the executable's own spec.
  const control = await backend.readControl(desired.volumeName).catch(() => undefined);
  return control?.failureBackoff ?? desired.failureBackoff;
}

/** The spec of the PE's newest executable (the password, if any, stays in the volume). */
async function latestDesired(backend: Backend, peId: string): Promise<ExecutableDesired | undefined> {
  const newest = (await backend.listExecutables(peId)).sort((a, b) => b.generation - a.generation)[0];
  return newest ? backend.desiredOf(newest.id) : undefined;
}

async function writeControllerStatus(
  backend: Backend,
  desired: ExecutableDesired,
  t: PeTracking,
  reason: string,
  state: ControllerStatus["state"],
): Promise<void> {
  // A corrupt record is replaced (its count is lost), never a reason to stop recording this PE.
  const restarts = (await readControllerStatus(backend, desired.volumeName)).status?.restarts ?? 0;
  const now = new Date().toISOString();
  const status: ControllerStatus = {
    restarts: restarts + 1,
    consecutiveFailures: t.consecutiveFailures,
    lastFailureAt: now,
    lastFailure: reason,
    lastReseatAt: now,
    state: t.consecutiveFailures >= 3 ? "failing" : state,
  };
  await backend.writeControllerRecord(desired.volumeName, status, await workloadOwner(backend, desired));
}

/**
 * The controller's record of a PE, read defensively: a record that is not what the controller writes is
 * reported (`corrupt`), never thrown, so one PE's damaged record breaks neither watch nor status for the others.
 */
export function parseControllerStatus(text: string | undefined): { status?: ControllerStatus; corrupt?: string } {
  if (text === undefined || text === "") return {};
  try {
    return { status: CONTROLLER_RECORD.decode(text) };
  } catch (error) {
    return { corrupt: (error as Error).message };
  }
}

/** The controller's record of a PE as the engine keeps it, read as parseControllerStatus does (an engine error: none). */
export async function readControllerStatus(backend: Backend, volumeName: string): Promise<{ status?: ControllerStatus; corrupt?: string }> {
  try {
    const status = await backend.readControllerRecord(volumeName);
    return status ? { status } : {};
  } catch (error) {
    return error instanceof RecordCorruptError ? { corrupt: error.message } : {};
  }
}
