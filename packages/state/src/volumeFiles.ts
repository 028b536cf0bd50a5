import { CONTROL_RECORD, META_RECORD, STATUS_RECORD, type CommitSummary, type ResumeSource, type WorkloadStatus } from "./contract";
import { readFileIfExists, writeFileAtomic } from "./fsUtil";

/** The meta record (the contract's), as this library reads it: the fields it has. */
export interface VolumeMeta {
  peId?: string;
  generation: number;
  volume?: string;
  updatedAt?: string;
}

/** Parse the meta record; null when it is absent or unreadable (e.g. caught mid-write by a non-atomic writer). */
export async function readMeta(file: string): Promise<VolumeMeta | null> {
  return parseMeta(await readFileIfExists(file));
}

export function parseMeta(raw: Buffer | null): VolumeMeta | null {
  if (raw === null) return null;
  try {
    const meta = META_RECORD.decode(raw.toString("utf8"));
    return {
      generation: meta.generation,
      ...(meta.peId ? { peId: meta.peId } : {}),
      ...(meta.volume ? { volume: meta.volume } : {}),
      ...(meta.updatedAt ? { updatedAt: meta.updatedAt } : {}),
    };
  } catch {
    return null;
  }
}

/** The live commit interval from the control record, or undefined if absent/invalid. */
export async function readControlInterval(file: string): Promise<number | undefined> {
  try {
    const raw = await readFileIfExists(file);
    if (raw === null) return undefined;
    return CONTROL_RECORD.decode(raw.toString("utf8")).commitIntervalMs;
  } catch {
    return undefined;
  }
}

export function isPositiveInteger(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

/** The status record (the contract's), written by this library for the provider and operators. */
export type StateStatus = WorkloadStatus;
export type { CommitSummary, ResumeSource };

/** Atomic (temp + rename) but not fsync'd: it is informational and rewritten often, freshness matters more. */
export async function writeStatus(file: string, status: StateStatus): Promise<void> {
  await writeFileAtomic(file, STATUS_RECORD.encode(status), false);
}
