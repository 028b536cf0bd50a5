import { promises as fs } from "node:fs";
import { StaleGenerationError } from "./errors";
import { isNotFound, readFileIfExists, writeFileAtomic } from "./fsUtil";

/** <stateDir>/.reseat/meta.json, written by the provider. */
export interface VolumeMeta {
  peId?: string;
  generation: number;
  volume?: string;
  updatedAt?: string;
}

/** Parse meta.json; null when it is absent or unreadable (e.g. caught mid-write by a non-atomic writer). */
export async function readMeta(file: string): Promise<VolumeMeta | null> {
  const raw = await readFileIfExists(file);
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

/**
 * Refuses writes once meta.json names a newer generation than ours. It sits on the write path, so it
 * only stats the file and re-reads it when inode/size/mtime/ctime changed (the provider replaces it).
 * Once stale, always stale: generations only go up.
 */
export class VolumeGenerationFence {
  private seenFingerprint: string | null = null;
  private staleError: StaleGenerationError | null = null;

  constructor(
    private readonly metaFile: string,
    readonly ownGeneration: number,
  ) {}

  async check(): Promise<void> {
    if (this.staleError) throw this.staleError;
    const fingerprint = await this.fingerprint();
    if (fingerprint === this.seenFingerprint) return;
    const meta = await readMeta(this.metaFile);
    if (meta && meta.generation > this.ownGeneration) {
      this.staleError = new StaleGenerationError(this.ownGeneration, meta.generation, "volume");
      throw this.staleError;
    }
    // Only cache a state we could read; an unreadable file is looked at again next time.
    this.seenFingerprint = meta || fingerprint === "absent" ? fingerprint : null;
  }

  private async fingerprint(): Promise<string> {
    try {
      const st = await fs.stat(this.metaFile, { bigint: true });
      return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    } catch (error) {
      if (isNotFound(error)) return "absent";
      throw error;
    }
  }
}

/** <stateDir>/.reseat/status.json, written by this library for the provider and operators. */
export interface StateStatus {
  peId: string;
  generation: number;
  resumedFrom: ResumeSource;
  resumedSeq: number;
  /** Seq of the last applied (durable) write. */
  seq: number;
  commitIntervalMs: number;
  lastCommit: CommitSummary | null;
  lastCommitError: string | null;
  lastCommitAttemptAt: string | null;
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
