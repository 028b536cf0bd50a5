// What a PE's stack outputs say about it: one list, read by the Executable resource, its provider and
// the components (written once here, not per file).

/** The fields the Executable resource observes beside its inputs (outputs of the component too). */
export const OUTPUT_FIELDS = [
  "executableId",
  "executableName",
  "generation",
  "host",
  "replacedAt",
  "readyAt",
  "lastCommit",
  "commitLagMs",
  "resumedFrom",
  "resumedSeq",
  "lastCommitError",
  "commitStatusAt",
  "reverted",
  "failedSpecHash",
] as const;

export type OutputField = (typeof OUTPUT_FIELDS)[number];
