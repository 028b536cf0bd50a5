import { readFileIfExists, writeFileAtomic } from "./fsUtil";

/** <stateDir>/.reseat/meta.json, written by the provider. */
export interface VolumeMeta {
  peId?: string;
  generation: number;
  volume?: string;
  updatedAt?: string;
}

/** Parse meta.json; null when it is absent or unreadable (e.g. caught mid-write by a non-atomic writer). */
export async function readMeta(file: string): Promise<VolumeMeta | null> {
  return parseMeta(await readFileIfExists(file));
}

export function parseMeta(raw: Buffer | null): VolumeMeta | null {
  if (raw === null) return null;
  try {
    const parsed = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
    if (!Number.isSafeInteger(parsed.generation)) return null;
    return {
      generation: parsed.generation as number,
      ...(typeof parsed.peId === "string" ? { peId: parsed.peId } : {}),
      ...(typeof parsed.volume === "string" ? { volume: parsed.volume } : {}),
      ...(typeof parsed.updatedAt === "string" ? { updatedAt: parsed.updatedAt } : {}),
    };
  } catch {
    return null;
  }
}

/** The live commit interval from <stateDir>/.reseat/control.json, or undefined if absent/invalid. */
export async function readControlInterval(file: string): Promise<number | undefined> {
  try {
    const raw = await readFileIfExists(file);
    if (raw === null) return undefined;
    const { commitIntervalMs } = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
    return isPositiveInteger(commitIntervalMs) ? commitIntervalMs : undefined;
  } catch {
    return undefined;
  }
}

export function isPositiveInteger(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

/** <stateDir>/.reseat/status.json, written by this library for the provider and operators. */
export interface StateStatus {
  peId: string;
  generation: number;
  /** Where this generation's state came from; null while it did not start (see restoreFailed). */
  resumedFrom: ResumeSource | null;
  resumedSeq: number;
  /** Seq of the last applied (durable) write. */
  seq: number;
  commitIntervalMs: number;
  lastCommit: CommitSummary | null;
  lastCommitError: string | null;
  lastCommitAttemptAt: string | null;
  /**
   * Set when the volume held no state and the store's commits all failed verification: the workload
   * refused to start (resumedFrom null), or started empty because the PE allows it (resumedFrom "empty").
   */
  restoreFailed: { reasons: string[]; at: string } | null;
  updatedAt: string;
}

export type ResumeSource = "local" | "persistent" | "empty";

export interface CommitSummary {
  seq: number;
  at: string;
  bytes: number;
  sha256: string;
  generation: number;
}

/** Atomic (temp + rename) but not fsync'd: it is informational and rewritten often, freshness matters more. */
export async function writeStatus(file: string, status: StateStatus): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(status, null, 2)}\n`, false);
}
