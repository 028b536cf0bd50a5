import { DatabaseSync } from "node:sqlite";
import { Worker } from "node:worker_threads";
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import { SCRATCH_PREFIX } from "./layout";

/**
 * The state database's format. One SQLite file:
 *
 *   kv(key TEXT NOT NULL UNIQUE, value TEXT NOT NULL)   one row per key, value = the document's JSON text;
 *                                                       rowid order = insertion order (an update keeps it)
 *   reseat_meta(name PRIMARY KEY, value)                 format, peId, seq (the last applied write)
 *
 * The same file format is the local database (in WAL mode while open) and, converted to a rollback-journal
 * database so that it is one self-contained file, the payload of a commit.
 */
export const DB_FORMAT = "reseat-state/sqlite-1";
/** CommitRecord.format of commits whose bytes are such a database (0.1 commits carry no format). */
export const COMMIT_FORMAT = "sqlite-1";

const SCHEMA = `
  CREATE TABLE kv (key TEXT NOT NULL UNIQUE, value TEXT NOT NULL);
  CREATE TABLE reseat_meta (name TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
`;

/** A name for a scratch file in `dir` (never clashes; cleaned up at start-up if left behind). */
export function scratchPath(dir: string, what: string): string {
  return path.join(dir, `${SCRATCH_PREFIX}${what}-${process.pid}-${randomBytes(4).toString("hex")}.db`);
}

/**
 * Write a complete state database into `file` (which must not exist): schema, meta and the given entries,
 * in one rollback-journal transaction with synchronous=FULL, so that the file is whole and fsync'd when
 * this returns. The caller moves it into place with placeDurably().
 */
export function buildDatabaseFile(file: string, content: { peId: string; seq: number; entries?: Iterable<[string, string]> }): void {
  const db = new DatabaseSync(file);
  try {
    db.exec("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL");
    db.exec("BEGIN");
    db.exec(SCHEMA);
    const meta = db.prepare("INSERT INTO reseat_meta (name, value) VALUES (?, ?)");
    meta.run("format", DB_FORMAT);
    meta.run("peId", content.peId);
    meta.run("seq", content.seq);
    const insert = db.prepare("INSERT INTO kv (key, value) VALUES (?, ?)");
    for (const [key, valueText] of content.entries ?? []) insert.run(key, valueText);
    db.exec("COMMIT");
  } finally {
    db.close();
  }
}

export interface InspectedDatabase {
  /** What PRAGMA integrity_check (and the format checks) found wrong; empty when the file is sound. */
  problems: string[];
  peId: string | null;
  seq: number | null;
  bytes: number;
  /** sha256 (hex) of the file as it is after inspection, when asked for. */
  sha256?: string;
}

export interface InspectOptions {
  /** Switch the file to a rollback journal first (a backup of a WAL database is marked WAL). */
  toRollbackJournal?: boolean;
  /** Hash the file (after any conversion). */
  hash?: boolean;
}

/**
 * Check a database file on a worker thread (node:sqlite is synchronous; an integrity check of a large
 * database must not stall the workload's event loop): PRAGMA integrity_check, the reseat format marker,
 * the seq and PE id it holds; optionally convert it and hash it. One worker per process serves every
 * check (starting a worker costs more than checking a small database); it keeps the process alive only
 * while a check is pending.
 */
export function inspectDatabaseFile(file: string, options: InspectOptions = {}): Promise<InspectedDatabase> {
  const inspector = (current ??= startInspector());
  const id = inspector.nextId++;
  inspector.worker.ref();
  return new Promise((resolve, reject) => {
    inspector.pending.set(id, { resolve, reject });
    inspector.worker.postMessage({ id, file, ...options, format: DB_FORMAT });
  });
}

/** Boot the worker ahead of the first check (the committer's first commit should not wait for it). */
export function warmUpInspector(): void {
  current ??= startInspector();
}

interface Inspector {
  worker: Worker;
  nextId: number;
  pending: Map<number, { resolve: (result: InspectedDatabase) => void; reject: (error: Error) => void }>;
}

let current: Inspector | undefined;

function startInspector(): Inspector {
  const inspector: Inspector = { worker: new Worker(INSPECT_WORKER, { eval: true }), nextId: 1, pending: new Map() };
  const fail = (error: Error) => {
    if (current === inspector) current = undefined;
    for (const { reject } of inspector.pending.values()) reject(error);
    inspector.pending.clear();
  };
  inspector.worker.on("message", ({ id, result }: { id: number; result: InspectedDatabase }) => {
    inspector.pending.get(id)?.resolve(result);
    inspector.pending.delete(id);
    if (inspector.pending.size === 0) inspector.worker.unref();
  });
  inspector.worker.on("error", fail);
  inspector.worker.on("exit", (code) => fail(new Error(`database inspection worker exited with code ${code}`)));
  inspector.worker.unref();
  return inspector;
}

// Plain JavaScript run by the worker (eval'd: no separate file to ship or resolve).
const INSPECT_WORKER = `
const { parentPort } = require("node:worker_threads");
const { DatabaseSync } = require("node:sqlite");
const { createHash } = require("node:crypto");
const fs = require("node:fs");

function inspect({ file, toRollbackJournal, hash, format }) {
  const result = { problems: [], peId: null, seq: null, bytes: 0 };
  let db;
  try {
    db = new DatabaseSync(file);
    // No shared-memory wal-index file (and no second connection) for this private copy.
    db.exec("PRAGMA locking_mode=EXCLUSIVE");
    if (toRollbackJournal) db.exec("PRAGMA journal_mode=DELETE");
    for (const row of db.prepare("PRAGMA integrity_check(20)").all()) {
      if (row.integrity_check !== "ok") result.problems.push("integrity_check: " + row.integrity_check);
    }
    const tables = new Set(db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all().map((row) => row.name));
    if (!tables.has("kv") || !tables.has("reseat_meta")) {
      result.problems.push("not a reseat state database (tables kv and reseat_meta missing)");
    } else {
      const meta = Object.fromEntries(db.prepare("SELECT name, value FROM reseat_meta").all().map((row) => [row.name, row.value]));
      if (meta.format !== format) result.problems.push("unknown format " + JSON.stringify(meta.format));
      result.peId = typeof meta.peId === "string" ? meta.peId : null;
      result.seq = Number.isSafeInteger(Number(meta.seq)) ? Number(meta.seq) : null;
      if (result.seq === null) result.problems.push("no seq in reseat_meta");
    }
  } catch (error) {
    result.problems.push(String(error && error.message ? error.message : error));
  } finally {
    try { if (db && db.isOpen) db.close(); } catch (error) { result.problems.push("close: " + error.message); }
  }
  try {
    result.bytes = fs.statSync(file).size;
    if (hash) {
      const digest = createHash("sha256");
      const fd = fs.openSync(file, "r");
      const buffer = Buffer.allocUnsafe(4 * 1024 * 1024);
      try {
        for (let read; (read = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0; ) digest.update(buffer.subarray(0, read));
      } finally {
        fs.closeSync(fd);
      }
      result.sha256 = digest.digest("hex");
    }
  } catch (error) {
    result.problems.push(String(error.message));
  }
  return result;
}

parentPort.on("message", (job) => parentPort.postMessage({ id: job.id, result: inspect(job) }));
`;
