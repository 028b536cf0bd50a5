// When the new executable does not become ready: the previous spec serves again, as the next generation.
import { NO_REVERT, type ControlRecord, type RevertRecord } from "@reseat/state/contract";
import { Backend, ExecutableDesired, ObservedExecutable, executableName } from "../backend/backend";
import type { HeldLease } from "../lease/lease";
import { ReplacementRevertedError, firstLine } from "./errors";
import { workloadOwner } from "./prepare";

export { NO_REVERT };
export type { RevertRecord };

export interface RevertContext {
  desired: ExecutableDesired;
  previous: ObservedExecutable;
  previousDesired: ExecutableDesired;
  previousControl: ControlRecord | undefined;
  failedName: string;
  failedHash: string;
  generation: number;
  failure: Error;
  logs: string;
}

/**
 * The new executable did not become ready: serve the previous spec again on the same volume, as the
 * next generation (a fresh executable: the failed one may have claimed its generation in the store,
 * which fences the old executable's token out for good). Returns the error the caller throws.
 */
export async function revert(backend: Backend, lock: HeldLease, ctx: RevertContext): Promise<Error> {
  const generation = ctx.generation + 1;
  const name = executableName(ctx.desired.peId, generation);
  const revertedAt = new Date().toISOString();
  let readyAt = revertedAt;
  try {
    // The volume goes back to the previous spec's user, should the failed one have been another.
    const owner = await workloadOwner(backend, ctx.previousDesired);
    if (ctx.previousControl !== undefined) await backend.writeControl(ctx.desired.volumeName, ctx.previousControl, owner);
    const id = await backend.prepare(ctx.previousDesired, { name, generation, specHash: ctx.previous.specHash });
    if (owner) await backend.ownState(ctx.desired.volumeName, owner);
    await backend.recordGeneration({ peId: ctx.desired.peId, generation, volume: ctx.desired.volumeName, updatedAt: revertedAt }, owner);
    await lock.confirm();
    await backend.start(id);
    await backend.waitReady(id, ctx.previousDesired);
    readyAt = new Date().toISOString();
    lock.assertHeld();
    await backend.remove(ctx.previous.id);
  } catch (revertError) {
    return new Error(
      `reseat: PE "${ctx.desired.peId}": the new executable ${ctx.failedName} failed (${firstLine(ctx.failure)}) and reverting to the previous spec failed too (${firstLine(revertError as Error)}); ` +
        `the PE has no running executable. Its volume and data are kept. Last log lines of ${ctx.failedName}:\n${ctx.logs}`,
    );
  }
  const record: RevertRecord = {
    reverted: true,
    at: revertedAt,
    failedExecutable: ctx.failedName,
    failedSpecHash: ctx.failedHash,
    servingGeneration: generation,
    servingExecutable: name,
    readyAt,
    error: firstLine(ctx.failure),
  };
  await backend.writeRevert(ctx.desired.volumeName, record, await workloadOwner(backend, ctx.previousDesired).catch(() => undefined)).catch(() => undefined);
  return new ReplacementRevertedError(ctx.desired.peId, record, ctx.logs);
}
