import { promises as fs } from "node:fs";
import * as path from "node:path";
import { fsyncDir } from "./fsUtil";

/** The append-only journal file: every append is fsync'd before it returns. */
export class JournalFile {
  private constructor(
    private readonly handle: fs.FileHandle,
    private bytes: number,
  ) {}

  static async open(file: string): Promise<JournalFile> {
    const existed = await fs.stat(file).then(() => true, () => false);
    const handle = await fs.open(file, "a");
    // A brand-new file's directory entry must be durable too, or the first acknowledged writes could vanish.
    if (!existed) await fsyncDir(path.dirname(file));
    const { size } = await handle.stat();
    return new JournalFile(handle, size);
  }

  get size(): number {
    return this.bytes;
  }

  /** Append and fdatasync (which also persists the new file length). */
  async append(data: Buffer): Promise<void> {
    let written = 0;
    while (written < data.length) {
      const { bytesWritten } = await this.handle.write(data, written, data.length - written);
      written += bytesWritten;
    }
    await this.handle.datasync();
    this.bytes += data.length;
  }

  /** Empty the journal once its records are covered by a durable snapshot. */
  async truncate(): Promise<void> {
    await this.handle.truncate(0);
    await this.handle.sync();
    this.bytes = 0;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** Cut a torn tail off before the file is reopened for appending. */
export async function truncateJournalTo(file: string, validBytes: number): Promise<void> {
  const handle = await fs.open(file, "r+");
  try {
    await handle.truncate(validBytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
