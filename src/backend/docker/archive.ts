// The tar archives the Engine's /containers/{id}/archive endpoint speaks, through tar-stream: small
// files into a volume (no helper process started), and one file out of it.
import { Readable } from "node:stream";
import * as tar from "tar-stream";

export interface ArchiveEntry {
  /** Path inside the archive, relative, "/"-separated. Directories end with "/". */
  name: string;
  content?: Buffer;
  mode?: number;
  /** Numeric owner (default root); the engine applies it when it extracts the archive. */
  uid?: number;
  gid?: number;
}

/** Packs entries into one tar (directories before the files in them, as given). */
export async function packArchive(entries: ArchiveEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = new Promise<Buffer>((resolve, reject) => {
    pack.on("data", (chunk: Buffer) => chunks.push(chunk));
    pack.on("end", () => resolve(Buffer.concat(chunks)));
    pack.on("error", reject);
  });
  const mtime = new Date();
  for (const entry of entries) {
    if (entry.name.endsWith("/")) {
      pack.entry({ name: entry.name, type: "directory", mode: entry.mode ?? 0o755, mtime, uid: entry.uid ?? 0, gid: entry.gid ?? 0 });
    } else {
      const content = entry.content ?? Buffer.alloc(0);
      pack.entry({ name: entry.name, type: "file", mode: entry.mode ?? 0o644, size: content.length, mtime, uid: entry.uid ?? 0, gid: entry.gid ?? 0 }, content);
    }
  }
  pack.finalize();
  return collected;
}

/** The first regular file of a tar stream (what GET …/archive?path=<file> answers), or undefined. */
export async function firstFile(archive: NodeJS.ReadableStream | Buffer): Promise<Buffer | undefined> {
  const source = Buffer.isBuffer(archive) ? Readable.from([archive]) : (archive as Readable);
  const extract = tar.extract();
  source.on("error", (error) => extract.destroy(error));
  source.pipe(extract);
  let found: Buffer | undefined;
  for await (const entry of extract) {
    if (found === undefined && entry.header.type === "file") {
      const parts: Buffer[] = [];
      for await (const chunk of entry) parts.push(chunk as Buffer);
      found = Buffer.concat(parts);
    } else {
      entry.resume();
    }
  }
  return found;
}

/** Every regular file of a tar, by name (for tests and small archives). */
export async function filesOf(archive: Buffer): Promise<Map<string, Buffer>> {
  const extract = tar.extract();
  Readable.from([archive]).pipe(extract);
  const files = new Map<string, Buffer>();
  for await (const entry of extract) {
    if (entry.header.type === "file") {
      const parts: Buffer[] = [];
      for await (const chunk of entry) parts.push(chunk as Buffer);
      files.set(entry.header.name, Buffer.concat(parts));
    } else {
      entry.resume();
    }
  }
  return files;
}
