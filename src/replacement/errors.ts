// Why a replacement refused or did not happen as asked: errors the provider and the controller show as is.
import type { RevertRecord } from "@reseat/state/contract";

export class ForeignExecutableError extends Error {
  constructor(volumeName: string, holders: { name: string; peId?: string }[]) {
    super(
      `reseat: state volume "${volumeName}" is mounted by running container(s) reseat does not own for this PE: ` +
        holders.map((h) => `${h.name}${h.peId ? ` (PE "${h.peId}")` : " (not managed by reseat)"}`).join(", ") +
        `. Refusing to start a second writer on it; stop those containers first.`,
    );
    this.name = "ForeignExecutableError";
  }
}

/** The state volume belongs to someone else: the single-writer rule refuses to share it. */
export class VolumeOwnedError extends Error {
  constructor(volumeName: string, owner: string, wanted: string) {
    super(
      `reseat: state volume "${volumeName}" belongs to ${owner}; refusing to bind it to ${wanted} ` +
        `(volume.name): a state volume has exactly one processing element. Choose another volume.name, or remove the volume if its data is no longer wanted.`,
    );
    this.name = "VolumeOwnedError";
  }
}

/** The new executable failed and the PE serves its previous spec again. */
export class ReplacementRevertedError extends Error {
  constructor(
    readonly peId: string,
    readonly record: RevertRecord,
    readonly logs: string,
  ) {
    super(
      `reseat: PE "${peId}" was reverted: the new executable ${record.failedExecutable} (spec ${record.failedSpecHash}) did not become ready (${record.error}); ` +
        `the previous spec serves again as ${record.servingExecutable} (generation ${record.servingGeneration}) on the same volume. Fix the spec and run up again. ` +
        `Last log lines of ${record.failedExecutable}:\n${logs}`,
    );
    this.name = "ReplacementRevertedError";
  }
}

/**
 * A standby successor could not park (it exited, or did not report parked in time): it was removed before
 * anything stopped, and the serving executable runs on untouched. Nothing to revert.
 */
export class StandbyNotParkedError extends Error {
  constructor(
    readonly peId: string,
    readonly executable: string,
    reason: string,
    servingName: string,
    servingGeneration: number,
    readonly logs: string,
  ) {
    super(
      `reseat: PE "${peId}": the new executable ${executable} did not park as a standby (${reason}); it was removed, and ${servingName} (generation ${servingGeneration}) ` +
        `still serves, never stopped. Fix the spec and run up again. Last log lines of ${executable}:\n${logs}`,
    );
    this.name = "StandbyNotParkedError";
  }
}

export function firstLine(error: Error): string {
  return error.message.split("\n")[0] ?? error.message;
}
