// What reseat reads beside a PE's state volume for its outputs: the workload's commit status and the
// record of a reverted replacement. Shared by the Executable's and the fleet's providers.
import type { Backend } from "../backend/backend";
import { CommitOutputs, commitOutputs, parseWorkloadStatus } from "../plan/commitStatus";
import { NO_REVERT, REVERT_PATH, RevertRecord } from "../replacement/reseat";

/** Whether the PE's last replacement was reverted, from the record beside the volume. */
export interface RevertOutputs {
  reverted: boolean;
  failedSpecHash: string | null;
}

/** Commit status as the workload last wrote it into the volume. */
export async function observeCommits(engine: Backend, volumeName: string, generation: number): Promise<CommitOutputs> {
  const text = await engine.readVolumeFile(volumeName, ".reseat/status.json").catch(() => undefined);
  return commitOutputs(parseWorkloadStatus(text), generation, new Date());
}

export async function observeRevert(engine: Backend, volumeName: string): Promise<RevertOutputs> {
  const text = await engine.readVolumeFile(volumeName, REVERT_PATH).catch(() => undefined);
  try {
    const record = text ? (JSON.parse(text) as RevertRecord) : NO_REVERT;
    return { reverted: record.reverted === true, failedSpecHash: record.failedSpecHash ?? null };
  } catch {
    return { reverted: false, failedSpecHash: null };
  }
}
