// Step 1 and 2 of a replacement: the volume is this PE's alone, and which of its executables serves,
// which one is adopted as is, and which are leftovers.
import type { Backend, ExecutableDesired, ObservedExecutable, VolumeInfo } from "../backend/backend";
import { ForeignExecutableError, VolumeOwnedError } from "./errors";

/** The single-writer rule at the volume: it must exist and belong to this PE (and owner, when known). */
export async function assertVolumeOwned(backend: Backend, desired: Pick<ExecutableDesired, "volumeName" | "peId" | "owner">): Promise<VolumeInfo> {
  const volume = await backend.inspectVolume(desired.volumeName);
  if (!volume) {
    throw new Error(
      `reseat: state volume "${desired.volumeName}" of PE "${desired.peId}" does not exist; run \`pulumi up\` (it recreates the volume and restores from the last commit)`,
    );
  }
  checkOwner(volume, desired);
  return volume;
}

export function checkOwner(volume: VolumeInfo, wanted: { peId: string; owner?: string; volumeName?: string }): void {
  const mine = wanted.owner ?? `PE "${wanted.peId}"`;
  if (volume.peId !== undefined && volume.peId !== wanted.peId) {
    throw new VolumeOwnedError(volume.name, volume.owner ?? `PE "${volume.peId}"`, mine);
  }
  if (volume.peId === undefined) throw new VolumeOwnedError(volume.name, "no reseat processing element (it was not made by reseat)", mine);
  if (volume.owner && wanted.owner && volume.owner !== wanted.owner) throw new VolumeOwnedError(volume.name, volume.owner, mine);
}

/** No running container of another PE (or none of reseat's) mounts the volume. */
export async function assertNoForeignWriter(backend: Backend, desired: Pick<ExecutableDesired, "volumeName" | "peId">): Promise<void> {
  const holders = (await backend.runningOnVolume(desired.volumeName)).filter((h) => h.peId !== desired.peId);
  if (holders.length) throw new ForeignExecutableError(desired.volumeName, holders);
}

/**
 * A PE id names one PE per engine: executables of the same id made for another owner (another stack
 * or program) are refused, never adopted or retired.
 */
export function ownExecutables(observed: ObservedExecutable[], desired: Pick<ExecutableDesired, "peId" | "owner">): ObservedExecutable[] {
  const foreign = observed.filter((e) => e.owner && desired.owner && e.owner !== desired.owner);
  if (foreign.length) {
    throw new Error(
      `reseat: processing element id "${desired.peId}" (peId) is already in use on this engine by ${foreign[0]!.owner} (${foreign.map((e) => e.name).join(", ")}); ` +
        `a peId names one PE per engine: choose another peId for ${desired.owner}`,
    );
  }
  return observed;
}

export function byGenerationDesc(a: ObservedExecutable, b: ObservedExecutable): number {
  return b.generation - a.generation;
}

/**
 * A running executable that already is what `desired` asks for: the same spec, made for the same
 * Pulumi resource. One made for another resource (a forced replacement's predecessor) is not adopted:
 * the successor gets an executable of its own, so the predecessor's delete cannot take it down.
 */
export async function findAdoptable(
  backend: Backend,
  observed: ObservedExecutable[],
  hash: string,
  declaredBy: string | undefined,
): Promise<ObservedExecutable | undefined> {
  for (const e of observed) {
    if (e.running && e.specHash === hash && (await backend.desiredOf(e.id))?.declaredBy === declaredBy) return e;
  }
  return undefined;
}

/** Where an executable runs: its own host on a multi-host engine (a pod's node), else the engine's. */
export async function hostOf(backend: Backend, id: string): Promise<string> {
  return (await backend.inspectExecutable(id))?.host ?? (await backend.identity()).name;
}
