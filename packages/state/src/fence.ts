import { readFileSync, statSync } from "node:fs";
import { StaleGenerationError } from "./errors";
import { isNotFound } from "./fsUtil";
import { parseMeta } from "./volumeFiles";

/**
 * Refuses writes once meta.json names a newer generation than ours. It sits on the write path, so it
 * only stats the file (synchronously: a few microseconds, no thread-pool round trip before each write
 * transaction) and re-reads it when inode/size/mtime/ctime changed (the provider replaces it).
 * Once stale, always stale: generations only go up.
 */
export class VolumeGenerationFence {
  private seenFingerprint: string | null = null;
  private staleError: StaleGenerationError | null = null;

  constructor(
    private readonly metaFile: string,
    readonly ownGeneration: number,
  ) {}

  check(): void {
    if (this.staleError) throw this.staleError;
    const fingerprint = this.fingerprint();
    if (fingerprint === this.seenFingerprint) return;
    const meta = parseMeta(fingerprint === "absent" ? null : readIfExists(this.metaFile));
    if (meta && meta.generation > this.ownGeneration) {
      this.staleError = new StaleGenerationError(this.ownGeneration, meta.generation, "volume");
      throw this.staleError;
    }
    // Only cache a state we could read; an unreadable file is looked at again next time.
    this.seenFingerprint = meta || fingerprint === "absent" ? fingerprint : null;
  }

  private fingerprint(): string {
    try {
      const st = statSync(this.metaFile, { bigint: true });
      return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    } catch (error) {
      if (isNotFound(error)) return "absent";
      throw error;
    }
  }
}

function readIfExists(file: string): Buffer | null {
  try {
    return readFileSync(file);
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}
