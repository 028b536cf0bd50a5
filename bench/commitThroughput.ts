// commit_throughput: how fast a PE's snapshot gets into the persistent store and back, per store kind and
// snapshot size, next to the raw floor on the same medium measured in the same run (within each run the
// order of store and raw alternates); and how fast acknowledged puts are next to the engine's own rate.
//
//   commit  value:    store.commit(record, file) of a prepared snapshot file (in the page cache, as the committer's
//                     backup is). The committer hashes the snapshot once before that (for record.sha256, on a worker
//                     thread): measured separately in the same run and reported as `recordSha256MiBps`.
//           baseline: directory -> open + write + fsync + close of one new file in the same directory;
//                     postgres  -> BEGIN; one plain INSERT per chunk (the store's chunk size) into a scratch
//                                  table with the same bytea column; COMMIT. No checksum, no fence, no pruning.
//                     (Removing the previous raw file / TRUNCATE of the scratch table happen before the clock;
//                     pruning, which reads the new commit back, runs after store.commit() returned and is waited
//                     for outside the clock.)
//   restore value:    store.fetch(newest, file): the bytes into a new file, length + sha256 checked, fsync
//           baseline: directory -> copy of the raw file into a new file + fsync; postgres -> plain SELECT of the
//                     scratch rows (node-postgres receives bytea as hex text) written into a new file + fsync.
//   put_rate value:    acknowledged state.put()s per second, one writer awaiting each put (every put its own
//                      transaction: the worst case of group commit), on a fresh state directory, no store
//            baseline: node:sqlite alone on the same medium with the same settings (WAL, synchronous=FULL,
//                      exclusive locking): one autocommit INSERT ... ON CONFLICT of the same JSON text per row
//            also:     `concurrentPutsPerSecond`: 32 writers at once (their puts share transactions)
//
// Snapshots are incompressible random bytes. Each store first gets `keep` commits, so every measured commit
// also prunes one (the steady state). Reads come from the page cache / shared buffers on both sides.
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { Client } from "pg";
import { DEFAULT_CHUNK_BYTES, DirectoryStore, openState, PostgresStore, type CommitRecord, type PersistentStore } from "@reseat/state";
import { type CaseResult, median, result, writeResult } from "./results";

const METRIC = "commit_throughput";
const MiB = 1024 * 1024;
const SIZES_MIB = (process.env.RESEAT_BENCH_SIZES ?? "1,16,128").split(",").map(Number);
const ROOT = path.resolve(__dirname, "..", "..");
const CACHE = process.env.RESEAT_CACHE ?? path.join(os.homedir(), ".cache", "reseat");
// Own tables per run, dropped at the end.
const PG_TABLE = `reseat_bench_${process.pid}`;
const PG_SCRATCH = `reseat_bench_scratch_${process.pid}`;
const GOALS: Record<string, number> = { directory: 0.7, postgres: 0.5 };

function runsFor(sizeMiB: number): number {
  const override = Number(process.env.RESEAT_BENCH_RUNS);
  if (override > 0) return override;
  return sizeMiB >= 128 ? 5 : sizeMiB >= 16 ? 7 : 9;
}

interface Medium {
  name: "directory" | "postgres";
  /** Describes the baselines, for the result file. */
  how: { commit: string; restore: string };
  store(peId: string): PersistentStore;
  /** Untimed: make room for rawWrite (remove the previous raw copy). */
  prepareRawWrite(): Promise<void>;
  rawWrite(bytes: Buffer): Promise<void>;
  /** The raw bytes back into `target` (a new file), fsync'd. */
  rawRead(target: string): Promise<void>;
  close(): Promise<void>;
}

export async function benchCommitThroughput(): Promise<string> {
  fs.mkdirSync(CACHE, { recursive: true });
  const work = fs.mkdtempSync(path.join(CACHE, "bench-commit-throughput-"));
  const cases: CaseResult[] = [];
  const media: Medium[] = [];
  try {
    const stores = (process.env.RESEAT_BENCH_STORES ?? "directory,postgres").split(",");
    if (stores.includes("directory")) media.push(directoryMedium(work));
    if (stores.includes("postgres")) media.push(await postgresMedium(work));
    for (const medium of media) {
      for (const sizeMiB of SIZES_MIB) cases.push(...(await measure(medium, sizeMiB, work)));
    }
    if ((process.env.RESEAT_BENCH_PUT_RATE ?? "1") !== "0") cases.push(await measurePutRate(work));
  } finally {
    for (const medium of media) await medium.close().catch(() => undefined);
    fs.rmSync(work, { recursive: true, force: true });
  }
  return writeResult(METRIC, { metric: METRIC, cases });
}

async function measure(medium: Medium, sizeMiB: number, work: string): Promise<CaseResult[]> {
  const runs = runsFor(sizeMiB);
  const bytes = randomBytes(sizeMiB * MiB);
  const peId = `bench-${medium.name}-${sizeMiB}mib-${process.pid}`;
  const store = medium.store(peId);
  const keep = (store as { keep?: number }).keep ?? 5;
  const snapshotFile = path.join(work, `snapshot-${medium.name}-${sizeMiB}`);
  const fetched = path.join(work, `fetched-${medium.name}-${sizeMiB}`);
  let seq = 0;
  let newestId = "";
  const recordSha: number[] = [];
  const commitOnce = async (): Promise<number> => {
    bytes.writeUInt32BE(++seq, 0); // a different snapshot each time
    writeSynced(snapshotFile, bytes); // the committer's backup file: in the page cache, and clean (SQLite's backup fsyncs it)
    const hashed = performance.now();
    const record: CommitRecord = { peId, generation: 1, seq, at: new Date().toISOString(), bytes: bytes.length, sha256: sha256(bytes), format: "sqlite-1" };
    recordSha.push(sizeMiB / ((performance.now() - hashed) / 1000));
    const started = performance.now();
    await store.commit(record, snapshotFile);
    const elapsed = performance.now() - started;
    await store.idle?.(); // pruning (reads the new commit back first): outside the clock
    newestId = (await store.list())[0]!.id;
    return elapsed;
  };
  const timed = async (work: () => Promise<unknown>): Promise<number> => {
    const started = performance.now();
    await work();
    return performance.now() - started;
  };
  const mibps = (ms: number) => sizeMiB / (ms / 1000);

  try {
    for (let i = 0; i < keep; i++) await commitOnce(); // steady state: every measured commit prunes one
    await medium.prepareRawWrite();
    await medium.rawWrite(bytes);
    recordSha.length = 0;

    const commit: number[] = [];
    const commitRaw: number[] = [];
    const restore: number[] = [];
    const restoreRaw: number[] = [];
    for (let run = 0; run < runs; run++) {
      const pair = [
        async () => commit.push(mibps(await commitOnce())),
        async () => {
          await medium.prepareRawWrite();
          commitRaw.push(mibps(await timed(() => medium.rawWrite(bytes))));
        },
      ];
      for (const step of run % 2 ? pair.reverse() : pair) await step();
      const reads = [
        async () => {
          fs.rmSync(fetched, { force: true });
          let result: Awaited<ReturnType<PersistentStore["fetch"]>> | undefined;
          restore.push(mibps(await timed(async () => (result = await store.fetch(newestId, fetched)))));
          if (!result || !("record" in result) || !fs.readFileSync(fetched).equals(bytes)) throw new Error(`${medium.name} restore returned other bytes`);
        },
        async () => {
          fs.rmSync(fetched, { force: true });
          restoreRaw.push(mibps(await timed(() => medium.rawRead(fetched))));
          if (fs.statSync(fetched).size !== bytes.length) throw new Error(`${medium.name} raw read returned ${fs.statSync(fetched).size} bytes`);
        },
      ];
      for (const step of run % 2 ? reads.reverse() : reads) await step();
      process.stderr.write(
        `${medium.name} ${sizeMiB} MiB run ${run + 1}/${runs}: commit ${commit.at(-1)!.toFixed(0)} vs raw ${commitRaw.at(-1)!.toFixed(0)} MiB/s, ` +
          `restore ${restore.at(-1)!.toFixed(0)} vs raw ${restoreRaw.at(-1)!.toFixed(0)} MiB/s\n`,
      );
    }
    const name = `${medium.name}_${sizeMiB}MiB`;
    const round = (values: number[]) => values.map((v) => Math.round(v));
    return [
      {
        ...result(METRIC, "MiB/s", commit, commitRaw, {
          case: `${name}_commit`,
          goal: `ratio >= ${GOALS[medium.name]}`,
          goalMet: median(commit) / median(commitRaw) >= GOALS[medium.name]!,
          baselineHow: medium.how.commit,
          recordSha256MiBps: Math.round(median(recordSha)),
          samples: { value: round(commit), baseline: round(commitRaw) },
        }),
      },
      {
        ...result(METRIC, "MiB/s", restore, restoreRaw, {
          case: `${name}_restore`,
          baselineHow: medium.how.restore,
          samples: { value: round(restore), baseline: round(restoreRaw) },
        }),
      },
    ];
  } finally {
    await store.close?.();
    fs.rmSync(snapshotFile, { force: true });
    fs.rmSync(fetched, { force: true });
  }
}

/** Acknowledged puts/s through the state library vs node:sqlite's own synchronous inserts, same directory. */
async function measurePutRate(work: string): Promise<CaseResult> {
  const runs = Number(process.env.RESEAT_BENCH_RUNS) || 7;
  const puts = Number(process.env.RESEAT_BENCH_PUTS) || 400;
  const doc = (n: number) => ({ n, user: `u${n}`, cart: [n % 7, n % 11], note: "x".repeat(200) });
  const library: number[] = [];
  const engine: number[] = [];
  const concurrent: number[] = [];
  for (let run = 0; run < runs; run++) {
    const dir = fs.mkdtempSync(path.join(work, "put-rate-"));
    const steps = [
      async () => {
        const state = await openState({ stateDir: path.join(dir, "library"), peId: "bench-put-rate", generation: 1, store: null, env: {} });
        const started = performance.now();
        for (let n = 0; n < puts; n++) await state.put(`k${n}`, doc(n));
        library.push(puts / ((performance.now() - started) / 1000));
        const together = performance.now();
        let next = 0;
        await Promise.all(
          Array.from({ length: 32 }, async () => {
            while (next < puts) {
              const n = next++;
              await state.put(`c${n}`, doc(n));
            }
          }),
        );
        concurrent.push(puts / ((performance.now() - together) / 1000));
        await state.close();
      },
      async () => {
        const db = new DatabaseSync(path.join(dir, "engine.db"));
        db.exec("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL");
        db.exec("CREATE TABLE kv (key TEXT NOT NULL UNIQUE, value TEXT NOT NULL)");
        const insert = db.prepare("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value");
        const started = performance.now();
        for (let n = 0; n < puts; n++) insert.run(`k${n}`, JSON.stringify(doc(n)));
        engine.push(puts / ((performance.now() - started) / 1000));
        db.close();
      },
    ];
    for (const step of run % 2 ? steps.reverse() : steps) await step();
    fs.rmSync(dir, { recursive: true, force: true });
    process.stderr.write(
      `put_rate run ${run + 1}/${runs}: ${library.at(-1)!.toFixed(0)} acknowledged puts/s vs ${engine.at(-1)!.toFixed(0)} sqlite inserts/s (32 writers: ${concurrent.at(-1)!.toFixed(0)}/s)\n`,
    );
  }
  return {
    ...result(METRIC, "puts/s", library, engine, {
      case: "put_rate",
      goal: "ratio >= 0.8",
      goalMet: median(library) / median(engine) >= 0.8,
      baselineHow: "node:sqlite alone, same directory and settings (WAL, synchronous=FULL, exclusive locking): one autocommit INSERT per put",
      concurrentPutsPerSecond: Math.round(median(concurrent)),
      samples: { value: library.map(Math.round), baseline: engine.map(Math.round), concurrent: concurrent.map(Math.round) },
    }),
  };
}

function directoryMedium(work: string): Medium {
  const root = path.join(work, "directory-store");
  const rawDir = (peId: string) => path.join(root, encodeURIComponent(peId));
  let current = "";
  const rawFile = () => path.join(rawDir(current), "raw.bin");
  return {
    name: "directory",
    how: {
      commit: "open + write + fsync + close of one new file in the store's directory",
      restore: "fs.copyFile of that file into a new file + fsync",
    },
    store(peId) {
      current = peId;
      const store = new DirectoryStore(root, peId);
      fs.mkdirSync(rawDir(peId), { recursive: true });
      return store;
    },
    async prepareRawWrite() {
      fs.rmSync(rawFile(), { force: true });
      const dir = await fs.promises.open(rawDir(current), "r");
      await dir.sync().finally(() => dir.close());
    },
    async rawWrite(bytes) {
      const handle = await fs.promises.open(rawFile(), "wx");
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
    },
    rawRead: async (target) => {
      await fs.promises.copyFile(rawFile(), target);
      const handle = await fs.promises.open(target, "r+");
      await handle.sync().finally(() => handle.close());
    },
    async close() {},
  };
}

async function postgresMedium(work: string): Promise<Medium> {
  execFileSync("bash", [path.join(ROOT, "scripts", "postgres.sh"), "start"], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
  const out = execFileSync(
    "bash",
    [
      "-c",
      `eval "$(bash "$0" env)"; printf '%s\\0' "$RESEAT_PG_HOST" "$RESEAT_PG_PORT" "$RESEAT_PG_DATABASE" "$RESEAT_PG_USER" "$RESEAT_PG_PASSWORD"`,
      path.join(ROOT, "scripts", "postgres.sh"),
    ],
    { cwd: ROOT, encoding: "utf8" },
  );
  const [host, port, database, user, password] = out.split("\0") as [string, string, string, string, string];
  const passwordFile = path.join(work, "pg-password");
  fs.writeFileSync(passwordFile, password, { mode: 0o600 });
  const connection = { host, port: Number(port), database, user };
  const client = new Client({ ...connection, password });
  // If the server goes away mid-run the next query fails (and the bench with it); no unhandled 'error' crash.
  client.on("error", (error) => process.stderr.write(`postgres baseline connection: ${error.message}\n`));
  await client.connect();
  await client.query(`DROP TABLE IF EXISTS ${PG_SCRATCH}`);
  await client.query(`CREATE TABLE ${PG_SCRATCH} (idx integer PRIMARY KEY, data bytea NOT NULL)`);
  await client.query(`ALTER TABLE ${PG_SCRATCH} ALTER COLUMN data SET STORAGE EXTERNAL`); // as the store's chunks
  const chunkBytes = Number(process.env.RESEAT_BENCH_PG_CHUNK_MIB) * MiB || DEFAULT_CHUNK_BYTES;
  return {
    name: "postgres",
    how: {
      commit: `BEGIN; one plain INSERT per ${chunkBytes / MiB} MiB bytea chunk into a scratch table (STORAGE EXTERNAL, like the store); COMMIT`,
      restore: "plain SELECT data FROM scratch ORDER BY idx (node-postgres receives bytea as hex text), written into a new file + fsync",
    },
    store(peId) {
      return new PostgresStore(peId, { ...connection, passwordFile, table: PG_TABLE, chunkBytes });
    },
    async prepareRawWrite() {
      await client.query(`TRUNCATE ${PG_SCRATCH}`);
    },
    async rawWrite(bytes) {
      await client.query("BEGIN");
      for (let idx = 0, offset = 0; offset < bytes.length; idx++, offset += chunkBytes) {
        await client.query(`INSERT INTO ${PG_SCRATCH} (idx, data) VALUES ($1, $2)`, [idx, bytes.subarray(offset, offset + chunkBytes)]);
      }
      await client.query("COMMIT");
    },
    async rawRead(target) {
      const { rows } = await client.query<{ data: Buffer }>(`SELECT data FROM ${PG_SCRATCH} ORDER BY idx`);
      const handle = await fs.promises.open(target, "wx");
      try {
        for (const row of rows) await handle.write(row.data);
        await handle.sync();
      } finally {
        await handle.close();
      }
    },
    async close() {
      await client.query(`DROP TABLE IF EXISTS ${PG_SCRATCH}, ${PG_TABLE}_chunks, ${PG_TABLE}, ${PG_TABLE}_fences`);
      await client.end();
    },
  };
}

function writeSynced(file: string, bytes: Buffer): void {
  const fd = fs.openSync(file, "w");
  try {
    fs.writeSync(fd, bytes);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function sha256(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}
