// commit_throughput: how fast a PE's snapshot gets into the persistent store and back, per store kind and
// snapshot size, next to the raw floor on the same medium measured in the same run (within each run the
// order of store and raw alternates).
//
//   commit  value:    store.commit(record, bytes) for a prepared CommitRecord. The committer hashes the snapshot
//                     once before that (for record.sha256): measured separately in the same run and reported as
//                     `recordSha256MiBps`, so the committer's whole path is 1 / (1/value + 1/recordSha256MiBps).
//           baseline: directory -> open + write + fsync + close of one new file in the same directory;
//                     postgres  -> BEGIN; one plain INSERT per chunk (the store's chunk size) into a scratch
//                                  table with the same bytea column; COMMIT. No checksum, no fence, no pruning.
//                     (Removing the previous raw file / TRUNCATE of the scratch table happen before the clock.)
//   restore value:    store.latestValid() (reads and verifies length + sha256)
//           baseline: directory -> fs.readFile of the raw file; postgres -> plain SELECT of the scratch rows
//                     (node-postgres receives bytea as hex text); `rawCopyBinary` is a raw COPY ... TO STDOUT
//                     (FORMAT binary) of the same rows, the wire format the store reads with.
//
// Snapshots are incompressible random bytes. Each store first gets `keep` commits, so every measured commit
// also prunes one (the steady state). Reads come from the page cache / shared buffers on both sides.
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { DirectoryStore } from "../src/state/store/directoryStore";
import { DEFAULT_CHUNK_BYTES, PostgresStore } from "../src/state/store/postgresStore";
import type { CommitRecord, PersistentStore } from "../src/state/store/types";
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
  rawRead(): Promise<Buffer>;
  /** Extra raw read to report next to the restore (postgres: COPY binary, the store's own read path). */
  rawReadAlt?(): Promise<Buffer>;
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
      for (const sizeMiB of SIZES_MIB) cases.push(...(await measure(medium, sizeMiB)));
    }
  } finally {
    for (const medium of media) await medium.close().catch(() => undefined);
    fs.rmSync(work, { recursive: true, force: true });
  }
  return writeResult(METRIC, { metric: METRIC, cases });
}

async function measure(medium: Medium, sizeMiB: number): Promise<CaseResult[]> {
  const runs = runsFor(sizeMiB);
  const bytes = randomBytes(sizeMiB * MiB);
  const peId = `bench-${medium.name}-${sizeMiB}mib-${process.pid}`;
  const store = medium.store(peId);
  const keep = (store as { keep?: number }).keep ?? 5;
  let seq = 0;
  const recordSha: number[] = [];
  const commitOnce = async (): Promise<number> => {
    bytes.writeUInt32BE(++seq, 0); // a different snapshot each time
    const hashed = performance.now();
    const record: CommitRecord = { peId, generation: 1, seq, at: new Date().toISOString(), bytes: bytes.length, sha256: sha256(bytes) };
    recordSha.push(sizeMiB / ((performance.now() - hashed) / 1000));
    const started = performance.now();
    await store.commit(record, bytes);
    return performance.now() - started;
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
    const restoreAlt: number[] = [];
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
          let restored: Buffer | undefined;
          restore.push(mibps(await timed(async () => (restored = (await store.latestValid())?.bytes))));
          if (!restored || !restored.equals(bytes)) throw new Error(`${medium.name} restore returned other bytes`);
        },
        async () => {
          let raw: Buffer | undefined;
          restoreRaw.push(mibps(await timed(async () => (raw = await medium.rawRead()))));
          if (raw?.length !== bytes.length) throw new Error(`${medium.name} raw read returned ${raw?.length} bytes`);
        },
      ];
      if (medium.rawReadAlt) {
        reads.push(async () => {
          restoreAlt.push(mibps(await timed(() => medium.rawReadAlt!())));
        });
      }
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
          ...(restoreAlt.length ? { rawCopyBinary: Math.round(median(restoreAlt)), rawCopyBinaryRatio: Math.round((median(restore) / median(restoreAlt)) * 1000) / 1000 } : {}),
        }),
      },
    ];
  } finally {
    await store.close?.();
  }
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
      restore: "fs.readFile of that file",
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
    rawRead: () => fs.promises.readFile(rawFile()),
    async close() {},
  };
}

async function postgresMedium(work: string): Promise<Medium> {
  execFileSync("bash", [path.join(ROOT, "scripts", "postgres.sh"), "start"], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
  const out = execFileSync(
    "bash",
    ["-c", `eval "$(bash "$0" env)"; printf '%s\\0' "$RESEAT_PG_HOST" "$RESEAT_PG_PORT" "$RESEAT_PG_DATABASE" "$RESEAT_PG_USER" "$RESEAT_PG_PASSWORD"`, path.join(ROOT, "scripts", "postgres.sh")],
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
      restore: "plain SELECT data FROM scratch ORDER BY idx (node-postgres receives bytea as hex text) + Buffer.concat",
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
    async rawRead() {
      const { rows } = await client.query<{ data: Buffer }>(`SELECT data FROM ${PG_SCRATCH} ORDER BY idx`);
      return Buffer.concat(rows.map((row) => row.data));
    },
    async rawReadAlt() {
      return copyOut(client, `COPY (SELECT data FROM ${PG_SCRATCH} ORDER BY idx) TO STDOUT (FORMAT binary)`);
    },
    async close() {
      await client.query(`DROP TABLE IF EXISTS ${PG_SCRATCH}, ${PG_TABLE}_chunks, ${PG_TABLE}, ${PG_TABLE}_fences`);
      await client.end();
    },
  };
}

/** Raw `COPY ... TO STDOUT (FORMAT binary)`: the CopyData payloads, concatenated, no parsing or checking. */
function copyOut(client: Client, text: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    client.query({
      submit: (connection: { query(text: string): void }) => connection.query(text),
      handleCopyData: (message: { chunk: Buffer }) => parts.push(message.chunk),
      handleCommandComplete: () => undefined,
      handleReadyForQuery: () => resolve(Buffer.concat(parts)),
      handleError: (error: Error) => reject(error),
    } as never);
  });
}

function sha256(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}
