// What the single-writer tests conclude from the writer observer (test/support/writerObserver.ts): its verdict,
// the lock's holders in order, and a bounded wait on a probe. Shared by the Docker and Kubernetes cases.
import { expect } from "vitest";
import { describeReport, type SamplerReport } from "./writerObserver";

/** Polls `probe` every 5 ms until it gives a value; fails naming `what` after `timeoutMs`. */
export async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The observer's verdict: never two writers at once, never a parked standby with the state open. */
export function expectSingleWriter(report: SamplerReport): void {
  const detail = describeReport(report);
  console.log(`observer: ${detail.split("\n")[0]}; at most ${report.maxHolders} holder(s), ${report.maxWriters} writer(s)`);
  expect(report.violations, detail).toEqual([]);
  expect(report.maxHolders, detail).toBe(1);
  expect(report.maxWriters, detail).toBe(1);
  expect(report.samples, detail).toBeGreaterThan(20);
}

/** The lock's holders in order, each a pid, from the sampler's record: the hand-over's sequence. */
export function holderSequence(report: SamplerReport): number[] {
  const sequence: number[] = [];
  for (const change of report.changes) for (const pid of change.holders) if (sequence.at(-1) !== pid) sequence.push(pid);
  return sequence;
}
