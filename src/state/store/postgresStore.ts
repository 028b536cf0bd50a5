import { createHash, type Hash } from "node:crypto";
import { promises as fs } from "node:fs";
import type { Pool, PoolClient } from "pg";
import { ReseatStateError, StaleCommitError, StateConfigError } from "../errors";
import { isCommitRecord, type CommitListing, type CommitRecord, type PersistentStore, type VerifiedCommit } from "./types";

/**
 * Commits in PostgreSQL (RESEAT_STORE `{"kind":"postgres","host","port","database","user","passwordFile",
 * "table"?,"keep"?}`), three tables per configured name T (default `reseat_commits`):
 *
 *   T_fences (pe_id PK, generation)                      newest generation accepted per PE; every commit and claim
 *                                                        row-locks it until it ends, which serializes them
 *   T        (pe_id, generation, seq) PK, accepted (identity: acceptance order), record (the CommitRecord JSON),
 *            bytes, sha256, chunks, committed_at
 *   T_chunks (pe_id, generation, seq, idx) PK -> T ON DELETE CASCADE, data bytea (STORAGE EXTERNAL: snapshots are
 *            stored as they are, no pglz attempt)
 *
 * A commit is one transaction: insert-or-lock the PE's fence row (INSERT .. ON CONFLICT DO UPDATE, which waits
 * for any other holder), refuse an older generation (StaleCommitError), raise the fence, insert the record
 * (replacing one with the same (generation, seq): a retried commit), insert the snapshot as bytea chunks of
 * `chunkBytes` (binary parameters; the sha256 is checked while the server stores the previous chunk), COMMIT.
 * Readers see a commit whole or not at all.
 *
 * Pruning to the newest `keep` deletes as many bytes as a commit writes, which in PostgreSQL costs a third of
 * the insert again (every TOAST page of the old commit is rewritten). For snapshots of `parallelPruneMinBytes`
 * (default 8 MiB) and more it therefore runs in parallel, in a second transaction on its own connection, started once the fence
 * is held: it deletes the commits older than the new one beyond the newest keep - 1, and it COMMITs only after
 * the commit's own transaction has COMMITted (else it rolls back), with synchronous_commit off: losing it in a
 * crash only leaves one commit too many, which the next commit prunes. commit() resolves after both; a failed
 * prune does not fail the commit. Smaller snapshots prune inside the commit's transaction (one statement; a
 * second connection's round trips would cost more than the delete).
 *
 * latestValid() reads in one REPEATABLE READ snapshot: the records newest first, each with its chunk layout
 * (idx and octet_length, no data), which must be contiguous and add up to the record's length; then the bytes
 * arrive through `COPY ... TO STDOUT (FORMAT binary)` straight into one buffer of that length and are hashed
 * as they arrive (node-postgres returns bytea results only as hex text: COPY binary is ~3x faster). A commit
 * whose bytes do not verify is skipped for the next older one.
 *
 * `pg` is required when the first PostgresStore is constructed, not when this module loads: the state library
 * keeps loading with node: built-ins only for every other store kind.
 *
 * The password is read from `passwordFile` on each new connection (never taken from the config, never
 * stored in this object, removed from error messages). Errors reaching the server become
 * PostgresStoreError; the pool never crashes the process on a dropped connection.
 */

export interface PostgresStoreConfig {
  kind: "postgres";
  host: string;
  port?: number;
  database: string;
  user: string;
  /** A file holding the password (a trailing newline is ignored). */
  passwordFile: string;
  /** Base table name (default "reseat_commits"); also T_chunks and T_fences. */
  table?: string;
  /** How many commits to keep per PE (default 5). */
  keep?: number;
  /** Connection timeout (default 10 s). */
  connectTimeoutMs?: number;
  /** Server-side statement timeout, lock waits included (default 300 s). */
  statementTimeoutMs?: number;
}

export interface PostgresStoreOptions {
  host: string;
  port?: number;
  database: string;
  user: string;
  passwordFile: string;
  table?: string;
  keep?: number;
  connectTimeoutMs?: number;
  statementTimeoutMs?: number;
  /** Snapshot bytes per row of T_chunks (default 4 MiB). */
  chunkBytes?: number;
  /** Connections in the pool (default 2; plus one for the parallel prune). */
  poolSize?: number;
  /** Snapshots at least this big are pruned in parallel (default PARALLEL_PRUNE_MIN_BYTES; 0: always). */
  parallelPruneMinBytes?: number;
}

/** A failure talking to PostgreSQL (unreachable, authentication, SQL error, timeout). Never carries the password. */
export class PostgresStoreError extends ReseatStateError {
  constructor(
    message: string,
    /** SQLSTATE (e.g. "28P01") or errno code (e.g. "ECONNREFUSED") when known. */
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

type PgModule = typeof import("pg");
let pgModule: PgModule | undefined;

function loadPg(): PgModule {
  if (!pgModule) {
    try {
      pgModule = require("pg") as PgModule;
    } catch (error) {
      throw new StateConfigError(`the "postgres" store needs the "pg" package in node_modules: ${(error as Error).message.split("\n")[0]}`);
    }
  }
  return pgModule;
}

export const DEFAULT_POSTGRES_TABLE = "reseat_commits";
export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;
/** Snapshots at least this big are pruned in parallel (see the class comment). */
export const PARALLEL_PRUNE_MIN_BYTES = 8 * 1024 * 1024;
const TABLE_NAME = /^[a-z_][a-z0-9_]{0,46}$/;
const COPY_SIGNATURE = Buffer.from("PGCOPY\n\xff\r\n\0", "latin1");

interface PruneJob {
  /** Settles (never rejects) once the DELETE has run or failed. */
  deleted: Promise<void>;
  /** COMMIT (true: the commit's own transaction committed) or roll back, and release the connection. */
  finish(commit: boolean): Promise<void>;
}

interface Session {
  /** Set when the connection must be discarded rather than returned to the pool. */
  broken: boolean;
}

/** The chunks of one commit as stored: their idx and octet_length, in idx order (null when there are none). */
interface ChunkLayout {
  idxs: number[] | null;
  lengths: number[] | null;
}

interface CommitRow {
  generation: string;
  seq: string;
  record: string;
  bytes: string;
  sha256: string;
  chunks: number;
}

export class PostgresStore implements PersistentStore {
  readonly kind = "postgres";
  readonly table: string;
  readonly keep: number;
  readonly chunkBytes: number;
  private readonly parallelPruneMinBytes: number;
  private readonly pool: Pool;
  /** One connection for the parallel prune; separate, so it never waits behind committers queued on the fence. */
  private readonly prunePool: Pool;
  private readonly password: PasswordSource;
  private readonly where: string;
  private readonly sql: ReturnType<typeof statements>;
  private schemaReady: Promise<void> | null = null;
  private closed = false;

  /** Build from the parsed RESEAT_STORE object; validates every field (StateConfigError). */
  static fromConfig(config: { kind: string; [option: string]: unknown }, peId: string): PostgresStore {
    if ("password" in config) {
      throw new StateConfigError('postgres store: a "password" field is not accepted; put the password in a file and name it in "passwordFile"');
    }
    const { host, port, database, user, passwordFile, table, keep, connectTimeoutMs, statementTimeoutMs } = config;
    const str = (name: string, value: unknown): string => {
      if (typeof value !== "string" || value === "") throw new StateConfigError(`postgres store needs a string "${name}"`);
      return value;
    };
    const int = (name: string, value: unknown): number | undefined => {
      if (value === undefined) return undefined;
      if (typeof value !== "number" || !Number.isSafeInteger(value)) throw new StateConfigError(`postgres store "${name}" must be an integer`);
      return value;
    };
    const options: PostgresStoreOptions = {
      host: str("host", host),
      database: str("database", database),
      user: str("user", user),
      passwordFile: str("passwordFile", passwordFile),
    };
    if (port !== undefined) options.port = int("port", typeof port === "string" && /^\d+$/.test(port) ? Number(port) : port);
    if (table !== undefined) options.table = str("table", table);
    if (keep !== undefined) options.keep = int("keep", keep);
    if (connectTimeoutMs !== undefined) options.connectTimeoutMs = int("connectTimeoutMs", connectTimeoutMs);
    if (statementTimeoutMs !== undefined) options.statementTimeoutMs = int("statementTimeoutMs", statementTimeoutMs);
    return new PostgresStore(peId, options);
  }

  constructor(
    readonly peId: string,
    options: PostgresStoreOptions,
  ) {
    if (typeof peId !== "string" || peId === "") throw new StateConfigError("postgres store needs a peId");
    this.table = options.table ?? DEFAULT_POSTGRES_TABLE;
    if (!TABLE_NAME.test(this.table)) throw new StateConfigError(`postgres store "table" must match ${TABLE_NAME}, got "${this.table}"`);
    this.keep = options.keep ?? 5;
    if (!Number.isSafeInteger(this.keep) || this.keep < 1) throw new StateConfigError(`postgres store keep must be >= 1, got ${options.keep}`);
    this.chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!Number.isSafeInteger(this.chunkBytes) || this.chunkBytes < 1 || this.chunkBytes > 256 * 1024 * 1024) {
      throw new StateConfigError(`postgres store chunkBytes must be in 1..256 MiB, got ${options.chunkBytes}`);
    }
    this.parallelPruneMinBytes = options.parallelPruneMinBytes ?? PARALLEL_PRUNE_MIN_BYTES;
    const port = options.port ?? 5432;
    if (!Number.isSafeInteger(port) || port < 1 || port > 65535) throw new StateConfigError(`postgres store "port" must be 1..65535, got ${options.port}`);
    const statementTimeoutMs = options.statementTimeoutMs ?? 300_000;
    this.where = `postgres store ${options.host}:${port}/${options.database}`;
    this.password = passwordSource(options.passwordFile);
    this.sql = statements(this.table);
    const poolConfig = {
      host: options.host,
      port,
      database: options.database,
      user: options.user,
      password: this.password.read,
      max: options.poolSize ?? 2,
      idleTimeoutMillis: 30_000,
      allowExitOnIdle: true,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      keepAlive: true,
      statement_timeout: statementTimeoutMs,
      // Client-side too, for a server that stops answering without closing the connection.
      query_timeout: statementTimeoutMs + 30_000,
      // A committer that hangs mid-transaction must not hold the fence lock forever.
      idle_in_transaction_session_timeout: 60_000,
      application_name: `reseat-store ${peId}`.slice(0, 63),
    };
    const { Pool: PgPool } = loadPg();
    this.pool = new PgPool(poolConfig);
    this.prunePool = new PgPool({ ...poolConfig, max: 1, application_name: `reseat-prune ${peId}`.slice(0, 63) });
    // A connection dropping while idle (server restart, network) must not crash the process: node-postgres
    // emits 'error' on the pool (idle clients) and on the client (checked-out clients). The next operation
    // reconnects, or fails with an error the committer retries.
    for (const pool of [this.pool, this.prunePool]) {
      pool.on("error", () => undefined);
      pool.on("connect", (client) => client.on("error", () => undefined));
    }
  }

  async commit(record: CommitRecord, bytes: Uint8Array): Promise<void> {
    if (!isCommitRecord(record)) throw new TypeError("invalid commit record");
    if (record.peId !== this.peId) throw new TypeError(`commit for PE "${record.peId}" sent to the store of PE "${this.peId}"`);
    if (record.bytes !== bytes.length) throw new TypeError("commit record's bytes/sha256 do not describe the snapshot bytes");
    const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const chunks = Math.ceil(data.length / this.chunkBytes);
    let prune: PruneJob | undefined;
    try {
      await this.transaction("commit", async (client) => {
        await this.lockFence(client, record.generation);
        if (data.length < this.parallelPruneMinBytes) {
          await this.insertCommit(client, record, data, chunks);
          await client.query(this.sql.prune, [this.peId, this.keep]);
          return;
        }
        prune = this.startPrune(record);
        await this.insertCommit(client, record, data, chunks);
        // Only in odd cases (a commit older than `keep` others) is anything at or above the new one pruned.
        await client.query(this.sql.pruneFromNew, [this.peId, record.generation, record.seq, this.keep]);
        await prune.deleted;
      });
    } catch (error) {
      await prune?.finish(false);
      throw error;
    }
    await prune?.finish(true);
  }

  /** The record row (replacing a same-key one), then the chunks; the sha256 is checked while they upload. */
  private async insertCommit(client: PoolClient, record: CommitRecord, data: Buffer, chunks: number): Promise<void> {
    const key = [this.peId, record.generation, record.seq];
    const row = [...key, JSON.stringify(record), record.bytes, record.sha256, chunks];
    if ((await client.query(this.sql.insertCommit, row)).rowCount === 0) {
      // Same (generation, seq) committed before (a retry whose first attempt did land): replace it.
      await client.query(this.sql.deleteCommit, key);
      await client.query(this.sql.insertCommit, row);
    }
    const hash = createHash("sha256");
    for (let idx = 0; idx < chunks; idx++) {
      const chunk = data.subarray(idx * this.chunkBytes, (idx + 1) * this.chunkBytes);
      const stored = client.query(this.sql.insertChunk, [...key, idx, chunk]);
      hash.update(chunk); // while the server stores it
      await stored;
    }
    if (hash.digest("hex") !== record.sha256) throw new TypeError("commit record's bytes/sha256 do not describe the snapshot bytes");
  }

  /**
   * The parallel prune (see the class comment): BEGIN; DELETE the commits older than `record` beyond the newest
   * keep - 1; then wait for finish(true) to COMMIT or finish(false) to roll back. Never rejects.
   */
  private startPrune(record: CommitRecord): PruneJob {
    let client: PoolClient | undefined;
    let ok = false;
    const deleted = (async () => {
      client = await this.prunePool.connect();
      await client.query("BEGIN; SET LOCAL synchronous_commit TO off");
      await client.query(this.sql.pruneOlder, [this.peId, record.generation, record.seq, this.keep - 1]);
      ok = true;
    })().catch(() => undefined);
    return {
      deleted,
      finish: async (commit) => {
        await deleted;
        if (!client) return;
        let healthy = false;
        try {
          await client.query(commit && ok ? "COMMIT" : "ROLLBACK");
          healthy = true;
        } catch {
          // a prune that did not happen: one commit too many until the next commit
        } finally {
          client.release(healthy ? undefined : new Error("discarded after an error"));
        }
      },
    };
  }

  async latestValid(): Promise<VerifiedCommit | null> {
    return this.transaction(
      "latestValid",
      async (client) => {
        const { rows } = await client.query<CommitRow & ChunkLayout>(this.sql.listWithChunks, [this.peId]);
        for (const row of rows) {
          const verified = await this.readVerified(client, row);
          if (verified) return verified;
        }
        return null;
      },
      "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    );
  }

  async list(): Promise<CommitListing[]> {
    return this.withClient("list", async (client) => {
      const { rows } = await client.query<Pick<CommitRow, "generation" | "seq" | "record">>(this.sql.list, [this.peId]);
      return rows.map((row) => ({ id: commitId(row.generation, row.seq), record: parseRecord(row.record) }));
    });
  }

  async claimGeneration(generation: number): Promise<void> {
    if (!Number.isSafeInteger(generation) || generation < 0) throw new TypeError(`invalid generation ${generation}`);
    await this.transaction("claimGeneration", (client) => this.lockFence(client, generation));
  }

  async newestGeneration(): Promise<number> {
    return this.withClient("newestGeneration", async (client) => {
      const { rows } = await client.query<{ generation: string }>(this.sql.newestGeneration, [this.peId]);
      return toSafeInteger(rows[0]?.generation ?? "0");
    });
  }

  /** End the pools. Further calls fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.pool.end(), this.prunePool.end()]);
  }

  /**
   * Lock this PE's fence row (creating it at 0), refuse a generation older than the newest accepted, raise it
   * otherwise. Concurrent committers and claimers of one PE queue here until the holder's transaction ends.
   */
  private async lockFence(client: PoolClient, generation: number): Promise<void> {
    const { rows } = await client.query<{ generation: string; newest_commit: string | null }>(this.sql.lockFence, [this.peId]);
    const row = rows[0];
    if (!row) throw new Error("fence row vanished");
    const newest = Math.max(toSafeInteger(row.generation), toSafeInteger(row.newest_commit ?? "0"));
    if (generation < newest) throw new StaleCommitError(generation, newest);
    if (generation > toSafeInteger(row.generation)) await client.query(this.sql.raiseFence, [this.peId, generation]);
  }

  /** One commit's bytes, verified; null when anything does not add up. */
  private async readVerified(client: PoolClient, row: CommitRow & ChunkLayout): Promise<VerifiedCommit | null> {
    const record = parseRecord(row.record);
    const length = toSafeInteger(row.bytes);
    if (
      !record ||
      record.peId !== this.peId ||
      String(record.generation) !== row.generation ||
      String(record.seq) !== row.seq ||
      record.bytes !== length ||
      record.sha256 !== row.sha256
    ) {
      return null;
    }
    const idxs = row.idxs ?? [];
    const lengths = row.lengths ?? [];
    let total = 0;
    for (const [position, idx] of idxs.entries()) {
      if (idx !== position) return null;
      total += lengths[position]!;
    }
    if (idxs.length !== row.chunks || lengths.length !== row.chunks || total !== length) return null;
    const reader = new CopyOutInto(
      `COPY (SELECT data FROM ${this.sql.chunks} WHERE pe_id = ${loadPg().escapeLiteral(this.peId)} AND generation = ${toSafeInteger(row.generation)} AND seq = ${toSafeInteger(row.seq)} ORDER BY idx) TO STDOUT (FORMAT binary)`,
      Buffer.allocUnsafe(length),
      lengths,
    );
    const result = await client.query(reader).done;
    if (!result.complete || result.sha256 !== record.sha256) return null;
    return { id: commitId(row.generation, row.seq), record, bytes: result.bytes };
  }

  private async ensureSchema(client: PoolClient): Promise<void> {
    this.schemaReady ??= this.createSchema(client).catch((error: unknown) => {
      this.schemaReady = null; // try again next time
      throw error;
    });
    return this.schemaReady;
  }

  /** CREATE TABLE IF NOT EXISTS, serialized across processes by an advisory lock; a lost race is tolerated. */
  private async createSchema(client: PoolClient): Promise<void> {
    const { rows } = await client.query<{ ready: boolean }>(this.sql.schemaExists);
    if (rows[0]?.ready) return;
    for (let attempt = 1; ; attempt++) {
      try {
        await client.query("BEGIN");
        await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`reseat-store-schema:${this.table}`]);
        const again = await client.query<{ ready: boolean }>(this.sql.schemaExists);
        if (!again.rows[0]?.ready) for (const statement of this.sql.createSchema) await client.query(statement);
        await client.query("COMMIT");
        return;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined);
        // Someone without our advisory lock created a table or type in between: look again.
        const code = (error as { code?: unknown }).code;
        if (attempt < 3 && (code === "23505" || code === "42P07" || code === "42710")) continue;
        throw error;
      }
    }
  }

  /** Run `work` on a pooled connection (schema ensured); errors become PostgresStoreError. */
  private async withClient<T>(operation: string, work: (client: PoolClient, session: Session) => Promise<T>): Promise<T> {
    if (this.closed) throw new PostgresStoreError(`${this.where}: ${operation} after close()`, undefined);
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.wrap(`${operation} (connecting)`, error);
    }
    const session: Session = { broken: false };
    try {
      await this.ensureSchema(client);
      return await work(client, session);
    } catch (error) {
      if (isOwnError(error)) throw error;
      session.broken = true;
      throw this.wrap(operation, error);
    } finally {
      // After a connection/SQL error the session state is unknown: drop the connection (the server rolls back).
      client.release(session.broken ? new Error("discarded after an error") : undefined);
    }
  }

  /** `work` inside BEGIN..COMMIT; any throw rolls back (StaleCommitError and TypeError pass through unchanged). */
  private async transaction<T>(operation: string, work: (client: PoolClient) => Promise<T>, begin = "BEGIN"): Promise<T> {
    return this.withClient(operation, async (client, session) => {
      await client.query(begin);
      let result: T;
      try {
        result = await work(client);
      } catch (error) {
        if (isOwnError(error)) {
          await client.query("ROLLBACK").catch(() => {
            session.broken = true;
          });
        }
        throw error;
      }
      await client.query("COMMIT");
      return result;
    });
  }

  private wrap(operation: string, error: unknown): PostgresStoreError {
    const raw = error instanceof Error ? error.message || error.name : String(error);
    const code = (error as { code?: unknown } | null)?.code;
    return new PostgresStoreError(`${this.where}: ${operation} failed: ${this.password.redact(raw)}`, typeof code === "string" ? code : undefined);
  }
}

/** Errors this store raises on purpose; they leave the connection healthy and are not wrapped. */
function isOwnError(error: unknown): boolean {
  return error instanceof StaleCommitError || error instanceof TypeError || error instanceof PostgresStoreError;
}

interface PasswordSource {
  read: () => Promise<string>;
  /** Replace the password, if it occurs, in a message. */
  redact: (text: string) => string;
}

/** Reads the password file on each new connection; the password lives only in this closure and in pg's client. */
function passwordSource(file: string): PasswordSource {
  let known: string | undefined;
  return {
    read: async () => {
      const text = await fs.readFile(file, "utf8");
      const password = text.replace(/\r?\n$/, "");
      if (password === "") throw new Error(`password file ${file} is empty`);
      known = password;
      return password;
    },
    redact: (text) => (known ? text.split(known).join("[redacted]") : text),
  };
}

function statements(table: string) {
  const commits = `"${table}"`;
  const chunks = `"${table}_chunks"`;
  const fences = `"${table}_fences"`;
  const order = "ORDER BY generation DESC, seq DESC";
  return {
    chunks,
    schemaExists: `SELECT to_regclass('${commits}') IS NOT NULL AND to_regclass('${chunks}') IS NOT NULL AND to_regclass('${fences}') IS NOT NULL AS ready`,
    createSchema: [
      `CREATE TABLE IF NOT EXISTS ${fences} (
         pe_id text PRIMARY KEY,
         generation bigint NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${commits} (
         pe_id text NOT NULL,
         generation bigint NOT NULL,
         seq bigint NOT NULL,
         accepted bigint GENERATED ALWAYS AS IDENTITY,
         record text NOT NULL,
         bytes bigint NOT NULL,
         sha256 text NOT NULL,
         chunks integer NOT NULL,
         committed_at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (pe_id, generation, seq))`,
      `CREATE TABLE IF NOT EXISTS ${chunks} (
         pe_id text NOT NULL,
         generation bigint NOT NULL,
         seq bigint NOT NULL,
         idx integer NOT NULL,
         data bytea NOT NULL,
         PRIMARY KEY (pe_id, generation, seq, idx),
         FOREIGN KEY (pe_id, generation, seq) REFERENCES ${commits} ON DELETE CASCADE)`,
      `ALTER TABLE ${chunks} ALTER COLUMN data SET STORAGE EXTERNAL`,
    ],
    // Insert-or-lock in one statement: ON CONFLICT DO UPDATE row-locks the existing row (waiting for a holder)
    // and returns its newest committed version.
    lockFence: `INSERT INTO ${fences} AS f (pe_id, generation) VALUES ($1, 0)
                  ON CONFLICT (pe_id) DO UPDATE SET generation = f.generation
                  RETURNING f.generation, (SELECT max(c.generation) FROM ${commits} c WHERE c.pe_id = $1) AS newest_commit`,
    raiseFence: `UPDATE ${fences} SET generation = $2 WHERE pe_id = $1`,
    deleteCommit: `DELETE FROM ${commits} WHERE pe_id = $1 AND generation = $2 AND seq = $3`,
    insertCommit: `INSERT INTO ${commits} (pe_id, generation, seq, record, bytes, sha256, chunks) VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (pe_id, generation, seq) DO NOTHING`,
    insertChunk: `INSERT INTO ${chunks} (pe_id, generation, seq, idx, data) VALUES ($1, $2, $3, $4, $5)`,
    prune: `DELETE FROM ${commits} WHERE pe_id = $1 AND (generation, seq) NOT IN
              (SELECT generation, seq FROM ${commits} WHERE pe_id = $1 ${order} LIMIT $2)`,
    // The two halves of "keep the newest $4" around a new commit ($2, $3), disjoint so that they never wait for
    // each other's row locks: older ones (run in parallel, before the new commit is visible: keep $4 = keep - 1),
    // and the new one or newer (in the commit's transaction: keep $4 = keep).
    pruneOlder: `DELETE FROM ${commits} WHERE pe_id = $1 AND (generation, seq) < ($2, $3) AND (generation, seq) NOT IN
                   (SELECT generation, seq FROM ${commits} WHERE pe_id = $1 ${order} LIMIT $4)`,
    pruneFromNew: `DELETE FROM ${commits} WHERE pe_id = $1 AND (generation, seq) >= ($2, $3) AND (generation, seq) NOT IN
                     (SELECT generation, seq FROM ${commits} WHERE pe_id = $1 ${order} LIMIT $4)`,
    list: `SELECT generation, seq, record FROM ${commits} WHERE pe_id = $1 ${order}`,
    // octet_length of an out-of-line bytea reads its TOAST pointer only, not the data.
    listWithChunks: `SELECT c.generation, c.seq, c.record, c.bytes, c.sha256, c.chunks, k.idxs, k.lengths
                       FROM ${commits} c
                       LEFT JOIN LATERAL (
                         SELECT array_agg(idx ORDER BY idx) AS idxs, array_agg(octet_length(data) ORDER BY idx) AS lengths
                           FROM ${chunks} k WHERE k.pe_id = c.pe_id AND k.generation = c.generation AND k.seq = c.seq) k ON true
                      WHERE c.pe_id = $1 ${order}`,
    newestGeneration: `SELECT GREATEST(
                         COALESCE((SELECT generation FROM ${fences} WHERE pe_id = $1), 0),
                         COALESCE((SELECT max(generation) FROM ${commits} WHERE pe_id = $1), 0)) AS generation`,
  };
}

function commitId(generation: string | number, seq: string | number): string {
  return `g${String(generation).padStart(10, "0")}-s${String(seq).padStart(16, "0")}`;
}

function parseRecord(text: string): CommitRecord | null {
  try {
    const parsed: unknown = JSON.parse(text);
    return isCommitRecord(parsed) ? parsed : null;
  } catch {
    return null;
  }
}

function toSafeInteger(value: string | number): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number)) throw new Error(`not a safe integer: ${value}`);
  return number;
}

interface CopyOutResult {
  /** Every expected field arrived with its expected length, then the trailer. */
  complete: boolean;
  sha256: string;
  bytes: Buffer;
}

/**
 * A node-postgres Submittable running `COPY (SELECT <one bytea column>) TO STDOUT (FORMAT binary)` and
 * writing the fields, in order, straight into `target` (no hex text, no per-row Buffers), hashing as the
 * data arrives. `expected` are the field lengths the caller already knows; any deviation (or NULL, or a
 * second column) makes the result incomplete rather than overflowing `target`.
 *
 * Binary COPY: 11-byte signature, int32 flags, int32 extension length + extension; per tuple int16 field
 * count, then per field int32 length (-1 = NULL) and the bytes; int16 -1 as trailer. CopyData message
 * boundaries are not relied on.
 */
class CopyOutInto {
  readonly done: Promise<CopyOutResult>;
  /** Set by node-postgres' query_timeout wrapper; called when finished. */
  callback?: (error: Error | null, result?: unknown) => void;
  private resolve!: (result: CopyOutResult) => void;
  private reject!: (error: Error) => void;
  private finished = false;
  private readonly hash: Hash = createHash("sha256");
  private readonly pending = Buffer.alloc(19);
  private pendingLength = 0;
  private state: "header" | "extension" | "tuple" | "fieldLength" | "field" | "trailer" | "invalid" = "header";
  private remaining = 0;
  private offset = 0;
  private field = 0;

  constructor(
    private readonly text: string,
    private readonly target: Buffer,
    private readonly expected: number[],
  ) {
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.done.catch(() => undefined); // awaited by the caller; never an unhandled rejection
  }

  submit(connection: { query(text: string): void }): void {
    connection.query(this.text);
  }

  handleCopyData(message: { chunk: Buffer }): void {
    let data = message.chunk;
    while (data.length > 0 && this.state !== "invalid" && this.state !== "trailer") {
      if (this.state === "field") {
        const take = Math.min(this.remaining, data.length);
        const piece = data.subarray(0, take);
        piece.copy(this.target, this.offset);
        this.hash.update(piece);
        this.offset += take;
        this.remaining -= take;
        data = data.subarray(take);
        if (this.remaining === 0) {
          this.field++;
          this.state = "tuple";
        }
        continue;
      }
      if (this.state === "extension") {
        const take = Math.min(this.remaining, data.length);
        this.remaining -= take;
        data = data.subarray(take);
        if (this.remaining === 0) this.state = "tuple";
        continue;
      }
      const need = this.state === "header" ? 19 : this.state === "tuple" ? 2 : 4;
      const take = Math.min(need - this.pendingLength, data.length);
      data.copy(this.pending, this.pendingLength, 0, take);
      this.pendingLength += take;
      data = data.subarray(take);
      if (this.pendingLength < need) continue;
      this.pendingLength = 0;
      this.advance();
    }
    if (data.length > 0) this.state = "invalid"; // bytes after the trailer
  }

  private advance(): void {
    switch (this.state) {
      case "header": {
        if (!this.pending.subarray(0, 11).equals(COPY_SIGNATURE)) {
          this.state = "invalid";
          return;
        }
        this.remaining = this.pending.readUInt32BE(15);
        this.state = this.remaining > 0 ? "extension" : "tuple";
        return;
      }
      case "tuple": {
        const fields = this.pending.readInt16BE(0);
        if (fields === -1) this.state = "trailer";
        else if (fields === 1 && this.field < this.expected.length) this.state = "fieldLength";
        else this.state = "invalid";
        return;
      }
      case "fieldLength": {
        const length = this.pending.readInt32BE(0);
        if (length !== this.expected[this.field] || this.offset + length > this.target.length) {
          this.state = "invalid";
        } else if (length === 0) {
          this.field++;
          this.state = "tuple";
        } else {
          this.remaining = length;
          this.state = "field";
        }
        return;
      }
      default:
        this.state = "invalid";
    }
  }

  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}

  handleCopyInResponse(connection: { sendCopyFail(message: string): void }): void {
    connection.sendCopyFail("reseat: unexpected COPY FROM");
  }

  handleReadyForQuery(): void {
    const complete = this.state === "trailer" && this.field === this.expected.length && this.offset === this.target.length;
    this.finish(null, { complete, sha256: this.hash.digest("hex"), bytes: this.target });
  }

  handleError(error: Error): void {
    this.finish(error);
  }

  private finish(error: Error | null, result?: CopyOutResult): void {
    if (this.finished) return;
    this.finished = true;
    if (error) this.reject(error);
    else this.resolve(result!);
    this.callback?.(error, result);
  }
}
