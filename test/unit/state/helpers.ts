import { mkdtempSync, promises as fs, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach } from "vitest";

const created: string[] = [];

/** A real temp directory, removed after the test. */
export function tempDir(prefix = "reseat-state-"): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export async function writeJson(file: string, value: unknown): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  // Replace (not rewrite in place) like the provider does, so the fence sees a new inode.
  const temp = `${file}.writing`;
  await fs.writeFile(temp, JSON.stringify(value));
  await fs.rename(temp, file);
}

export async function readJson<T = Record<string, unknown>>(file: string): Promise<T> {
  return JSON.parse(await fs.readFile(file, "utf8")) as T;
}

export function writeMeta(stateDir: string, generation: number, peId = "pe-1"): Promise<void> {
  return writeJson(path.join(stateDir, ".reseat", "meta.json"), {
    peId,
    generation,
    volume: "vol-1",
    updatedAt: new Date().toISOString(),
  });
}

export function writeControl(stateDir: string, commitIntervalMs: number): Promise<void> {
  return writeJson(path.join(stateDir, ".reseat", "control.json"), { commitIntervalMs });
}

/** Poll until `check` returns a truthy value (or throw after timeoutMs). */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 5_000, what = "condition"): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Corrupt one byte in place (a bit flip on disk). */
export function flipByte(buf: Buffer, index: number, mask = 0xff): void {
  buf.writeUInt8(buf.readUInt8(index) ^ mask, index);
}
