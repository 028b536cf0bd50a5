import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import type { Pool, PoolClient } from "pg";
import { ReseatStateError, StaleCommitError, StateConfigError } from "../errors";
import { commitsToPrune } from "./prunePolicy";
import { isCommitRecord, type CommitListing, type CommitRecord, type FetchResult, type PersistentStore } from "./types";

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
 * Plain bytea both ways: a commit is one transaction (insert-or-lock the PE's fence row, which waits for any
 * other holder; refuse an older generation with StaleCommitError; raise the fence; insert the record, replacing
 * one with the same (generation, seq), i.e. a retried commit; insert the snapshot file as bytea rows of
 * `chunkBytes`, read one at a time and sent as binary parameters; COMMIT). Readers see a commit whole or not at
 * all. A fetch reads the chunks one row at a time (as base64 text: node-postgres returns bytea only as text; one
 * chunk in memory at a time), in one REPEATABLE READ snapshot, into the target file while hashing; missing chunks,
 * a wrong length or sha256 make the commit "damaged". (A binary COPY measured ~1.7x faster than base64 rows
 * here, but needs a hand-written parser of the COPY format; restores are rare, so plain rows it is.)
 *
 * Pruning to the newest `keep` (prunePolicy: never the newest verified commit, nothing while none verifies;
 * a commit is verified once this instance has read it back whole) runs after the commit has returned, one
 * prune at a time; idle() and close() wait for it.
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
  /** Connections in the pool (default 2). */
  poolSize?: number;
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
const TABLE_NAME = /^[a-z_][a-z0-9_]{0,46}$/;
const COMMIT_ID = /^g(\d{10})-s(\d{16})$/;

interface Session {
  /** Set when the connection must be discarded rather than returned to the pool. */
  broken: boolean;
}

interface CommitRow {
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
  private readonly pool: Pool;
  private readonly password: PasswordSource;
  private readonly where: string;
  private readonly sql: ReturnType<typeof statements>;
  private schemaReady: Promise<void> | null = null;
  private closed = false;
  /** Commits this instance read back whole, with bytes matching their record. */
  private readonly verified = new Set<string>();
  private pruning: Promise<void> = Promise.resolve();

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
    // A connection dropping while idle (server restart, network) must not crash the process: node-postgres
    // emits 'error' on the pool (idle clients) and on the client (checked-out clients). The next operation
    // reconnects, or fails with an error the committer retries.
    this.pool.on("error", () => undefined);
    this.pool.on("connect", (client) => client.on("error", () => undefined));
  }

  async commit(record: CommitRecord, file: string): Promise<void> {
    if (!isCommitRecord(record)) throw new TypeError("invalid commit record");
    if (record.peId !== this.peId) throw new TypeError(`commit for PE "${record.peId}" sent to the store of PE "${this.peId}"`);
    const chunks = Math.ceil(record.bytes / this.chunkBytes);
    const source = await fs.open(file, "r");
    try {
      await this.transaction("commit", async (client) => {
        await this.lockFence(client, record.generation);
        const key = [this.peId, record.generation, record.seq];
        const row = [...key, JSON.stringify(record), record.bytes, record.sha256, chunks];
        if ((await client.query(this.sql.insertCommit, row)).rowCount === 0) {
          // Same (generation, seq) committed before (a retry whose first attempt did land): replace it.
          await client.query(this.sql.deleteCommit, key);
          await client.query(this.sql.insertCommit, row);
        }
        // The sha256 is not recomputed here: the committer just computed it from this file, and every
        // fetch verifies it. The length is checked: a file changing under us is a bug.
        const buffer = Buffer.allocUnsafe(Math.min(this.chunkBytes, Math.max(record.bytes, 1)));
        let copied = 0;
        for (let idx = 0; idx < chunks; idx++) {
          const { bytesRead } = await source.read(buffer, 0, Math.min(buffer.length, record.bytes - copied), copied);
          if (bytesRead === 0) break;
          await client.query(this.sql.insertChunk, [...key, idx, buffer.subarray(0, bytesRead)]);
          copied += bytesRead;
        }
        if (copied !== record.bytes || (await source.read(buffer, 0, 1, copied)).bytesRead !== 0) {
          throw new TypeError(`commit record says ${record.bytes} bytes but ${file} has ${copied === record.bytes ? "more" : copied}`);
        }
      });
    } finally {
      await source.close();
    }
    this.pruning = this.pruning.then(() => this.prune()).catch(() => undefined);
  }

  async fetch(id: string, target: string): Promise<FetchResult> {
    const result = await this.transaction("fetch", (client) => this.readCommit(client, id, target), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if ("record" in result) this.verified.add(id);
    return result;
  }

  /**
   * One commit's bytes, checked against its record, into `target` (null: only checked). A commit that
   * does not verify leaves no target behind.
   */
  private async readCommit(client: PoolClient, id: string, target: string | null): Promise<FetchResult> {
    const match = COMMIT_ID.exec(id);
    if (!match) return { damaged: "not a commit id" };
    const key = [this.peId, toSafeInteger(match[1]!), toSafeInteger(match[2]!)];
    const { rows } = await client.query<CommitRow>(this.sql.commitRow, key);
    const row = rows[0];
    if (!row) return { damaged: "gone (pruned meanwhile?)" };
    const record = parseRecord(row.record);
    if (!record) return { damaged: "commit record is not valid JSON of a commit" };
    if (
      record.peId !== this.peId ||
      record.generation !== key[1] ||
      record.seq !== key[2] ||
      record.bytes !== toSafeInteger(row.bytes) ||
      record.sha256 !== row.sha256
    ) {
      return { damaged: "commit record does not match its row" };
    }
    const out = target === null ? undefined : await fs.open(target, "wx");
    let ok = false;
    try {
      const hash = createHash("sha256");
      let length = 0;
      for (let idx = 0; idx < row.chunks; idx++) {
        const text = (await client.query<{ data: string }>(this.sql.chunk, [...key, idx])).rows[0]?.data;
        if (text === undefined) return { damaged: `chunk ${idx} of ${row.chunks} is missing` };
        const chunk = Buffer.from(text, "base64");
        hash.update(chunk);
        length += chunk.length;
        if (out) await out.write(chunk);
      }
      if (length !== record.bytes) return { damaged: `${length} bytes where the record says ${record.bytes}` };
      if (hash.digest("hex") !== record.sha256) return { damaged: "sha256 does not match the record" };
      await out?.sync();
      ok = true;
      return { record };
    } finally {
      await out?.close();
      if (!ok && target !== null && out) await fs.rm(target, { force: true });
    }
  }

  /** Keep the newest `keep` commits and the newest verified one (prunePolicy). */
  private async prune(): Promise<void> {
    const ids = (await this.list()).map((listing) => listing.id);
    // A store that cannot be read aborts the prune (nothing deleted): the next commit prunes again.
    const doomed = await commitsToPrune(ids, this.keep, async (id) => this.verified.has(id) || "record" in (await this.fetchToNowhere(id)));
    if (doomed.length === 0) return;
    const generations = doomed.map((id) => toSafeInteger(COMMIT_ID.exec(id)![1]!));
    const seqs = doomed.map((id) => toSafeInteger(COMMIT_ID.exec(id)![2]!));
    await this.withClient("prune", (client) => client.query(this.sql.deleteCommits, [this.peId, generations, seqs]));
    for (const id of doomed) this.verified.delete(id);
  }

  private async fetchToNowhere(id: string): Promise<FetchResult> {
    const result = await this.transaction("verify", (client) => this.readCommit(client, id, null), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if ("record" in result) this.verified.add(id);
    return result;
  }

  async list(): Promise<CommitListing[]> {
    return this.withClient("list", async (client) => {
      const { rows } = await client.query<{ generation: string; seq: string; record: string }>(this.sql.list, [this.peId]);
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

  /** Waits for pruning in flight. */
  async idle(): Promise<void> {
    await this.pruning;
  }

  /** Wait for a prune in flight, then end the pool. Further calls fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.idle();
    this.closed = true;
    await this.pool.end();
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
    deleteCommits: `DELETE FROM ${commits} WHERE pe_id = $1 AND (generation, seq) IN (SELECT * FROM unnest($2::bigint[], $3::bigint[]))`,
    insertCommit: `INSERT INTO ${commits} (pe_id, generation, seq, record, bytes, sha256, chunks) VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (pe_id, generation, seq) DO NOTHING`,
    insertChunk: `INSERT INTO ${chunks} (pe_id, generation, seq, idx, data) VALUES ($1, $2, $3, $4, $5)`,
    list: `SELECT generation, seq, record FROM ${commits} WHERE pe_id = $1 ${order}`,
    commitRow: `SELECT record, bytes, sha256, chunks FROM ${commits} WHERE pe_id = $1 AND generation = $2 AND seq = $3`,
    // node-postgres receives bytea only as text: base64 is a third smaller than hex and decodes faster.
    chunk: `SELECT encode(data, 'base64') AS data FROM ${chunks} WHERE pe_id = $1 AND generation = $2 AND seq = $3 AND idx = $4`,
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
