// The one replacement routine. The dynamic provider (create), the failure controller and group
// rollouts all call reseat(): it reads the engine fresh and converges the PE to exactly one running
// executable with the desired spec, bound to the kept state volume, one generation newer. It talks
// to the engine only through the Backend seam (records, not paths), so it runs unchanged on Docker,
// the fake and Kubernetes, and it imports no workload code.
//
//   find.ts     the volume is this PE's alone; adopt an identical executable, or find the serving one
//   prepare.ts  the next generation and the workload's records, written while the old one serves
//   standby.ts  handover "standby": the next one starts and parks beside the old one before the gap
//   (here)      the hand-over: stop the old one → record the generation → start → ready (staged), or
//               stop the old one → the parked standby takes the volume's lock → ready (standby)
//   revert.ts   the new one failed: the previous spec serves again
//   retire.ts   a resource's delete takes its executables down
import { NO_REVERT } from "@reseat/state/contract";
import { Backend, ExecutableDesired, ObservedExecutable, executableName } from "../backend/backend";
import { specHash } from "../plan/executablePlan";
import { HeldLease, LeaseLostError } from "../lease/lease";
import { faultPoint } from "./faults";
import { assertNoForeignWriter, assertVolumeOwned, byGenerationDesc, findAdoptable, hostOf, ownExecutables } from "./find";
import { withPeLock } from "./peLock";
import { nextGeneration, workloadOwner, writeWorkloadRecords } from "./prepare";
import { revert } from "./revert";
import { awaitTakeOver, chooseHandover, isParked, recordTakenGeneration, startStandby, writerAmong } from "./standby";

// What callers import from the routine, wherever it lives now.
export { ForeignExecutableError, ReplacementRevertedError, StandbyNotParkedError, VolumeOwnedError } from "./errors";
export { assertVolumeOwned, checkOwner } from "./find";
export { PE_LEASE_MS, peLockName, withPeLock } from "./peLock";
export { applyControl, controlFile, storeGeneration, workloadOwner } from "./prepare";
export { NO_REVERT, type RevertRecord } from "./revert";
export { retire, type RetireScope } from "./retire";

export interface ReseatResult {
  executableId: string;
  executableName: string;
  generation: number;
  host: string;
  /** When this executable generation was created (ISO). */
  replacedAt: string;
  /** When it was seen ready (ISO). */
  readyAt: string;
  /** True when a running executable with the desired spec was found and kept (idempotent re-run). */
  adopted: boolean;
  /** Executables this call stopped or removed (leftovers of an earlier generation). */
  retired: string[];
  reverted: boolean;
}

export interface ReseatOptions {
  /** Who is replacing (shown to anyone who finds the PE locked): "host:pid:role". */
  holder: string;
  /**
   * Replace even a running executable with the desired spec (the controller, for an unhealthy one).
   * By default an identical running executable is adopted, which makes a re-run idempotent.
   */
  replaceRunning?: boolean;
  /**
   * Leave the volume's control record as it is (the controller: its spec comes from the executable's
   * record, which in-place updates since then have not changed; the control record has them).
   */
  keepControl?: boolean;
  /** Only act if the PE still needs it, judged fresh under the lock (the controller's re-check). */
  stillNeeded?: (observed: ObservedExecutable[]) => boolean;
  /**
   * Awaited with the next executable prepared, right before the serving one is told to stop: a rollout
   * prepares a member while the one before it is still in its gap, and opens this gate when that one is
   * ready. A rejection ends the call before anything stopped: the prepared executable is removed, the
   * old one keeps serving, and the rejection is rethrown.
   */
  beforeGap?: () => Promise<void>;
  /** Called once the new executable is ready (before the old one is removed): opens the next gate. */
  onReady?: () => void;
  /** Told why a PE that asks for a standby hand-over is replaced staged this time (rule S2). */
  log?: (message: string) => void;
}

/**
 * Converges a PE to one running executable with the desired spec. Returns undefined when
 * options.stillNeeded said, under the lock, that nothing is to be done.
 */
export async function reseat(backend: Backend, desired: ExecutableDesired, options: ReseatOptions): Promise<ReseatResult>;
export async function reseat(
  backend: Backend,
  desired: ExecutableDesired,
  options: ReseatOptions & { stillNeeded: (observed: ObservedExecutable[]) => boolean },
): Promise<ReseatResult | undefined>;
export async function reseat(backend: Backend, desired: ExecutableDesired, options: ReseatOptions): Promise<ReseatResult | undefined> {
  return withPeLock(backend, desired, options.holder, (lock) => converge(backend, desired, options, lock));
}

async function converge(backend: Backend, desired: ExecutableDesired, options: ReseatOptions, lock: HeldLease): Promise<ReseatResult | undefined> {
  const hash = specHash(desired);
  const retired: string[] = [];
  const retire = async (e: ObservedExecutable) => {
    lock.assertHeld();
    if (e.running) await backend.stop(e.id, desired.stop);
    await backend.remove(e.id);
    retired.push(e.name);
  };

  // 1. Nobody else may write to this volume: it is ours, and no foreign container mounts it.
  await assertVolumeOwned(backend, desired);
  await assertNoForeignWriter(backend, desired);

  // 2. Observe this PE's executables: adopt an identical running one (an interrupted run, or a
  //    re-run), otherwise find the one serving now; leftovers that do not run go.
  const observed = ownExecutables(await backend.listExecutables(desired.peId), desired).sort(byGenerationDesc);
  if (options.stillNeeded && !options.stillNeeded(observed)) return undefined;
  const adoptable = options.replaceRunning ? undefined : await findAdoptable(backend, observed, hash, desired.declaredBy);
  if (adoptable) {
    // A standby parked by an interrupted run takes over once the executable it waits for is gone.
    const parked = observed.some((e) => e !== adoptable && e.running) && (await isParked(backend, desired, adoptable));
    for (const e of observed) if (e !== adoptable) await retire(e);
    if (parked) await awaitTakeOver(backend, desired, adoptable);
    await backend.waitReady(adoptable.id, desired);
    if (parked) await recordTakenGeneration(backend, desired, adoptable.generation, await workloadOwner(backend, desired));
    const now = new Date().toISOString();
    const host = await hostOf(backend, adoptable.id);
    return {
      executableId: adoptable.id,
      executableName: adoptable.name,
      generation: adoptable.generation,
      host,
      replacedAt: adoptable.startedAt ?? now,
      readyAt: now,
      adopted: true,
      retired,
      reverted: false,
    };
  }
  const running = observed.filter((e) => e.running);
  const serving = await writerAmong(backend, desired, running);
  // Never more than one runs; should a second ever be found (a standby an interrupted run left parked, or
  // worse), it goes before anything else happens: the writer stays.
  for (const e of running) if (e !== serving) await retire(e);
  // What to revert to if the new executable fails: the one serving, else the newest that ran.
  const previous = serving ?? observed.find((e) => e.specHash !== hash && e.state !== "created");
  const previousDesired = previous ? await backend.desiredOf(previous.id) : undefined;
  for (const e of observed) if (!e.running && e !== previous) await retire(e);

  // 3. Prepare the next generation while the old one still serves: resolved, created bound to the kept
  //    volume, not started. Its generation (the fencing token) is fixed now; it is recorded beside the
  //    volume only after the old executable has stopped, so the old one's final commit is not fenced.
  const generation = await nextGeneration(backend, desired, observed);
  // Everything reseat writes for the workload belongs to the workload's user (a non-root workload must
  // write into its volume and read its password file): the spec's runAsUser, else the image's USER.
  const owner = await workloadOwner(backend, desired);
  const previousControl = await writeWorkloadRecords(backend, desired, owner, options.keepControl);
  const name = executableName(desired.peId, generation);
  lock.assertHeld();
  const id = await backend.prepare(desired, { name, generation, specHash: hash });
  await faultPoint("after-prepare");

  // 3b. A standby hand-over (when safe, standby.ts): the new executable starts now, beside the old one, and
  //     parks on the volume's writer lock. One that cannot park is removed here and the call fails: the old
  //     one was never touched. From here to the stop, two executables run (twice the memory).
  const handover = await chooseHandover(backend, desired, serving, previousDesired, owner);
  if (handover.kind === "staged" && handover.why) options.log?.(`reseat: PE "${desired.peId}" is replaced staged, not by a standby: ${handover.why}`);
  const standby = handover.kind === "standby" && serving ? { id, name, generation } : undefined;
  if (standby && serving) {
    await lock.confirm();
    await startStandby(backend, desired, standby, serving);
    await faultPoint("after-parked");
  }

  if (options.beforeGap) {
    try {
      await options.beforeGap();
    } catch (error) {
      await backend.remove(id).catch(() => undefined);
      throw error;
    }
  }

  // 4. The gap: stop the old one gracefully (its final commit) → record the generation → start → ready.
  //    With a standby, the old one's exit frees the volume's lock: the standby takes it and records its
  //    generation itself (recorded any earlier, the old one's final commit would be fenced) → ready.
  const replacedAt = new Date().toISOString();
  let readyAt = replacedAt;
  let oldStopped = !serving;
  try {
    if (standby && serving) {
      lock.assertHeld();
      // The standby's take-over proves the old one let go (the kernel frees the lock at its exit), so it is
      // awaited beside the engine's confirmation of the stop, not after it (the kubelet reports an exit up to
      // a second late); the stop still settles before anything else happens.
      const stopFailure = backend.stop(serving.id, desired.stop).then(settledOk, settledError); // handled from the start
      oldStopped = true;
      const takeOverFailure = await awaitTakeOver(backend, desired, standby)
        .then(() => backend.waitReady(id, desired))
        .then(settledOk, settledError);
      readyAt = new Date().toISOString(); // the gap ends here; what follows happens while the new one serves
      if (takeOverFailure) {
        await stopFailure;
        throw takeOverFailure;
      }
      await tolerateStopFailure(backend, serving.id, await stopFailure);
      await faultPoint("after-stop");
      await recordTakenGeneration(backend, desired, generation, owner);
    } else {
      if (serving) {
        lock.assertHeld();
        await backend.stop(serving.id, desired.stop);
        oldStopped = true;
        await faultPoint("after-stop");
      }
      // Only now, with the old executable stopped: the volume's root (and, when it changes hands, all of it).
      if (owner) await backend.ownState(desired.volumeName, owner);
      await backend.recordGeneration({ peId: desired.peId, generation, volume: desired.volumeName, updatedAt: replacedAt }, owner);
      await lock.confirm();
      await backend.start(id);
      await faultPoint("after-start");
      // A standby-handover workload with the volume to itself parks for a moment and takes the lock; it is ready
      // once its status says it serves (its readiness endpoint may answer while it is parked or still opening).
      if (desired.handover === "standby") await awaitTakeOver(backend, desired, { id, name, generation });
      await backend.waitReady(id, desired);
      readyAt = new Date().toISOString(); // the gap ends here; what follows happens while the new one serves
    }
    options.onReady?.();
  } catch (error) {
    const failure = error as Error;
    const logs = await backend.logsTail(id, 20).catch(() => "(logs unavailable)");
    // Nothing half-made: the failed executable goes; the volume, its data and its generation stay.
    await backend.stop(id, desired.stop).catch(() => undefined);
    await backend.remove(id).catch(() => undefined);
    // Failed before the old one was told to stop: it still serves; nothing to revert.
    if (!oldStopped) throw failure;
    if (error instanceof LeaseLostError || !previous || !previousDesired || desired.onFailedReplacement === "leave-stopped") {
      if (previous) await retire(previous).catch(() => undefined);
      throw failure;
    }
    throw await revert(backend, lock, { desired, previous, previousDesired, previousControl, failedName: name, failedHash: hash, generation, failure, logs });
  }
  await faultPoint("after-ready");
  // 5. Out of the gap: the old executable (stopped) goes, and a past revert is superseded.
  if (previous) await retire(previous);
  await backend.writeRevert(desired.volumeName, NO_REVERT, owner).catch(() => undefined);
  return { executableId: id, executableName: name, generation, host: await hostOf(backend, id), replacedAt, readyAt, adopted: false, retired, reverted: false };
}

/**
 * A stop the engine did not confirm, once the standby took over: harmless when the old executable no longer
 * runs (its process let go of the volume's lock, so it exited); otherwise the failure stands.
 */
async function tolerateStopFailure(backend: Backend, oldId: string, failure: Error | undefined): Promise<void> {
  if (failure && (await backend.inspectExecutable(oldId).catch(() => undefined))?.running !== false) throw failure;
}

const settledOk = (): undefined => undefined;
const settledError = (error: unknown): Error => error as Error;
