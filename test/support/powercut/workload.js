// The power-cut test's workload: a plain Node process on reseat's state library (argv[2]: its compiled
// index.js), with its state directory and its directory store on the power-cut file system.
//
// 1. If the volume holds a database: PRAGMA integrity_check on it, reported as "integrity <result>".
// 2. openState (local, restored from the store, or empty); "ready <resumedFrom> <resumedSeq>".
// 3. Every key of EXPECT_FILE (JSON [[key, value], ...]) read back: "check {missing: [...], wrong: [...]}".
// 4. WRITERS writers put <PREFIX>-<n> = {n, pad} forever, printing "ack <key> <seq>" only once a put
//    resolved (acknowledged = durable).
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { DatabaseSync } = require("node:sqlite");
const { openState } = require(process.argv[2]);

const env = process.env;
const out = (line) => process.stdout.write(`${line}\n`);

function integrity(dbFile) {
  if (!fs.existsSync(dbFile)) return "none";
  const db = new DatabaseSync(dbFile, { timeout: 5000 });
  try {
    db.exec("PRAGMA locking_mode=EXCLUSIVE"); // as the library opens it: no shared-memory file
    const rows = db
      .prepare("PRAGMA integrity_check")
      .all()
      .map((row) => row.integrity_check);
    return rows.join("; ");
  } finally {
    db.close();
  }
}

(async () => {
  out(`integrity ${integrity(path.join(env.STATE_DIR, "data", "state.db"))}`);
  const state = await openState({
    stateDir: env.STATE_DIR,
    peId: "powercut",
    generation: Number(env.GENERATION),
    store: { kind: "directory", path: env.STORE_DIR, keep: 3 },
    commitIntervalMs: Number(env.INTERVAL_MS),
    retryBaseMs: 20,
    env: {},
  });
  out(`ready ${state.resumedFrom} ${state.resumedSeq}`);
  const expected = JSON.parse(fs.readFileSync(env.EXPECT_FILE, "utf8"));
  const missing = [];
  const wrong = [];
  for (const [key, value] of expected) {
    const seen = state.get(key);
    if (seen === undefined) missing.push(key);
    else if (JSON.stringify(seen) !== JSON.stringify(value)) wrong.push(key);
  }
  out(`check ${JSON.stringify({ missing, wrong })}`);
  let next = 0;
  const writer = async () => {
    for (;;) {
      const n = next++;
      const key = `${env.PREFIX}-${n}`;
      // Mostly small documents, now and then one spanning several pages.
      const seq = await state.put(key, { n, pad: "p".repeat(n % 50 === 0 ? 5000 + (n % 7) * 500 : n % 300) });
      out(`ack ${key} ${seq}`);
    }
  };
  await Promise.all(Array.from({ length: Number(env.WRITERS || 4) }, writer));
})().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(2);
});
