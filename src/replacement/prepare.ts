// Step 3 of a replacement, before anything stops: the next generation, and the records the workload
// reads (control, the store's password, its store folder), each written for the workload's user.
import { CONTROL_RECORD, RecordCorruptError, controlOf, type ControlRecord } from "@reseat/state/contract";
import type { Backend, ExecutableDesired, FileOwner, ObservedExecutable } from "../backend/backend";

/**
 * The next generation: one more than any recorded beside the volume or carried by an executable. A new
 * (or lost and recreated) volume has no generation: it continues from the one the store has accepted,
 * or the store would fence the new executable out as stale.
 */
export async function nextGeneration(backend: Backend, desired: ExecutableDesired, observed: ObservedExecutable[]): Promise<number> {
  const recorded = await backend.readGeneration(desired.volumeName);
  const base = recorded?.generation ?? (observed.length ? 0 : await backend.readStoreGeneration(desired.store, desired.peId));
  return Math.max(base, ...observed.map((e) => e.generation)) + 1;
}

/** The newest generation the PE's persistent store has accepted (0 when none or no store). */
export function storeGeneration(backend: Backend, desired: ExecutableDesired): Promise<number> {
  return backend.readStoreGeneration(desired.store, desired.peId);
}

/**
 * Writes what the next executable reads, while the old one still serves: the control record (unless
 * kept: the controller re-creates from a record that in-place updates have not changed), the store's
 * password (the controller's record carries none: the one from before stays), the store folder.
 * Returns the control record as it was, for a revert.
 */
export async function writeWorkloadRecords(
  backend: Backend,
  desired: ExecutableDesired,
  owner: FileOwner | undefined,
  keepControl: boolean | undefined,
): Promise<ControlRecord | undefined> {
  // A corrupt control record is replaced (nothing to revert to); an engine error ends the call, as any.
  const previousControl = await backend.readControl(desired.volumeName).catch((error: unknown) => {
    if (error instanceof RecordCorruptError) return undefined;
    throw error;
  });
  if (!(keepControl && previousControl !== undefined)) await backend.writeControl(desired.volumeName, controlOf(desired), owner);
  if (desired.store.kind === "postgres" && desired.store.password) await backend.writeStoreSecret(desired.volumeName, desired.store.password, owner);
  if (owner && desired.store.kind === "directory") await backend.prepareStoreFolder(desired.store, desired.peId, owner);
  return previousControl;
}

/**
 * The settings that change without a new executable (the control record), as its encoded text: a
 * fleet's plan compares it to see an in-place change.
 */
export function controlFile(desired: Pick<ExecutableDesired, "commitIntervalMs" | "failureBackoff">): string {
  return CONTROL_RECORD.encode(controlOf(desired));
}

/** Rewrites the live control record (commit interval) of a running executable: an in-place update. */
export async function applyControl(backend: Backend, desired: ExecutableDesired): Promise<void> {
  await backend.writeControl(desired.volumeName, controlOf(desired), await workloadOwner(backend, desired));
}

/** Who the workload runs as, when not root: the spec's runAsUser/runAsGroup, else the image's USER. */
export async function workloadOwner(backend: Backend, desired: Pick<ExecutableDesired, "user" | "imageId">): Promise<FileOwner | undefined> {
  const owner = desired.user ?? (await backend.imageUser?.(desired.imageId));
  return owner && (owner.uid !== 0 || owner.gid !== 0) ? owner : undefined;
}
