// The `postgres` persistent store against a real PostgreSQL 15 (the private cluster of scripts/postgres.sh).
// Each test uses its own peId; the whole file uses its own tables, dropped at the end.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { inspect } from "node:util";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CommitRecord,
  openStore,
  openStoreFromEnv,
  PostgresStore,
  PostgresStoreError,
  type PostgresStoreOptions,
  StaleCommitError,
  StaleGenerationError,
  StateConfigError,
} from "../../../packages/state/src/index";
import { sha256Hex } from "../../../packages/state/src/fsUtil";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const SCRIPT = path.join(ROOT, "scripts", "postgres.sh");
const TABLE = `reseat_it_${process.pid}_${randomBytes(3).toString("hex")}`;
const WRONG_PASSWORD = `wrong-Pw-${randomBytes(6).toString("hex")}`;

interface PgEnv {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

let pg: PgEnv;
let dir: string;
let passwordFile: string;
const opened: PostgresStore[] = [];
const uncaught: unknown[] = [];
const onUncaught = (error: unknown) => uncaught.push(error);

function postgresScript(command: "start" | "stop"): void {
  execFileSync("bash", [SCRIPT, command], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
}

/** What `scripts/postgres.sh env` exports, evaluated by bash (the password may be shell-quoted). */
function postgresEnv(): PgEnv {
  const out = execFileSync(
    "bash",
    ["-c", `eval "$(bash "$0" env)"; printf '%s\\0' "$RESEAT_PG_HOST" "$RESEAT_PG_PORT" "$RESEAT_PG_DATABASE" "$RESEAT_PG_USER" "$RESEAT_PG_PASSWORD"`, SCRIPT],
    { cwd: ROOT, encoding: "utf8" },
  );
  const [host, port, database, user, password] = out.split("\0");
  return { host: host!, port: Number(port), database: database!, user: user!, password: password! };
}

function uniquePe(name: string): string {
  return `${name}-${randomBytes(4).toString("hex")}`;
}

function storeOptions(extra: Partial<PostgresStoreOptions> = {}): PostgresStoreOptions {
  return { host: pg.host, port: pg.port, database: pg.database, user: pg.user, passwordFile, table: TABLE, ...extra };
}

function store(peId: string, extra: Partial<PostgresStoreOptions> = {}): PostgresStore {
  const created = new PostgresStore(peId, storeOptions(extra));
  opened.push(created);
  return created;
}

let files = 0;

/** A snapshot file and the record describing it, as the committer hands them to a store. */
function commitOf(peId: string, generation: number, seq: number, bytes: Buffer = Buffer.from(`state of ${peId}@${generation}/${seq}`)) {
  const record: CommitRecord = { peId, generation, seq, at: new Date().toISOString(), bytes: bytes.length, sha256: sha256Hex(bytes), format: "sqlite-1" };
  const file = path.join(dir, `snapshot-${files++}`);
  writeFileSync(file, bytes);
  return { record, file };
}

async function commit(target: PostgresStore, generation: number, seq: number, bytes?: Buffer): Promise<CommitRecord> {
  const { record, file } = commitOf(target.peId, generation, seq, bytes);
  await target.commit(record, file);
  return record;
}

/** The newest commit that verifies, with its bytes (what a restore would start from). */
async function latestValid(target: PostgresStore): Promise<{ id: string; record: CommitRecord; bytes: Buffer } | null> {
  for (const { id } of await target.list()) {
    const file = path.join(dir, `fetched-${files++}`);
    const result = await target.fetch(id, file);
    if ("record" in result) return { id, record: result.record, bytes: readFileSync(file) };
  }
  return null;
}

async function fetchResult(target: PostgresStore, id: string) {
  return target.fetch(id, path.join(dir, `fetched-${files++}`));
}

/** Direct SQL as the reseat role, for damaging commits and inspecting tables. */
async function sql<T extends Record<string, unknown>>(text: string, values: unknown[] = []): Promise<T[]> {
  const client = new Client({ host: pg.host, port: pg.port, database: pg.database, user: pg.user, password: pg.password });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

beforeAll(() => {
  postgresScript("start");
  pg = postgresEnv();
  dir = mkdtempSync(path.join(tmpdir(), "reseat-pg-it-"));
  passwordFile = path.join(dir, "password");
  writeFileSync(passwordFile, `${pg.password}\n`, { mode: 0o600 });
  process.on("uncaughtException", onUncaught);
});

afterAll(async () => {
  process.off("uncaughtException", onUncaught);
  postgresScript("start"); // in case a test stopped it and failed before starting it again
  for (const one of opened) await one.close();
  await sql(`DROP TABLE IF EXISTS "${TABLE}_chunks", "${TABLE}", "${TABLE}_fences"`).catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("postgres store", () => {
  it("round-trips commits (empty, small, multi-chunk, 20 MiB) and lists them newest first", async () => {
    const peId = uniquePe("roundtrip");
    const small = store(peId, { chunkBytes: 1000 });
    expect(await latestValid(small)).toBeNull();
    expect(await small.list()).toEqual([]);
    expect(await small.newestGeneration()).toBe(0);

    await commit(small, 1, 1, Buffer.alloc(0));
    expect((await latestValid(small))?.bytes.length).toBe(0);

    const multi = randomBytes(3500); // 4 chunks of 1000
    const multiRecord = await commit(small, 1, 2, multi);
    const latest = await latestValid(small);
    expect(latest?.record).toEqual(multiRecord);
    expect(latest?.id).toBe("g0000000001-s0000000000000002");
    expect(latest?.bytes.equals(multi)).toBe(true);
    const [chunks] = await sql<{ n: string }>(`SELECT count(*) AS n FROM "${TABLE}_chunks" WHERE pe_id = $1 AND seq = 2`, [peId]);
    expect(Number(chunks!.n)).toBe(4);

    // A second process (its own pool, default chunk size) sees the same; 20 MiB spans several COPY messages.
    const other = store(peId);
    const big = randomBytes(20 * 1024 * 1024 + 123);
    const bigRecord = await commit(other, 2, 3, big);
    const restored = await latestValid(small);
    expect(restored?.record).toEqual(bigRecord);
    expect(restored?.bytes.equals(big)).toBe(true);
    expect((await other.list()).map((c) => [c.id, c.record?.seq])).toEqual([
      ["g0000000002-s0000000000000003", 3],
      ["g0000000001-s0000000000000002", 2],
      ["g0000000001-s0000000000000001", 1],
    ]);
    expect(await other.newestGeneration()).toBe(2);

    // Committing the same (generation, seq) again replaces it (a retried commit whose first try did land).
    const again = await commit(other, 2, 3, Buffer.from("retried"));
    expect((await latestValid(small))?.record).toEqual(again);
    expect(await small.list()).toHaveLength(3);
  });

  it("is opened from RESEAT_STORE and refuses a password in the JSON without echoing it", async () => {
    const peId = uniquePe("env");
    const config = { kind: "postgres", host: pg.host, port: pg.port, database: pg.database, user: pg.user, passwordFile, table: TABLE, keep: 2 };
    const fromEnv = openStoreFromEnv(peId, { RESEAT_STORE: JSON.stringify(config) });
    expect(fromEnv).toBeInstanceOf(PostgresStore);
    opened.push(fromEnv as PostgresStore);
    await commit(fromEnv as PostgresStore, 1, 1);
    expect((await latestValid(fromEnv as PostgresStore))?.record.seq).toBe(1);
    expect((fromEnv as PostgresStore).keep).toBe(2);

    const secret = `s3cret-${randomBytes(4).toString("hex")}`;
    let thrown: unknown;
    try {
      openStore({ ...config, password: secret }, peId);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(StateConfigError);
    expect(inspect(thrown)).not.toContain(secret);
    expect(() => openStore({ kind: "postgres", host: pg.host, database: "reseat", user: "reseat" }, peId)).toThrow(/passwordFile/);
    expect(() => openStore({ ...config, table: "Bad-Name" }, peId)).toThrow(StateConfigError);
  });

  it("falls back to the previous commit when the newest one is damaged", async () => {
    const peId = uniquePe("damaged");
    const s = store(peId, { chunkBytes: 64 });
    for (let seq = 1; seq <= 5; seq++) await commit(s, 1, seq, randomBytes(200 + seq));
    const chunkWhere = (seq: number) => `pe_id = '${peId}' AND generation = 1 AND seq = ${seq}`;

    const id = (seq: number) => `g0000000001-s${String(seq).padStart(16, "0")}`;
    // 5: one bit flipped inside a chunk -> sha256 mismatch
    await sql(`UPDATE "${TABLE}_chunks" SET data = set_byte(data, 3, get_byte(data, 3) # 1) WHERE ${chunkWhere(5)} AND idx = 1`);
    expect(await fetchResult(s, id(5))).toEqual({ damaged: "sha256 does not match the record" });
    expect((await latestValid(s))?.record.seq).toBe(4);
    // 4: a chunk missing
    await sql(`DELETE FROM "${TABLE}_chunks" WHERE ${chunkWhere(4)} AND idx = 2`);
    expect(await fetchResult(s, id(4))).toEqual({ damaged: "chunk 2 of 4 is missing" });
    expect((await latestValid(s))?.record.seq).toBe(3);
    // 3: the last chunk truncated (torn)
    await sql(`UPDATE "${TABLE}_chunks" SET data = substring(data from 1 for 5) WHERE ${chunkWhere(3)} AND idx = 3`);
    expect(await fetchResult(s, id(3))).toEqual({ damaged: "197 bytes where the record says 203" });
    expect((await latestValid(s))?.record.seq).toBe(2);
    // 2: the record is garbage (list() shows it as unreadable)
    await sql(`UPDATE "${TABLE}" SET record = '{not json' WHERE ${chunkWhere(2)}`);
    const latest = await latestValid(s);
    expect(latest?.record.seq).toBe(1);
    expect(latest?.bytes.length).toBe(201);
    expect((await s.list()).map((c) => c.record?.seq ?? null)).toEqual([5, 4, 3, null, 1]);
    // all damaged -> null
    await sql(`UPDATE "${TABLE}_chunks" SET data = set_byte(data, 0, get_byte(data, 0) # 128) WHERE ${chunkWhere(1)} AND idx = 0`);
    expect(await latestValid(s)).toBeNull();
  });

  it("rejects commits and claims from a generation older than the newest accepted", async () => {
    const peId = uniquePe("fence");
    const s = store(peId);
    await commit(s, 1, 1);
    await s.claimGeneration(3);
    expect(await s.newestGeneration()).toBe(3);

    const stale = commitOf(peId, 2, 2);
    const error = await s.commit(stale.record, stale.file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StaleCommitError);
    expect(error).toBeInstanceOf(StaleGenerationError);
    expect((error as StaleCommitError).newerGeneration).toBe(3);
    await expect(s.claimGeneration(2)).rejects.toThrow(StaleCommitError);
    expect((await latestValid(s))?.record.generation).toBe(1); // nothing of generation 2 landed

    await commit(s, 3, 2);
    await commit(s, 4, 3); // a commit raises the fence too
    await expect(s.claimGeneration(3)).rejects.toThrow(StaleCommitError);
    await s.claimGeneration(4); // same generation again is fine
    expect(await s.newestGeneration()).toBe(4);
    expect((await latestValid(s))?.record.generation).toBe(4);
  });

  it("serializes concurrent committers of one PE on the fence row: the older generation loses", async () => {
    const peId = uniquePe("race");
    const older = store(peId, { keep: 100 });
    const newer = store(peId, { keep: 100 });
    await older.claimGeneration(2);

    // Hold the fence row; queue generation 3 first, then generation 2, then let them go.
    const holder = new Client({ host: pg.host, port: pg.port, database: pg.database, user: pg.user, password: pg.password });
    await holder.connect();
    try {
      await holder.query("BEGIN");
      await holder.query(`SELECT * FROM "${TABLE}_fences" WHERE pe_id = $1 FOR UPDATE`, [peId]);
      // Asked on fresh connections: inside a transaction pg_stat_activity is a snapshot that never changes.
      const waiting = async () =>
        Number(
          (
            await sql<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", [
              `reseat-store ${peId}`,
            ])
          )[0]!.n,
        );
      const three = commitOf(peId, 3, 10);
      const committedThree = newer.commit(three.record, three.file);
      await waitFor("generation 3 to queue on the fence", async () => (await waiting()) === 1);
      const two = commitOf(peId, 2, 11);
      const committedTwo = older.commit(two.record, two.file).catch((e: unknown) => e);
      await waitFor("generation 2 to queue on the fence", async () => (await waiting()) === 2);
      await holder.query("COMMIT");
      await committedThree;
      expect(await committedTwo).toBeInstanceOf(StaleCommitError);
    } finally {
      await holder.end();
    }
    expect((await latestValid(older))?.record.seq).toBe(10);

    // Free-running races between generations g and g+1: whatever lands, generations never go down in
    // acceptance order, and the newest generation always wins.
    for (let g = 4; g < 12; g += 2) {
      const a = commitOf(peId, g, 100 + g);
      const b = commitOf(peId, g + 1, 101 + g);
      const [ra, rb] = await Promise.allSettled([older.commit(a.record, a.file), newer.commit(b.record, b.file)]);
      expect(rb.status).toBe("fulfilled");
      if (ra.status === "rejected") expect(ra.reason).toBeInstanceOf(StaleCommitError);
    }
    const accepted = await sql<{ generation: string }>(`SELECT generation FROM "${TABLE}" WHERE pe_id = $1 ORDER BY accepted`, [peId]);
    const generations = accepted.map((row) => Number(row.generation));
    expect(generations).toEqual([...generations].sort((x, y) => x - y));
    expect(generations.at(-1)).toBe(11);
    expect(await older.newestGeneration()).toBe(11);

    // The same with pruning (keep 2) racing along.
    const racePe = uniquePe("race-prune");
    const pruning = { keep: 2, chunkBytes: 64 };
    const [p1, p2] = [store(racePe, pruning), store(racePe, pruning)];
    for (let g = 1; g < 13; g += 2) {
      const a = commitOf(racePe, g, 10 * g, randomBytes(300));
      const b = commitOf(racePe, g + 1, 10 * g + 1, randomBytes(300));
      const results = await Promise.allSettled([p1.commit(a.record, a.file), p2.commit(b.record, b.file)]);
      expect(results[1].status).toBe("fulfilled");
    }
    await Promise.all([p1.idle(), p2.idle()]);
    const kept = await p1.list();
    expect(kept).toHaveLength(2);
    expect(kept[0]?.record?.generation).toBe(12);
    expect((await latestValid(p2))?.record.generation).toBe(12);
  });

  it("keeps only the newest K commits (records and chunks), never the newest verified one, nothing while none verifies", async () => {
    const peId = uniquePe("keep");
    const s = store(peId, { keep: 3, chunkBytes: 100 });
    for (let seq = 1; seq <= 4; seq++) await commit(s, 1, seq, randomBytes(250));
    await commit(s, 2, 5, randomBytes(250));
    await commit(s, 2, 6, randomBytes(250));
    await s.idle();
    expect((await s.list()).map((c) => c.id)).toEqual(["g0000000002-s0000000000000006", "g0000000002-s0000000000000005", "g0000000001-s0000000000000004"]);
    const chunkSeqs = await sql<{ seq: string; n: string }>(`SELECT seq, count(*) AS n FROM "${TABLE}_chunks" WHERE pe_id = $1 GROUP BY seq ORDER BY seq`, [
      peId,
    ]);
    expect(chunkSeqs.map((row) => [Number(row.seq), Number(row.n)])).toEqual([
      [4, 3],
      [5, 3],
      [6, 3],
    ]);

    // A commit that fails (its record does not describe its file) is rolled back whole and prunes nothing.
    const single = store(uniquePe("keep-one"), { keep: 1, chunkBytes: 100 });
    await commit(single, 1, 1, Buffer.from("the one to keep"));
    const bad = commitOf(single.peId, 1, 2, randomBytes(250));
    await expect(single.commit({ ...bad.record, bytes: 249 }, bad.file)).rejects.toThrow(TypeError);
    await single.idle();
    expect((await latestValid(single))?.bytes.toString()).toBe("the one to keep");
    expect(await single.list()).toHaveLength(1);

    // New commits whose bytes do not match their records (keep 1): the older good one is the newest verified
    // and stays; once nothing verifies any more, nothing is deleted.
    const damaged = (target: PostgresStore, seq: number) => {
      const c = commitOf(single.peId, 1, seq, randomBytes(250));
      return target.commit({ ...c.record, sha256: "0".repeat(64) }, c.file);
    };
    await damaged(single, 3);
    await damaged(single, 4);
    await single.idle();
    expect((await single.list()).map((c) => c.record?.seq)).toEqual([4, 1]);
    await sql(`UPDATE "${TABLE}_chunks" SET data = 'x'::bytea WHERE pe_id = $1 AND seq = 1`, [single.peId]);
    const fresh = store(single.peId, { keep: 1, chunkBytes: 100 }); // has verified nothing yet
    await damaged(fresh, 5);
    await fresh.idle();
    expect((await fresh.list()).map((c) => c.record?.seq)).toEqual([5, 4, 1]);

    // Other PEs in the same table are untouched by this PE's pruning.
    const neighbour = store(uniquePe("keep-other"), { keep: 3 });
    await commit(neighbour, 1, 1);
    await commit(s, 2, 7);
    await s.idle();
    expect(await neighbour.list()).toHaveLength(1);
  });

  it("creates its tables once when several stores race on a fresh table name", async () => {
    const table = `${TABLE}_fresh`;
    try {
      const racers = Array.from({ length: 4 }, (_, i) => store(uniquePe(`fresh${i}`), { table }));
      await Promise.all(racers.map((racer, i) => racer.claimGeneration(i + 1)));
      await Promise.all(racers.map((racer) => commit(racer, 5, 1)));
      for (const racer of racers) expect((await latestValid(racer))?.record.generation).toBe(5);
      const [storage] = await sql<{ attstorage: string }>("SELECT attstorage FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'data'", [
        `"${table}_chunks"`,
      ]);
      expect(storage?.attstorage).toBe("e"); // EXTERNAL: no compression attempt
    } finally {
      await sql(`DROP TABLE IF EXISTS "${table}_chunks", "${table}", "${table}_fences"`);
    }
  });

  it("never puts the password into errors (wrong password, missing password file)", async () => {
    const wrongFile = path.join(dir, "wrong-password");
    writeFileSync(wrongFile, WRONG_PASSWORD, { mode: 0o600 });
    const wrong = store(uniquePe("wrongpw"), { passwordFile: wrongFile });
    const error = await wrong.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PostgresStoreError);
    expect((error as PostgresStoreError).code).toBe("28P01"); // invalid_password
    expect((error as Error).message).toMatch(/password authentication failed/);
    for (const text of [inspect(error, { depth: 10 }), (error as Error).message, String((error as Error).stack)]) {
      expect(text).not.toContain(WRONG_PASSWORD);
      expect(text).not.toContain(pg.password);
    }
    expect(inspect(wrong, { depth: 10 })).not.toContain(WRONG_PASSWORD);

    const missing = store(uniquePe("nopwfile"), { passwordFile: path.join(dir, "absent") });
    await expect(commit(missing, 1, 1)).rejects.toThrow(/ENOENT.*absent/);

    // The right password still works, and the store with the working password does not show it either.
    const right = store(uniquePe("rightpw"));
    await commit(right, 1, 1);
    expect(inspect(right, { depth: 10 })).not.toContain(pg.password);
    expect(uncaught).toEqual([]);
  });

  it("keeps working after the server is stopped and started again", async () => {
    const peId = uniquePe("restart");
    const s = store(peId);
    await commit(s, 1, 1);
    expect((await latestValid(s))?.record.seq).toBe(1); // the pool now holds an idle connection

    postgresScript("stop");
    try {
      const failures = [
        await commit(s, 1, 2).catch((e: unknown) => e),
        await fetchResult(s, "g0000000001-s0000000000000001").catch((e: unknown) => e),
        await s.list().catch((e: unknown) => e),
        await s.claimGeneration(2).catch((e: unknown) => e),
      ];
      for (const failure of failures) {
        expect(failure).toBeInstanceOf(PostgresStoreError);
        expect(inspect(failure, { depth: 10 })).not.toContain(pg.password);
      }
      expect((failures[0] as Error).message).toMatch(/ECONNREFUSED|terminat|shutting down/);
    } finally {
      postgresScript("start");
    }

    await commit(s, 1, 3);
    const latest = await latestValid(s);
    expect(latest?.record.seq).toBe(3);
    expect((await s.list()).map((c) => c.record?.seq)).toEqual([3, 1]);
    expect(uncaught).toEqual([]);
  });
});
