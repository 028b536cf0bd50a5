// Pure: how long the failure controller waits before re-creating a PE's executable.
import type { FailureBackoff } from "@reseat/state/contract";

/** The 1st failure is reseated at once; the n-th waits initial x 2^(n-2), capped at max. */
export function backoffDelay(consecutiveFailures: number, backoff: FailureBackoff): number {
  if (consecutiveFailures <= 1) return 0;
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(consecutiveFailures - 2, 30));
}

/** Failures count as consecutive unless the PE ran at least resetAfter since its last reseat. */
export function nextFailureCount(previous: number, lastReseatAt: number | undefined, now: number, backoff: FailureBackoff): number {
  if (lastReseatAt !== undefined && now - lastReseatAt >= backoff.resetAfterMs) return 1;
  return previous + 1;
}
