import { createHash, randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as path from "node:path";

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** fsync a directory so that a rename or create inside it survives a crash (POSIX needs this separately). */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A temp name next to `target` that is unique per process and call, and recognisable for clean-up. */
export function tempPathFor(target: string): string {
  return `${target}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
}

export function isTempFileOf(fileName: string, targetName: string): boolean {
  return fileName.startsWith(`${targetName}.tmp-`);
}

/**
 * Replace `target` all-or-nothing: readers (and crash recovery) see either the old file or the new one.
 * With `durable` the data and the rename are fsync'd before returning; without it only atomicity is kept
 * (enough for informational files such as status.json).
 */
export async function writeFileAtomic(target: string, data: Uint8Array | string | Uint8Array[], durable = true): Promise<void> {
  const temp = tempPathFor(target);
  try {
    const handle = await fs.open(temp, "wx");
    try {
      // Several parts go out one after another: no copy of a large snapshot just to prepend a header.
      if (Array.isArray(data)) await writeAll(handle, data);
      else await handle.writeFile(data);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, target);
  } catch (error) {
    await fs.rm(temp, { force: true }).catch(() => undefined);
    throw error;
  }
  if (durable) await fsyncDir(path.dirname(target));
}

async function writeAll(handle: fs.FileHandle, parts: Uint8Array[]): Promise<void> {
  // Part by part (writev of a large buffer proved slower than plain writes here).
  for (const part of parts) if (part.length > 0) await handle.writeFile(part);
}

/**
 * Move a complete file into place all-or-nothing and durably: fsync its data, rename it over `target`,
 * fsync the directory (the rename itself is only durable then).
 */
export async function placeDurably(file: string, target: string): Promise<void> {
  const handle = await fs.open(file, "r+");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(file, target);
  await fsyncDir(path.dirname(target));
}

/** Create `dir` (and parents); when anything was created, fsync the parents so the new entries are durable. */
export async function ensureDirDurable(dir: string): Promise<void> {
  const firstCreated = await fs.mkdir(dir, { recursive: true });
  if (firstCreated === undefined) return;
  // Every directory from firstCreated down to dir is new: fsync each one's parent.
  let current = dir;
  while (true) {
    const parent = path.dirname(current);
    await fsyncDir(parent);
    if (path.resolve(current) === path.resolve(firstCreated) || parent === current) break;
    current = parent;
  }
}

export async function readFileIfExists(file: string): Promise<Buffer | null> {
  try {
    return await fs.readFile(file);
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

export function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === "ENOENT";
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
