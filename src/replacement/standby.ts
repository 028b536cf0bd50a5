// The standby hand-over (a PE's `handover: "standby"`): the next executable starts before the gap, beside
// the serving one, and parks on the volume's writer lock (the state library's RESEAT_STANDBY). The gap is
// then only the old one's graceful stop (its final commit; its exit frees the lock) and the standby's
// take-over. A standby that cannot park is found before anything stops: the release costs nothing.
//
//   chooseHandover   standby only where it is safe (rule S2), else staged, with the reason
//   startStandby     start it and wait until it parked (S3); otherwise remove it and throw
//   awaitTakeOver    after the old one stopped: the standby serves as the newest generation (S4)
//   writerAmong, isParked   a standby left parked by an interrupted run is told from the writer
import type { Backend, ExecutableDesired, FileOwner, ObservedExecutable } from "../backend/backend";
import { poll } from "../util/retry";
import { StandbyNotParkedError } from "./errors";
import { workloadOwner } from "./prepare";

/** How long a standby may take to park, or to serve once the old one is gone, when the spec gives no readiness timeout. */
export const DEFAULT_STANDBY_TIMEOUT_MS = 60_000;

/**
 * Parking is off the critical path: a modest pace. The take-over is the gap itself: a tight one while a
 * hand-over normally completes, then the modest one (a first start restoring from the store, or a slow
 * engine, would otherwise cost hundreds of engine calls a second, per PE rolling).
 */
const PARK_POLL_MS = 20;
const TAKE_OVER_POLL_MS = 3;
const TIGHT_TAKE_OVER_POLLS = 100;

export type HandoverChoice = { kind: "standby" } | { kind: "staged"; why?: string };

/**
 * Rule S2: a standby only where it can wait for the serving writer to let go of the volume's lock. That needs
 * a serving executable whose workload says it serves, in so many words (a status without a phase was written
 * by a library that takes no lock: a standby would take it at once and two writers would run), and the same
 * workload user (a change of hands re-owns the whole volume, which must happen with nothing running on it), and
 * nothing on the engine in the way (Backend.standbyBlockedBy: e.g. host ports the old one publishes itself).
 */
export async function chooseHandover(
  backend: Backend,
  desired: ExecutableDesired,
  serving: ObservedExecutable | undefined,
  previousDesired: ExecutableDesired | undefined,
  owner: FileOwner | undefined,
): Promise<HandoverChoice> {
  if (desired.handover !== "standby") return { kind: "staged" };
  if (!serving || !previousDesired) return { kind: "staged", why: "no executable serves: the new one starts with the volume to itself" };
  const status = await backend.readWorkloadStatus(desired.volumeName).catch(() => undefined);
  if (!status || status.phaseUnrecorded || status.phase !== "serving" || status.generation !== serving.generation) {
    return {
      kind: "staged",
      why:
        `${serving.name} does not report serving under the volume's writer lock (its status ${status ? (status.phaseUnrecorded ? "has no phase: a state library older than the lock" : `says ${status.phase}, generation ${status.generation}`) : "is not readable"}); ` +
        `a standby could not wait for it`,
    };
  }
  const blocked = backend.standbyBlockedBy?.(serving, desired);
  if (blocked) return { kind: "staged", why: blocked };
  const previousOwner = await workloadOwner(backend, previousDesired);
  if (!sameOwner(previousOwner, owner)) {
    return { kind: "staged", why: "the workload's user changes: the volume changes hands with nothing running on it" };
  }
  return { kind: "standby" };
}

/**
 * Rule S3: starts the prepared executable as a standby and waits until it reports parked for its generation
 * while it still runs. If it exits, or does not park in time, it is removed and StandbyNotParkedError thrown:
 * the serving executable was never touched.
 */
export async function startStandby(
  backend: Backend,
  desired: ExecutableDesired,
  standby: { id: string; name: string; generation: number },
  serving: ObservedExecutable,
): Promise<void> {
  const timeoutMs = standbyTimeoutMs(desired);
  try {
    await backend.start(standby.id);
    await poll(
      { what: `${standby.name} to park`, pauseMs: PARK_POLL_MS, deadlineMs: timeoutMs, exhausted: () => new Error(`it was not parked within ${timeoutMs} ms`) },
      async () => {
        const now = await backend.inspectExecutable(standby.id);
        const gone = goneBefore(now, "it", "parked");
        if (gone) throw new Error(gone);
        if (!now?.running) return undefined;
        const report = await backend.readStandbyStatus(standby.id, desired, standby.generation);
        // A report older than this start is a leftover of an earlier attempt at the same generation.
        return report?.phase === "parked" && report.generation === standby.generation && !olderThan(report.updatedAt, now.startedAt) ? true : undefined;
      },
    );
  } catch (error) {
    const logs = await backend.logsTail(standby.id, 20).catch(() => "(logs unavailable)");
    await backend.stop(standby.id, desired.stop).catch(() => undefined);
    await backend.remove(standby.id).catch(() => undefined);
    throw new StandbyNotParkedError(desired.peId, standby.name, (error as Error).message, serving.name, serving.generation, logs);
  }
}

/**
 * Rule S4, after the old executable stopped: the standby took the lock and serves as `generation`. Throws when
 * it exits first or does not serve in time (the caller then reverts: the old one is already stopped).
 */
export async function awaitTakeOver(backend: Backend, desired: ExecutableDesired, standby: { id: string; name: string; generation: number }): Promise<void> {
  const timeoutMs = standbyTimeoutMs(desired);
  await poll(
    {
      what: `${standby.name} to take over the volume`,
      pauseMs: (n) => (n < TIGHT_TAKE_OVER_POLLS ? TAKE_OVER_POLL_MS : PARK_POLL_MS),
      deadlineMs: timeoutMs,
      exhausted: () => new Error(`executable ${standby.name} did not serve within ${timeoutMs} ms of the old one's stop`),
    },
    async () => {
      const status = await backend.readWorkloadStatus(desired.volumeName).catch(() => undefined);
      if (status?.phase === "serving" && !status.phaseUnrecorded && status.generation === standby.generation) return true;
      const gone = goneBefore(await backend.inspectExecutable(standby.id), `executable ${standby.name}`, "took over the volume");
      if (gone) throw new Error(gone);
      return undefined;
    },
  );
}

/**
 * After the take-over: the generation recorded by reseat too (the standby's library recorded it on Docker;
 * on Kubernetes the claim's annotation is reseat's to write). Generations only go up: recorded only if behind.
 */
export async function recordTakenGeneration(backend: Backend, desired: ExecutableDesired, generation: number, owner: FileOwner | undefined): Promise<void> {
  const recorded = (await backend.readGeneration(desired.volumeName))?.generation ?? 0;
  if (recorded >= generation) return;
  await backend.recordGeneration({ peId: desired.peId, generation, volume: desired.volumeName, updatedAt: new Date().toISOString() }, owner);
}

/**
 * Of the running executables (newest first), the one that writes. Two run only where a hand-over was
 * interrupted (a standby left parked beside the writer): the status record names the writer's generation.
 */
export async function writerAmong(backend: Backend, desired: ExecutableDesired, running: ObservedExecutable[]): Promise<ObservedExecutable | undefined> {
  if (running.length < 2) return running[0];
  const writing = (await backend.readWorkloadStatus(desired.volumeName).catch(() => undefined))?.generation;
  return running.find((e) => e.generation === writing) ?? running[0];
}

/** Whether a running executable is a standby parked on the volume's lock (its own report, since it started). */
export async function isParked(backend: Backend, desired: ExecutableDesired, e: ObservedExecutable): Promise<boolean> {
  if (desired.handover !== "standby" || !e.running) return false;
  const report = await backend.readStandbyStatus(e.id, desired, e.generation).catch(() => undefined);
  return report?.phase === "parked" && report.generation === e.generation && !olderThan(report.updatedAt, e.startedAt);
}

/**
 * Why a started standby will never get to `what` — vanished, cannot start, exited — or undefined while it may
 * still: running, or started and still pending (Kubernetes: a pod being scheduled, its sandbox and container
 * starting), which has not exited.
 */
function goneBefore(now: ObservedExecutable | undefined, subject: string, what: string): string | undefined {
  if (!now) return `${subject} vanished before it ${what}`;
  if (now.running || now.state === "pending") return undefined;
  // Kubernetes: its container waits for what waiting will not bring (a bad image).
  if (now.state === "cannot-start") return `${subject} cannot start`;
  return `${subject} exited${now.exitCode !== undefined ? ` with code ${now.exitCode}` : ""} before it ${what}`;
}

function standbyTimeoutMs(desired: ExecutableDesired): number {
  return desired.readiness?.timeout ?? DEFAULT_STANDBY_TIMEOUT_MS;
}

function sameOwner(a: FileOwner | undefined, b: FileOwner | undefined): boolean {
  return a?.uid === b?.uid && a?.gid === b?.gid;
}

/** True when `at` is known to be earlier than `since` (either unknown: false). */
function olderThan(at: string | undefined, since: string | undefined): boolean {
  const a = at ? Date.parse(at) : NaN;
  const s = since ? Date.parse(since) : NaN;
  return Number.isFinite(a) && Number.isFinite(s) && a < s;
}
