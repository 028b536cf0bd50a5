// Pure: what the stack outputs say about a PE's commits, from the status file its workload writes
// (the contract's status record) and the time of the observation.

import { STATUS_RECORD, type WorkloadStatus as StatusRecord } from "@reseat/state/contract";

/** The part of the workload's status record the outputs are made of (statuses of reseat 0.1 lack restoreFailed). */
export type WorkloadStatus = Pick<StatusRecord, "generation" | "resumedFrom" | "resumedSeq" | "seq" | "commitIntervalMs" | "lastCommitError" | "updatedAt"> & {
  lastCommit: { seq: number; at: string; bytes: number } | null;
  restoreFailed?: StatusRecord["restoreFailed"];
};

/** Why the current generation refused to start (restore-failed), or null. */
export function restoreFailure(status: WorkloadStatus | undefined, generation: number): string[] | null {
  return status?.generation === generation && status.resumedFrom === null && status.restoreFailed ? status.restoreFailed.reasons : null;
}

export interface CommitOutputs {
  lastCommit: { seq: number; at: string; bytes: number } | null;
  /**
   * How long acknowledged writes have waited without being in the persistent store: 0 when the last
   * commit holds every write; otherwise the age of the last commit (or of the status, if none yet).
   */
  commitLagMs: number | null;
  resumedFrom: "local" | "persistent" | "empty" | null;
  resumedSeq: number | null;
  lastCommitError: string | null;
  commitStatusAt: string | null;
}

export const NO_COMMIT_STATUS: CommitOutputs = {
  lastCommit: null,
  commitLagMs: null,
  resumedFrom: null,
  resumedSeq: null,
  lastCommitError: null,
  commitStatusAt: null,
};

export function commitOutputs(status: WorkloadStatus | undefined, generation: number, now: Date): CommitOutputs {
  if (!status) return NO_COMMIT_STATUS;
  const last = status.lastCommit ? { seq: status.lastCommit.seq, at: status.lastCommit.at, bytes: status.lastCommit.bytes } : null;
  const behind = status.seq > (last?.seq ?? 0);
  const since = Date.parse(last?.at ?? status.updatedAt);
  // resumedFrom describes one generation's start: a status left by an older generation says nothing yet.
  const current = status.generation === generation;
  return {
    lastCommit: last,
    commitLagMs: behind ? Math.max(0, now.getTime() - since) : 0,
    resumedFrom: current ? status.resumedFrom : null,
    resumedSeq: current ? status.resumedSeq : null,
    lastCommitError: status.lastCommitError,
    commitStatusAt: now.toISOString(),
  };
}

/** The status record's text decoded; undefined when absent or unreadable (a status being rewritten is skipped: it only informs). */
export function parseWorkloadStatus(text: string | undefined): WorkloadStatus | undefined {
  if (!text) return undefined;
  try {
    return STATUS_RECORD.decode(text);
  } catch {
    return undefined;
  }
}
