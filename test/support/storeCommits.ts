// What a store holds, read from its files (directory) or its table (PostgreSQL): tests wait for the commits they need by reading them
// (a commit's name says which generation wrote it and up to which seq it holds every write).
import * as fs from "node:fs";
import pg from "pg";

export interface StoredCommit {
  name: string;
  generation: number;
  seq: number;
}

/** The commits in a directory store's folder for one PE (g<generation>-s<seq>.commit), oldest first. */
export function storedCommits(storeDir: string): StoredCommit[] {
  if (!fs.existsSync(storeDir)) return [];
  const found: StoredCommit[] = [];
  for (const name of fs.readdirSync(storeDir)) {
    const match = /^g(\d{10})-s(\d{16})\.commit$/.exec(name);
    if (match) found.push({ name, generation: Number(match[1]), seq: Number(match[2]) });
  }
  return found.sort((a, b) => a.seq - b.seq);
}

/** The commits a PostgreSQL store holds for one PE (its table as the state library made it), oldest first. */
export async function postgresCommits(settings: Record<string, string>, table: string, peId: string): Promise<StoredCommit[]> {
  const client = await connectedClient(settings);
  try {
    const exists = await client.query<{ ready: boolean }>("SELECT to_regclass($1) IS NOT NULL AS ready", [`"${table}"`]);
    if (!exists.rows[0]?.ready) return [];
    const { rows } = await client.query<{ generation: string; seq: string }>(`SELECT generation, seq FROM "${table}" WHERE pe_id = $1 ORDER BY seq`, [peId]);
    return rows.map((row) => ({ name: `g${row.generation}-s${row.seq}`, generation: Number(row.generation), seq: Number(row.seq) }));
  } finally {
    await client.end();
  }
}

/** Drops a PostgreSQL store's tables (a test's own table, named for its run). */
export async function dropPostgresStore(settings: Record<string, string>, table: string): Promise<void> {
  const client = await connectedClient(settings);
  try {
    for (const suffix of ["_chunks", "", "_fences"]) await client.query(`DROP TABLE IF EXISTS "${table}${suffix}"`);
  } finally {
    await client.end();
  }
}

/** A connected client of the test PostgreSQL (settings as test/support/postgres.ts reads them). */
async function connectedClient(settings: Record<string, string>): Promise<pg.Client> {
  const client = new pg.Client({
    host: settings.RESEAT_PG_HOST,
    port: Number(settings.RESEAT_PG_PORT),
    database: settings.RESEAT_PG_DATABASE,
    user: settings.RESEAT_PG_USER,
    password: settings.RESEAT_PG_PASSWORD,
    connectionTimeoutMillis: 10_000,
  });
  await client.connect();
  return client;
}
