// The PE lock: one replacement (or retire) of a PE at a time, on every engine, whoever runs it.
import type { Backend, ExecutableDesired } from "../backend/backend";
import { HeldLease, withLease } from "../lease/lease";

/**
 * The PE lock's lease: renewed every third of it while held, so it only bounds how long a crashed
 * holder (a killed `pulumi up`) keeps others waiting.
 */
export const PE_LEASE_MS = 10_000;

/** The PE lock's lease name. */
export function peLockName(peId: string): string {
  return `pe-${peId}`;
}

/** Runs `work` holding the PE's lock (a renewed lease). */
export async function withPeLock<T>(backend: Backend, desired: ExecutableDesired, holder: string, work: (lock: HeldLease) => Promise<T>): Promise<T> {
  const leaseMs = PE_LEASE_MS;
  // Wait as long as a holder could legitimately work (stop grace + readiness), plus slack.
  const waitMs = desired.stop.graceSeconds * 1000 + (desired.readiness?.timeout ?? 60_000) + 60_000;
  return withLease(backend, peLockName(desired.peId), holder, { leaseMs, waitMs }, work);
}
