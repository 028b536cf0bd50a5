// What reseat reads beside a PE's state volume for its outputs: the workload's commit status and the
// record of a reverted replacement. Shared by the Executable's and the fleet's providers.
import type { RevertRecord } from "@reseat/state/contract";
import type { Backend } from "../backend/backend";
import { CommitOutputs, commitOutputs } from "../plan/commitStatus";

/** Whether the PE's last replacement was reverted, from the record beside the volume. */
export interface RevertOutputs {
  reverted: boolean;
  failedSpecHash: string | null;
}

/** Commit status as the workload last wrote it (an unreadable status reads as none yet). */
export async function observeCommits(engine: Backend, volumeName: string, generation: number): Promise<CommitOutputs> {
  const status = await engine.readWorkloadStatus(volumeName).catch(() => undefined);
  return commitOutputs(status, generation, new Date());
}

/** An unreadable revert record reads as no revert: it only ever informs. */
export async function observeRevert(engine: Backend, volumeName: string): Promise<RevertOutputs> {
  return revertOutputs(await engine.readRevert(volumeName).catch(() => undefined));
}

/** The outputs of a revert record (none: no revert). */
export function revertOutputs(record: RevertRecord | undefined): RevertOutputs {
  return { reverted: record?.reverted === true, failedSpecHash: record?.failedSpecHash ?? null };
}
