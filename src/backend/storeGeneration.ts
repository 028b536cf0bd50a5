// The generation a PE's PostgreSQL store last accepted, asked of the store itself (the store is no
// engine's: every engine asks it the same way). Only needed when a state volume is new or was lost, so
// the state library's store client (and pg) loads only then.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { PeId, StoreDesired } from "@reseat/state/contract";

/** The password goes through a private temp file: the store reads passwords from files only. */
export async function askPostgresGeneration(store: Extract<StoreDesired, { kind: "postgres" }>, peId: PeId): Promise<number> {
  if (!store.password) {
    throw new Error(
      `reseat: the state volume of PE "${peId}" has no generation and the PostgreSQL password is not at hand to ask the store; run \`reseat up\``,
    );
  }
  const { PostgresStore } = await import("@reseat/state");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-pg-"));
  const passwordFile = path.join(dir, "password");
  fs.writeFileSync(passwordFile, store.password, { mode: 0o600 });
  const client = new PostgresStore(peId, { host: store.host, port: store.port, database: store.database, user: store.user, table: store.table, passwordFile });
  try {
    return await client.newestGeneration();
  } finally {
    await client.close().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
