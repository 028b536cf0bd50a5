import { mkdtempSync, promises as fs, rmSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach } from "vitest";
import type { CommitRecord, PersistentStore } from "../../../packages/state/src/index";
import { sha256Hex } from "../../../packages/state/src/fsUtil";

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

/** The newest commit whose bytes verify, fetched into a temp file: what a restore would start from. */
export async function latestValid(store: PersistentStore): Promise<{ id: string; record: CommitRecord; file: string } | null> {
  for (const { id } of await store.list()) {
    const file = path.join(tempDir("reseat-fetch-"), "commit");
    const result = await store.fetch(id, file);
    if ("record" in result) return { id, record: result.record, file };
  }
  return null;
}

/** Bytes in a temp file, described by a commit record: what the committer hands a store. */
export async function commitFileOf(peId: string, generation: number, seq: number, bytes: Buffer): Promise<{ record: CommitRecord; file: string }> {
  const file = path.join(tempDir("reseat-commit-"), "snapshot");
  await fs.writeFile(file, bytes);
  return { record: { peId, generation, seq, at: new Date().toISOString(), bytes: bytes.length, sha256: sha256Hex(bytes), format: "sqlite-1" }, file };
}

/** A state database's seq and entries, read directly with node:sqlite (the test's own view of a file). */
export function readDatabase(file: string): { seq: number; entries: Array<[string, unknown]> } {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const seq = Number((db.prepare("SELECT value FROM reseat_meta WHERE name = 'seq'").get() as { value: number }).value);
    const rows = db.prepare("SELECT key, value FROM kv ORDER BY rowid").all() as Array<{ key: string; value: string }>;
    return { seq, entries: rows.map((row) => [row.key, JSON.parse(row.value)]) };
  } finally {
    db.close();
  }
}
