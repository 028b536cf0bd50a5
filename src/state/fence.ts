import { promises as fs } from "node:fs";
import { StaleGenerationError } from "./errors";
import { isNotFound } from "./fsUtil";
import { readMeta } from "./volumeFiles";

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
