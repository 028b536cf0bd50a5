// Issue 19: the ordinary Pulumi moves that replace a resource — `up --replace <urn>`, a
// `replacementTrigger` change, a `replaceOnChanges` field, a `--target` run, a rotated PostgreSQL
// password — each leave the PE with exactly one running executable, one generation newer, every
// acknowledged write kept, and a refresh that finds nothing to change. A user's project with the plain
// `pulumi` CLI and reseat installed from its tarball; real Docker and PostgreSQL.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, cleanup, docker, httpJson, recordLiveness, runningOf, volumeExists, waitFor } from "../support/harness";
import {
  demoImageIds,
  freePort,
  installReseat,
  mustPulumi,
  outsideFolder,
  packReseat,
  previewJson,
  pulumi,
  stackExport,
  stackOutputs,
  userEnv,
  type StateView,
} from "../support/userProject";
import { postgresSettings } from "../support/postgres";

const STACK = "dev";
const DEMO_PE = `it-fr-${process.pid}`;
const PG_PE = `it-fp-${process.pid}`;

/** A PE whose replacement options come from the stack config, as a user's program would set them. */
const PROGRAM = `
const pulumi = require("@pulumi/pulumi");
const { ProcessingElement } = require("reseat/components");
const config = new pulumi.Config();
const port = config.requireNumber("port");
const pgUser = config.get("pgUser");
const pe = new ProcessingElement(config.require("peId"), {
  image: config.require("image"),
  network: "host",
  env: { PORT: String(port) },
  volume: { mountPath: "/state" },
  commitInterval: config.get("commitInterval") || "30s",
  stop: { graceSeconds: 10 },
  readiness: { httpGet: { port, path: "/healthz" }, timeout: "60s" },
  ...(pgUser ? { persistentStore: { kind: "postgres", host: "127.0.0.1", port: config.requireNumber("pgPort"), database: "reseat", user: pgUser, table: config.require("pgTable"), passwordSecret: "pgPassword" } } : {}),
}, { replacementTrigger: config.get("trigger") || "t0", replaceOnChanges: ["commitIntervalMs"] });
exports.pe = pe.summary;
`;

interface PeSummary {
  peId: string;
  generation: number;
  executableId: string;
  executableName: string;
  volumeName: string;
  lastCommit: { seq: number; at: string } | null;
}

async function writeProject(dir: string, tarball: string, settings: Record<string, string>): Promise<void> {
  await installReseat(dir, tarball);
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: forced\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: index.js\n");
  fs.writeFileSync(path.join(dir, "index.js"), PROGRAM);
  await mustPulumi(dir, ["stack", "init", STACK]);
  for (const [key, value] of Object.entries(settings)) await mustPulumi(dir, ["config", "set", "--stack", STACK, key, value]);
}

async function summary(dir: string): Promise<PeSummary> {
  return (await stackOutputs(dir, STACK)).pe as PeSummary;
}

/** The URN of the PE's Executable resource, as `pulumi stack export` lists it. */
async function executableUrn(dir: string): Promise<string> {
  const doc = JSON.parse(await stackExport(dir, STACK)) as { deployment: { resources: { urn: string; type: string }[] } };
  const urn = doc.deployment.resources.find((r) => r.type === "pulumi-nodejs:dynamic/reseat:Executable")?.urn;
  if (!urn) throw new Error("no Executable in the stack");
  return urn;
}

/** After a replacement: one running executable, one generation newer, a refresh that finds nothing to change. */
async function expectReplacedOnce(dir: string, peId: string, before: PeSummary): Promise<PeSummary> {
  const after = await summary(dir);
  expect(after.generation).toBe(before.generation + 1);
  expect(after.executableId).not.toBe(before.executableId);
  expect(after.volumeName).toBe(before.volumeName);
  const running = await runningOf(peId);
  expect(running.map((c) => c.Id)).toEqual([after.executableId]);
  const gate = await pulumi(dir, ["preview", "--refresh", "--expect-no-changes", "--stack", STACK]);
  expect(gate.code, gate.stdout.slice(-3000) + gate.stderr.slice(-2000)).toBe(0);
  return after;
}

describe("forced replacements never leave a PE without its executable (Docker)", () => {
  let tarball: string;
  let dir: string;
  let port: number;
  let images: { v1: string; v2: string };
  let current: PeSummary;
  const written: string[] = [];
  let liveness: Awaited<ReturnType<typeof recordLiveness>>;

  async function writeAndCheck(line: string): Promise<void> {
    await httpJson(port, `/append?line=${line}`, "POST");
    written.push(line);
    expect((await httpJson<StateView>(port, "/state")).lines).toEqual(written);
  }

  beforeAll(async () => {
    await cleanup([DEMO_PE]);
    [tarball, images] = await Promise.all([packReseat(), demoImageIds()]);
    dir = outsideFolder("forced");
    port = await freePort();
    await writeProject(dir, tarball, { peId: DEMO_PE, image: images.v1, port: String(port) });
    liveness = await recordLiveness(DEMO_PE);
  });
  afterAll(async () => {
    await cleanup([DEMO_PE]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("up creates the PE; writes are acknowledged", async () => {
    await mustPulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    current = await summary(dir);
    expect(current.generation).toBe(1);
    for (const line of ["a", "b", "c"]) await writeAndCheck(line);
  });

  it("pulumi up --replace <the Executable's URN>: a real replacement (generation + 1), the PE serves, every write kept", async () => {
    const urn = await executableUrn(dir);
    await mustPulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK, "--replace", urn]);
    current = await expectReplacedOnce(dir, DEMO_PE, current);
    await writeAndCheck("after-replace");
  });

  it("a replacementTrigger change: the same", async () => {
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "trigger", "t1"]);
    const preview = await previewJson(dir, STACK);
    expect(preview.changeSummary.replace).toBe(1);
    await mustPulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    current = await expectReplacedOnce(dir, DEMO_PE, current);
    await writeAndCheck("after-trigger");
  });

  it("a replaceOnChanges field (commitIntervalMs, otherwise changed in place): the same", async () => {
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "commitInterval", "20s"]);
    const preview = await previewJson(dir, STACK);
    expect(preview.changeSummary.replace).toBe(1);
    await mustPulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    current = await expectReplacedOnce(dir, DEMO_PE, current);
    await writeAndCheck("after-replace-on-changes");
  });

  it("a --target run of the Executable with an image change: replaced, the new image serves, every write kept", async () => {
    const urn = await executableUrn(dir);
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "image", images.v2]);
    await mustPulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK, "--target", urn]);
    current = await expectReplacedOnce(dir, DEMO_PE, current);
    expect((await httpJson<StateView>(port, "/state")).version).toBe("v2");
    await writeAndCheck("after-target");
  });

  it("--replace and --target together, with unchanged inputs: still exactly one executable", async () => {
    const urn = await executableUrn(dir);
    await mustPulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK, "--target", urn, "--replace", urn]);
    current = await expectReplacedOnce(dir, DEMO_PE, current);
    await writeAndCheck("after-target-replace");
  });

  it("never two executables of the PE running at once, by the engine's own start/die events", async () => {
    const { maxLive, events } = await liveness.stop();
    expect(events.filter((e) => e.action === "start").length).toBe(current.generation);
    expect(maxLive).toBe(1);
  });

  it("destroy removes the executable and keeps the volume", async () => {
    await mustPulumi(dir, ["destroy", "--yes", "--skip-preview", "--stack", STACK]);
    expect(await runningOf(DEMO_PE)).toEqual([]);
    expect(await volumeExists(current.volumeName)).toBe(true);
  });
});

// ---- PostgreSQL password rotation ----------------------------------------------------------------

const pgSettings = postgresSettings();
const PG_PORT = Number(pgSettings.RESEAT_PG_PORT);
const ROLE = `it_rot_${process.pid}`;
const TABLE = `it_rot_${process.pid}_commits`;

/** SQL as the cluster's superuser, over its private unix socket (as scripts/postgres.sh does). */
function asSuperuser(sql: string): void {
  const cache = process.env.RESEAT_CACHE ?? path.join(process.env.HOME ?? "/root", ".cache", "reseat");
  const socket = path.join(cache, "postgres", "run");
  const runAs = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--"] : [];
  const [cmd, ...args] = [
    ...runAs,
    "/usr/lib/postgresql/15/bin/psql",
    "-h",
    socket,
    "-p",
    String(PG_PORT),
    "-U",
    process.getuid?.() === 0 ? "postgres" : (process.env.USER ?? "postgres"),
    "-d",
    "reseat",
    "-X",
    "-q",
    "-v",
    "ON_ERROR_STOP=1",
  ];
  execFileSync(cmd!, args, { input: sql, stdio: ["pipe", "ignore", "inherit"], cwd: "/" });
}

async function connectAs(password: string): Promise<pg.Client> {
  const client = new pg.Client({ host: "127.0.0.1", port: PG_PORT, database: "reseat", user: ROLE, password, connectionTimeoutMillis: 10_000 });
  await client.connect();
  return client;
}

/** The newest commit the store accepted from this PE in a generation. */
async function newestCommit(password: string, generation: number): Promise<{ seq: number; committedAt: Date } | undefined> {
  const client = await connectAs(password);
  try {
    const result = await client.query<{ seq: string; committed_at: Date }>(
      `SELECT seq, committed_at FROM "${TABLE}" WHERE pe_id = $1 AND generation = $2 ORDER BY seq DESC LIMIT 1`,
      [PG_PE, generation],
    );
    const row = result.rows[0];
    return row ? { seq: Number(row.seq), committedAt: row.committed_at } : undefined;
  } finally {
    await client.end();
  }
}

describe("a rotated PostgreSQL password (pulumi config set --secret + up)", () => {
  const OLD = `old-${process.pid}-${Date.now().toString(36)}`;
  const NEW = `new-${process.pid}-${Date.now().toString(36)}`;
  let tarball: string;
  let dir: string;
  let port: number;
  let first: PeSummary;

  beforeAll(async () => {
    await cleanup([PG_PE]);
    asSuperuser(
      `DROP ROLE IF EXISTS ${ROLE};\nCREATE ROLE ${ROLE} LOGIN PASSWORD '${OLD}';\nGRANT CONNECT ON DATABASE reseat TO ${ROLE};\nGRANT CREATE, USAGE ON SCHEMA public TO ${ROLE};\n`,
    );
    tarball = await packReseat();
    dir = outsideFolder("rotate");
    port = await freePort();
    await writeProject(dir, tarball, {
      peId: PG_PE,
      image: "reseat-session-workload:v1",
      port: String(port),
      commitInterval: "500ms",
      pgUser: ROLE,
      pgPort: String(PG_PORT),
      pgTable: TABLE,
    });
    await mustPulumi(dir, ["config", "set", "--secret", "--stack", STACK, "reseat:pgPassword", OLD]);
  });
  afterAll(async () => {
    await cleanup([PG_PE]);
    asSuperuser(`DROP TABLE IF EXISTS "${TABLE}_chunks", "${TABLE}", "${TABLE}_fences";\nDROP OWNED BY ${ROLE};\nDROP ROLE IF EXISTS ${ROLE};\n`);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("the PE commits with the first password", async () => {
    await mustPulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    first = await summary(dir);
    await fetch(`http://127.0.0.1:${port}/sessions/alice`, { method: "PUT", body: JSON.stringify({ cart: [1] }) });
    await waitFor("a commit of generation 1", () => newestCommit(OLD, first.generation));
  });

  it("ALTER ROLE + config set --secret + up: one replacement, the next commit uses the new password, the old one is refused, nothing lost, no secret in plaintext", async () => {
    asSuperuser(`ALTER ROLE ${ROLE} WITH PASSWORD '${NEW}';`);
    const rotatedAt = new Date();
    await mustPulumi(dir, ["config", "set", "--secret", "--stack", STACK, "reseat:pgPassword", NEW]);
    const preview = await previewJson(dir, STACK);
    expect(preview.changeSummary.replace).toBe(1);
    await mustPulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    const after = await summary(dir);
    expect(after.generation).toBe(first.generation + 1);
    expect((await runningOf(PG_PE)).map((c) => c.Id)).toEqual([after.executableId]);

    await fetch(`http://127.0.0.1:${port}/sessions/bob`, { method: "PUT", body: JSON.stringify({ cart: [2] }) });
    const committed = await waitFor("a commit of the new generation", () => newestCommit(NEW, after.generation));
    expect(committed.committedAt.getTime()).toBeGreaterThanOrEqual(rotatedAt.getTime() - 1000);
    await expect(connectAs(OLD)).rejects.toThrow(/password authentication failed/);
    const sessions = (await httpJson<{ sessions: Record<string, unknown> }>(port, "/sessions")).sessions;
    expect(Object.keys(sessions)).toEqual(expect.arrayContaining(["alice", "bob"]));

    // Secrets stay secret: not in Pulumi's state, nor on the container (env, labels, command).
    const exported = await stackExport(dir, STACK);
    expect(exported).not.toContain(NEW);
    expect(exported).not.toContain(OLD);
    const inspect = JSON.stringify(await docker.getContainer(after.executableId).inspect());
    expect(inspect).not.toContain(NEW);
    const gate = await pulumi(dir, ["preview", "--refresh", "--expect-no-changes", "--stack", STACK]);
    expect(gate.code, gate.stdout.slice(-3000)).toBe(0);
    await mustPulumi(dir, ["destroy", "--yes", "--skip-preview", "--stack", STACK], userEnv(dir));
  });
});
