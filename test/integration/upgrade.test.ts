// Issue 21: stacks, volumes and store commits written by a previous release keep working after the upgrade.
// For each release (0.3.0 … 0.7.0), built from its commit as its users got it (npm pack;
// test/support/buildRelease.sh): a user project outside the checkout installs that tarball and declares two PEs, one
// with a directory store and one with a PostgreSQL store, running the release's own session workload (its state
// library writes the volumes and the commits); plain `pulumi up`, acknowledged writes, commits holding them. Then the
// checkout's tarball is installed over it (npm pack, as a user's `npm install` of the new version) and, with the same
// program and stack:
// - `pulumi preview` changes nothing; `pulumi up` keeps the executables (no replacement) and every write;
// - an image change to the current session workload replaces the executables (generation 2): the current
//   state library resumes from the release's volumes with every write;
// - a volume loss: the current library restores from the commits the release's library wrote;
// - `pulumi destroy` keeps the volumes.
// Issue 22: a stack written by 0.5.0 whose program then asks for `handover: "standby"` (config key `handover`).
// 0.5.0's state library takes no writer lock and writes a status without a phase: the first replacement (to the
// current workload) is staged anyway (the routine's rule S2: the old executable died before the new one started);
// the next one is a standby hand-over (the new one started before the old one died). Writers keep writing
// through both `up`s; every acknowledged write is there after each.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STATUS_RECORD } from "@reseat/state/contract";
import {
  cleanup,
  containersOf,
  docker,
  lastAcked,
  recordLiveness,
  sessions,
  startPersistentWriters,
  startWriters,
  volumeExists,
  waitFor,
  type Ack,
} from "../support/harness";
import { postgresSettings } from "../support/postgres";
import { buildRelease, imageId, RELEASES, type BuiltRelease } from "../support/releases";
import { dropPostgresStore, postgresCommits, storedCommits, type StoredCommit } from "../support/storeCommits";
import { freePort, mustPulumi, mustRun, outsideFolder, packReseat, previewJson, pulumiSdkVersion, stackOutputs, userEnv } from "../support/userProject";

const STACK = "dev";
const NPM_QUIET = ["--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"];
const PG = postgresSettings();

/** The user's program: the same before and after the upgrade (a user upgrades the package, not the program). */
const PROGRAM = `const pulumi = require("@pulumi/pulumi");
const { ProcessingElement } = require("reseat/components");

const config = new pulumi.Config();
// Unset, the PE has no handover field at all (what every release before 0.6.0 accepts).
const handover = config.get("handover");
const pe = (peId, port, persistentStore) =>
  new ProcessingElement(peId, {
    ...(handover ? { handover } : {}),
    image: config.require("image"),
    network: "host",
    env: { PORT: String(port) },
    persistentStore,
    commitInterval: config.require("commitInterval"),
    stop: { signal: "SIGTERM", graceSeconds: 20 },
    readiness: { httpGet: { port, path: "/healthz" }, timeout: "60s" },
  });

const directory = pe(config.require("directoryPe"), config.requireNumber("directoryPort"), { kind: "directory", hostPath: config.require("store") });
const postgres = pe(config.require("postgresPe"), config.requireNumber("postgresPort"), {
  kind: "postgres",
  host: config.require("pgHost"),
  port: config.requireNumber("pgPort"),
  database: config.require("pgDatabase"),
  user: config.require("pgUser"),
  table: config.require("pgTable"),
  passwordSecret: "pgPassword", // the stack's secret config reseat:pgPassword
});
exports.directory = directory.summary;
exports.postgres = postgres.summary;
`;

interface Summary {
  peId: string;
  generation: number;
  executableId: string;
  volumeName: string;
  resumedFrom: string | null;
}

/** One PE of the stack and what the test knows of it. */
interface Pe {
  output: "directory" | "postgres";
  peId: string;
  port: number;
  first: Summary;
  acked: Map<string, number>;
  lastSeq: number;
  commits: () => Promise<StoredCommit[]>;
}

let current: string; // the checkout's tarball
// The current session workload (the checkout's state library), by id; its v2, so that it is another image
// than the release's v1 even where both state libraries are the same (0.3.0 and 0.4.0).
let currentImage: string;
// Its v1: a second image change on the current workload (the standby hand-over after the staged one).
let currentImageNext: string;
/** RESEAT_UPGRADE_TO=<commit>: upgrade to that commit's build instead of the working tree (to bisect an upgrade). */
const UPGRADE_TO = process.env.RESEAT_UPGRADE_TO;

beforeAll(async () => {
  if (UPGRADE_TO) {
    const target = await buildRelease(UPGRADE_TO);
    [current, currentImage, currentImageNext] = [target.tarball, await imageId(target.sessionImages.v2), await imageId(target.sessionImages.v1)];
  } else {
    [current, currentImage, currentImageNext] = await Promise.all([packReseat(), imageId("reseat-session-workload:v2"), imageId("reseat-session-workload:v1")]);
  }
});
afterAll(() => {
  if (current && !UPGRADE_TO) fs.rmSync(path.dirname(current), { recursive: true, force: true });
});

/** A user's stack written by one release, and the steps every upgrade case starts with. */
interface ReleaseStack {
  version: string;
  release: BuiltRelease;
  /** The user's project (program, stack, its file backend). */
  dir: string;
  /** The directory store's root (hostPath); the PE's commits are in <store>/<peId>. */
  store: string;
  /** The PostgreSQL store's table. */
  table: string;
  pes: Pe[];
  timings: Record<string, number>;
  outputs: () => Promise<Map<string, Summary>>;
  config: (key: string, value: string) => Promise<unknown>;
  up: (name: string) => Promise<Map<string, Summary>>;
  expectEveryWrite: (pe: Pe) => Promise<void>;
}

/**
 * The stack of one describe block, written by `version` (built from `commit`): its folders, PEs and store
 * table, made before and removed after the block. `tag` keeps the names of two blocks on one release apart.
 */
function useReleaseStack(version: string, commit: string, tag = ""): ReleaseStack {
  const run = `${version.replace(/\./g, "")}${tag}-${process.pid}`;
  const table = `it_up${run.replace("-", "_")}_commits`;
  const stack: ReleaseStack = {
    version,
    release: undefined as unknown as BuiltRelease,
    dir: "",
    store: "",
    table,
    pes: [],
    timings: {},
    outputs: async () => {
      const all = await stackOutputs(stack.dir, STACK);
      return new Map(stack.pes.map((pe) => [pe.peId, all[pe.output] as Summary]));
    },
    config: (key, value) => mustPulumi(stack.dir, ["config", "set", "--stack", STACK, key, value]),
    up: async (name) => {
      const ran = await mustPulumi(stack.dir, ["up", "--yes", "--skip-preview", "--stack", STACK]);
      stack.timings[name] = ran.ms;
      if (process.env.DEBUG_UPGRADE) console.log(ran.stdout);
      return stack.outputs();
    },
    expectEveryWrite: async (pe) => {
      const seen = (await waitFor(`${pe.output}: the service answering`, () => sessions(pe.port))).sessions;
      for (const [key, value] of pe.acked) expect(seen[key]?.n, `${pe.output}: ${key}`).toBe(value);
    },
  };

  beforeAll(async () => {
    const started = Date.now();
    stack.release = await buildRelease(commit);
    stack.timings.buildRelease = Date.now() - started;
    expect(stack.release.version).toBe(version);
    stack.dir = outsideFolder(`upgrade-${version}${tag}`);
    stack.store = outsideFolder(`upgrade-store-${version}${tag}`);
    fs.chmodSync(stack.store, 0o755); // made 0700 by mkdtemp: the workload (uid 1000) must reach its folder inside
    for (const output of ["directory", "postgres"] as const) {
      const peId = `it-up${output.slice(0, 3)}${run}`;
      const commits = output === "directory" ? async () => storedCommits(path.join(stack.store, peId)) : () => postgresCommits(PG, table, peId);
      stack.pes.push({ output, peId, port: await freePort(), first: undefined as unknown as Summary, acked: new Map(), lastSeq: 0, commits });
    }
    await cleanup(stack.pes.map((pe) => pe.peId));
  });
  afterAll(async () => {
    console.log(`upgrade from ${version}${tag ? ` (${tag})` : ""} timings (ms): ${JSON.stringify(stack.timings)}`);
    await cleanup(stack.pes.map((pe) => pe.peId));
    await dropPostgresStore(PG, table);
    for (const folder of [stack.dir, stack.store]) if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });
  return stack;
}

/** The release's tarball installed in an empty project; plain `pulumi up` creates the PEs; writes reach the commits. */
async function createWithRelease(stack: ReleaseStack): Promise<void> {
  const { dir, release, version, pes, store, config } = stack;
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: path.basename(dir), private: true }, null, 2));
  await mustRun(dir, "npm", ["install", ...NPM_QUIET, release.tarball, `@pulumi/pulumi@${pulumiSdkVersion()}`]);
  expect(JSON.parse(fs.readFileSync(path.join(dir, "node_modules", "reseat", "package.json"), "utf8")).version).toBe(version);
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), `name: upgrade\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: index.js\n`);
  fs.writeFileSync(path.join(dir, "index.js"), PROGRAM);
  await mustPulumi(dir, ["stack", "init", STACK]);
  const [directory, postgres] = pes as [Pe, Pe];
  const settings = {
    image: await imageId(release.sessionImages.v1),
    commitInterval: "1s",
    directoryPe: directory.peId,
    directoryPort: String(directory.port),
    store,
    postgresPe: postgres.peId,
    postgresPort: String(postgres.port),
    pgHost: PG.RESEAT_PG_HOST!,
    pgPort: PG.RESEAT_PG_PORT!,
    pgDatabase: PG.RESEAT_PG_DATABASE!,
    pgUser: PG.RESEAT_PG_USER!,
    pgTable: stack.table,
  };
  for (const [key, value] of Object.entries(settings)) await config(key, value);
  // The password as a secret, from stdin (never in a process list).
  execFileSync("pulumi", ["config", "set", "--secret", "--stack", STACK, "reseat:pgPassword", "--non-interactive"], {
    cwd: dir,
    env: userEnv(dir),
    input: PG.RESEAT_PG_PASSWORD,
    stdio: ["pipe", "ignore", "inherit"],
  });

  const created = await stack.up("oldUp");
  await Promise.all(
    pes.map(async (pe) => {
      pe.first = created.get(pe.peId)!;
      expect(pe.first).toMatchObject({ peId: pe.peId, generation: 1, resumedFrom: "empty" });
      const writers = startWriters(pe.port, 2, "old");
      await waitFor(`${pe.output}: 50 acknowledged writes`, async () => (writers.acks.length >= 50 ? true : undefined));
      await writers.stop();
      pe.acked = lastAcked(writers.acks);
      pe.lastSeq = Math.max(...writers.acks.map((a) => a.seq));
      // Made, not assumed: interval commits go on while writes are pending; wait for one holding them all.
      await waitFor(
        `${pe.output}: a commit holding seq ${pe.lastSeq}`,
        async () => ((await pe.commits()).some((c) => c.seq >= pe.lastSeq) ? true : undefined),
        60_000,
      );
    }),
  );
  for (const pe of pes) await stack.expectEveryWrite(pe);
}

/** The checkout's tarball installed over the release's: plain `pulumi preview` shows no change. */
async function installCurrent(stack: ReleaseStack): Promise<void> {
  await mustRun(stack.dir, "npm", ["install", ...NPM_QUIET, current]);
  // The checkout's tarball is what the project now depends on.
  const project = JSON.parse(fs.readFileSync(path.join(stack.dir, "package.json"), "utf8")) as { dependencies: Record<string, string> };
  expect(project.dependencies.reseat).toContain(path.basename(path.dirname(current)));
  expect(project.dependencies.reseat).not.toContain(stack.release.commit);
  const preview = await previewJson(stack.dir, STACK);
  expect(preview.steps.filter((s) => s.op !== "same")).toEqual([]);
  expect(Object.keys(preview.changeSummary)).toEqual(["same"]);
}

describe.each(RELEASES)("a stack written by reseat $version, upgraded to this checkout", ({ version, commit }) => {
  const stack = useReleaseStack(version, commit);
  const { pes, config, up, outputs, expectEveryWrite } = stack;

  it(`${version} from its tarball: plain pulumi up creates the PEs; acknowledged writes reach the stores in ${version}'s commits`, () =>
    createWithRelease(stack));

  it("the checkout's tarball installed over it: plain pulumi preview shows no change", () => installCurrent(stack));

  it("plain pulumi up: the same executables (no replacement), generation 1, every write there", async () => {
    const after = await up("newUp");
    for (const pe of pes) {
      expect(after.get(pe.peId)).toMatchObject({ peId: pe.peId, generation: 1, executableId: pe.first.executableId, volumeName: pe.first.volumeName });
      expect((await containersOf(pe.peId, false)).map((c) => c.Id)).toEqual([pe.first.executableId]);
      await expectEveryWrite(pe);
    }
  });

  it("an image change to the current session workload replaces the executables: generation 2, resumed from the volumes, every write there", async () => {
    // A long interval from here on: the stores then keep only what the release's library committed (its
    // interval commits and its final commit on SIGTERM), for the volume loss below.
    await config("image", currentImage);
    await config("commitInterval", "1h");
    const after = await up("imageChange");
    for (const pe of pes) {
      const now = after.get(pe.peId)!;
      expect(now).toMatchObject({ peId: pe.peId, generation: 2, volumeName: pe.first.volumeName, resumedFrom: "local" });
      expect(now.executableId).not.toBe(pe.first.executableId);
      expect((await containersOf(pe.peId)).map((c) => c.Id)).toEqual([now.executableId]);
      await expectEveryWrite(pe);
    }
  });

  it(`a volume loss: the current library restores from the commits ${version}'s library wrote`, async () => {
    const before = await outputs();
    for (const pe of pes) {
      await docker.getContainer(before.get(pe.peId)!.executableId).remove({ force: true });
      // The executable gone, nothing commits any more: these are the commits a restore can use.
      const commits = await pe.commits();
      expect(commits.length, pe.output).toBeGreaterThan(0);
      expect(
        commits.filter((c) => c.generation !== 1),
        pe.output,
      ).toEqual([]); // all written by the release's executable
      expect(Math.max(...commits.map((c) => c.seq)), pe.output).toBeGreaterThanOrEqual(pe.lastSeq);
      await docker.getVolume(before.get(pe.peId)!.volumeName).remove();
    }

    await mustPulumi(stack.dir, ["refresh", "--yes", "--skip-preview", "--stack", STACK]);
    const after = await up("volumeLoss");
    for (const pe of pes) {
      expect(after.get(pe.peId)).toMatchObject({ peId: pe.peId, volumeName: pe.first.volumeName, resumedFrom: "persistent" });
      expect(after.get(pe.peId)!.generation).toBeGreaterThan(before.get(pe.peId)!.generation);
      await expectEveryWrite(pe);
    }
  });

  it("plain pulumi destroy removes the executables and keeps the volumes", async () => {
    await mustPulumi(stack.dir, ["destroy", "--yes", "--skip-preview", "--stack", STACK]);
    for (const pe of pes) {
      expect(await containersOf(pe.peId)).toEqual([]);
      expect(await volumeExists(pe.first.volumeName)).toBe(true);
    }
  });
});

/** The workload's status record as it lies in the volume (the volume's folder on this host), undecoded. */
async function rawStatus(volumeName: string): Promise<Record<string, unknown>> {
  const dir = ((await docker.getVolume(volumeName).inspect()) as { Mountpoint: string }).Mountpoint;
  return JSON.parse(fs.readFileSync(path.join(dir, STATUS_RECORD.file), "utf8")) as Record<string, unknown>;
}

/**
 * An `up` replacing every PE while writers (retrying through the gap) write to each: the engine's start and
 * die events of each PE's containers, and the writers' acknowledgements, some of them by the new executables.
 */
async function upUnderWrites(stack: ReleaseStack, name: string, prefix: string) {
  const watches = await Promise.all(
    stack.pes.map(async (pe) => ({ pe, liveness: await recordLiveness(pe.peId), writers: startPersistentWriters(pe.port, 2, prefix) })),
  );
  try {
    for (const { pe, writers } of watches)
      await waitFor(`${pe.output}: 20 acknowledged writes before the up`, async () => (writers.acks.length >= 20 ? true : undefined));
    const after = await stack.up(name);
    for (const { pe, writers } of watches) {
      const before = writers.acks.length;
      await waitFor(`${pe.output}: writes acknowledged by the new executable`, async () => (writers.acks.length >= before + 20 ? true : undefined));
    }
    const results = new Map<string, { acks: Ack[]; events: { action: string; id: string; timeNano: number }[] }>();
    for (const { pe, writers, liveness } of watches) {
      await writers.stop();
      results.set(pe.peId, { acks: writers.acks, events: (await liveness.stop()).events });
    }
    return { after, results };
  } finally {
    for (const { writers } of watches) await writers.stop();
  }
}

/** The engine's start event of `started` and die event of `died`, both seen. */
function startAndDie(events: { action: string; id: string; timeNano: number }[], started: string, died: string) {
  const start = events.find((e) => e.action === "start" && e.id === started);
  const die = events.find((e) => e.action === "die" && e.id === died);
  expect(start, JSON.stringify(events)).toBeDefined();
  expect(die, JSON.stringify(events)).toBeDefined();
  return { startNano: start!.timeNano, dieNano: die!.timeNano };
}

describe('a stack written by reseat 0.5.0 asks for handover "standby" after the upgrade', () => {
  const { version, commit } = RELEASES.find((r) => r.version === "0.5.0")!;
  const stack = useReleaseStack(version, commit, "sb");
  const { pes, config, expectEveryWrite } = stack;
  /** Writes acknowledged through the hand-overs: each key's value is there, or a newer one (a retried write). */
  const expectAtLeast = async (pe: Pe, acks: Ack[]) => {
    const seen = (await sessions(pe.port)).sessions;
    for (const [key, value] of lastAcked(acks)) expect(seen[key]?.n, `${pe.output}: ${key}`).toBeGreaterThanOrEqual(value);
  };
  const earlier = new Map<string, Ack[]>(); // per PE: the acknowledgements of the first hand-over

  it(`${version} from its tarball: plain pulumi up creates the PEs; acknowledged writes`, () => createWithRelease(stack));

  it("the checkout's tarball installed over it: plain pulumi preview shows no change", () => installCurrent(stack));

  it(`handover "standby" and the current workload: ${version}'s workload (no writer lock, a status without phase) is replaced staged, every write there`, async () => {
    // The premise, as the volume says it: the release's library wrote no phase (it takes no lock).
    for (const pe of pes) {
      const status = await rawStatus(pe.first.volumeName);
      expect(status, pe.output).toMatchObject({ generation: 1 });
      expect(status, pe.output).not.toHaveProperty("phase");
    }
    await config("handover", "standby");
    await config("image", currentImage);
    const { after, results } = await upUnderWrites(stack, "standbyFirst", "staged");
    for (const pe of pes) {
      const now = after.get(pe.peId)!;
      expect(now).toMatchObject({ peId: pe.peId, generation: 2, volumeName: pe.first.volumeName, resumedFrom: "local" });
      expect(now.executableId).not.toBe(pe.first.executableId);
      const { events, acks } = results.get(pe.peId)!;
      // Staged (rule S2): the old executable had died before the new one started.
      const { startNano, dieNano } = startAndDie(events, now.executableId, pe.first.executableId);
      expect(dieNano, `${pe.output}: ${JSON.stringify(events)}`).toBeLessThan(startNano);
      expect((await containersOf(pe.peId)).map((c) => c.Id)).toEqual([now.executableId]);
      // The current library serves under the lock, and says so.
      expect(await rawStatus(pe.first.volumeName), pe.output).toMatchObject({ phase: "serving", generation: 2 });
      await expectEveryWrite(pe);
      await expectAtLeast(pe, acks);
      earlier.set(pe.peId, acks);
    }
  });

  it("the next image change is a standby hand-over: the new executable started before the old one died, every write there", async () => {
    const before = await stack.outputs();
    await config("image", currentImageNext);
    const { after, results } = await upUnderWrites(stack, "standbySecond", "standby");
    for (const pe of pes) {
      const previous = before.get(pe.peId)!;
      const now = after.get(pe.peId)!;
      expect(now).toMatchObject({ peId: pe.peId, generation: 3, volumeName: pe.first.volumeName, resumedFrom: "local" });
      expect(now.executableId).not.toBe(previous.executableId);
      const { events, acks } = results.get(pe.peId)!;
      const { startNano, dieNano } = startAndDie(events, now.executableId, previous.executableId);
      expect(startNano, `${pe.output}: ${JSON.stringify(events)}`).toBeLessThan(dieNano);
      expect((await containersOf(pe.peId)).map((c) => c.Id)).toEqual([now.executableId]);
      expect(await rawStatus(pe.first.volumeName), pe.output).toMatchObject({ phase: "serving", generation: 3 });
      await expectEveryWrite(pe);
      await expectAtLeast(pe, earlier.get(pe.peId)!);
      await expectAtLeast(pe, acks);
    }
  });
});
