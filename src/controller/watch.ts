// `reseat watch`: the failure controller. It follows the Docker Engine's events for PE executables
// (die, oom, unhealthy) and reseats a failed PE with the same routine the provider uses: a new
// executable on the same host, bound to the kept volume, generation + 1, resumed from local state.
import { DEFAULT_FAILURE_BACKOFF, ExecutableDesired, FailureBackoff, LABELS, ObservedExecutable } from "../backend/backend";
import { DockerBackend, lockHolder } from "../backend/docker/dockerBackend";
import { backoffDelay, nextFailureCount } from "../plan/backoff";
import { CONTROL_PATH, reseat } from "../replacement/reseat";

export const CONTROLLER_STATUS_PATH = ".reseat/controller.json";

export interface ControllerStatus {
  restarts: number;
  consecutiveFailures: number;
  lastFailureAt: string | null;
  lastFailure: string | null;
  lastReseatAt: string | null;
  state: "ok" | "backoff" | "failing";
}

export type WatchEventKind = "watching" | "failure" | "backoff" | "reseated" | "reseat-failed" | "crash-looping" | "skipped";

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
  backend?: DockerBackend;
  /** Called for every decision; the CLI prints these (as JSON lines with --json). */
  onEvent?: (event: WatchEvent) => void;
  /** Consecutive failures from which a PE is reported as crash-looping. */
  crashLoopAfter?: number;
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
  busy: boolean;
  /** An unhealthy (still running) executable must be replaced, not adopted. */
  replaceRunning: boolean;
  /**
   * The spec and backoff last seen for this PE. A reseat that fails removes its new container, so a
   * retry may find no executable left to read them from; what was failing is retried all the same.
   */
  desired?: ExecutableDesired;
  backoff?: FailureBackoff;
}

export async function watch(options: WatchOptions = {}): Promise<Watcher> {
  const backend = options.backend ?? new DockerBackend();
  const emit = (event: Omit<WatchEvent, "at">) => options.onEvent?.({ at: new Date().toISOString(), ...event });
  const crashLoopAfter = options.crashLoopAfter ?? 3;
  const tracking = new Map<string, PeTracking>();
  const inFlight = new Set<Promise<void>>();
  let stopped = false;

  const track = (peId: string): PeTracking => {
    let t = tracking.get(peId);
    if (!t) tracking.set(peId, (t = { consecutiveFailures: 0, pendingCount: 0, busy: false, replaceRunning: false }));
    return t;
  };

  /** A failure of one PE: count it, wait its backoff, then handle it. Coalesces bursts. */
  const onFailure = async (peId: string, reason: string, replaceRunning = false): Promise<void> => {
    const t = track(peId);
    if (t.busy || t.timer || stopped) return; // already being handled: the handler reads fresh state
    const backoff = (await currentBackoff(backend, peId)) ?? t.backoff ?? DEFAULT_FAILURE_BACKOFF;
    t.backoff = backoff;
    // Counted only if, under the lock, it turns out to be a failure (a graceful stop by `pulumi up`
    // also ends in a die event, and is skipped).
    t.pendingCount = nextFailureCount(t.consecutiveFailures, t.lastReseatAt, Date.now(), backoff);
    t.replaceRunning = replaceRunning;
    const delayMs = backoffDelay(t.pendingCount, backoff);
    if (delayMs > 0) emit({ kind: "backoff", peId, delayMs, consecutiveFailures: t.pendingCount, reason });
    t.timer = setTimeout(() => {
      t.timer = undefined;
      const run = handle(peId, reason).finally(() => inFlight.delete(run));
      inFlight.add(run);
    }, delayMs);
  };

  const handle = async (peId: string, reason: string): Promise<void> => {
    const t = track(peId);
    t.busy = true;
    let retry = false;
    try {
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
      const result = await reseat(backend, desired, {
        holder: lockHolder("controller"),
        replaceRunning,
        keepControl: true,
        // Judged fresh under the lock: only a PE whose executable failed and is still there
        // (exited, or running but unhealthy) is reseated. A PE that `pulumi up` or a person just
        // changed or removed is left alone.
        stillNeeded: (observed) => replaceRunning || needsReseat(observed) || (isRetry && !observed.some((e) => e.running)),
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
      await writeControllerStatus(backend, result.executableId, desired, t, reason, "ok");
    } catch (error) {
      retry = true;
      t.consecutiveFailures = t.pendingCount;
      emit({ kind: "reseat-failed", peId, reason, error: (error as Error).message, consecutiveFailures: t.consecutiveFailures });
    } finally {
      t.busy = false;
    }
    if (stopped) return;
    if (retry) {
      await onFailure(peId, `previous reseat failed (${reason})`, t.replaceRunning);
    } else if (needsReseat(await backend.listExecutables(peId))) {
      // It failed again while we were busy (its die event was coalesced away): count it now.
      await onFailure(peId, "failed again right after being reseated");
    }
  };

  // Subscribe first, then look: a failure between the two is seen by one or the other.
  const events = await backend.engine.events(
    { filters: JSON.stringify({ type: ["container"], label: [`${LABELS.role}=executable`], event: ["die", "oom", "health_status"] }) },
    (event) => {
      const peId = event.Actor.Attributes[LABELS.peId];
      if (!peId) return;
      if (event.Action === "die") void onFailure(peId, `exited with code ${event.Actor.Attributes.exitCode ?? "?"}`);
      else if (event.Action === "oom") void onFailure(peId, "out of memory");
      else if (event.Action.startsWith("health_status") && event.Action.includes("unhealthy")) void onFailure(peId, "unhealthy", true);
    },
  );

  // Survive our own restart: whatever failed while nobody watched is handled now.
  const all = await backend.listExecutables();
  const byPe = new Map<string, ObservedExecutable[]>();
  for (const e of all) byPe.set(e.peId, [...(byPe.get(e.peId) ?? []), e]);
  emit({ kind: "watching", reason: `${byPe.size} processing element(s) on ${await backend.hostName()}` });
  for (const [peId, executables] of byPe) {
    if (needsReseat(executables)) void onFailure(peId, "found failed when the controller started");
  }

  return {
    async stop() {
      stopped = true;
      events.close();
      for (const t of tracking.values()) if (t.timer) clearTimeout(t.timer);
      await Promise.allSettled([...inFlight]);
    },
    async idle() {
      for (;;) {
        const pending = [...tracking.values()].some((t) => t.timer || t.busy);
        if (!pending && inFlight.size === 0) return;
        await Promise.allSettled([...inFlight]);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

/** A PE needs reseating when none of its executables runs and a failed one is still there. */
export function needsReseat(observed: ObservedExecutable[]): boolean {
  return !observed.some((e) => e.running) && observed.some((e) => !e.running);
}

/** The backoff in force: the volume's control file (updated in place), else the executable's label. */
async function currentBackoff(backend: DockerBackend, peId: string): Promise<FailureBackoff | undefined> {
  const newest = (await backend.listExecutables(peId)).sort((a, b) => b.generation - a.generation)[0];
  if (!newest) return undefined;
  const desired = await backend.desiredOf(newest.id);
  const control = desired ? await backend.readVolumeFile(newest.id, desired.mountPath, CONTROL_PATH).catch(() => undefined) : undefined;
  try {
    const fromControl = control ? (JSON.parse(control) as { failureBackoff?: FailureBackoff }).failureBackoff : undefined;
    return fromControl ?? desired?.failureBackoff;
  } catch {
    return desired?.failureBackoff;
  }
}

/** The spec of the PE's newest executable, from its label (the password, if any, stays in the volume). */
async function latestDesired(backend: DockerBackend, peId: string): Promise<ExecutableDesired | undefined> {
  const newest = (await backend.listExecutables(peId)).sort((a, b) => b.generation - a.generation)[0];
  return newest ? backend.desiredOf(newest.id) : undefined;
}

async function writeControllerStatus(
  backend: DockerBackend,
  executableId: string,
  desired: ExecutableDesired,
  t: PeTracking,
  reason: string,
  state: ControllerStatus["state"],
): Promise<void> {
  const previous = await backend.readVolumeFile(executableId, desired.mountPath, CONTROLLER_STATUS_PATH).catch(() => undefined);
  const restarts = previous ? ((JSON.parse(previous) as ControllerStatus).restarts ?? 0) : 0;
  const now = new Date().toISOString();
  const status: ControllerStatus = {
    restarts: restarts + 1,
    consecutiveFailures: t.consecutiveFailures,
    lastFailureAt: now,
    lastFailure: reason,
    lastReseatAt: now,
    state: t.consecutiveFailures >= 3 ? "failing" : state,
  };
  await backend.writeVolumeFiles(executableId, desired.mountPath, { [CONTROLLER_STATUS_PATH]: JSON.stringify(status) });
}
