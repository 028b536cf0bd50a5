// Issue 21: stacks, volumes and store commits written by a previous release keep working after the upgrade.
// For each release (0.3.0, 0.4.0), built from its commit as its users got it (npm pack; test/support/buildRelease.sh):
// a user project outside the checkout installs that tarball and declares two PEs, one with a directory store and
// one with a PostgreSQL store, running the release's own session workload (its state library writes the volumes
// and the commits); plain `pulumi up`, acknowledged writes, commits holding them. Then the checkout's tarball is
// installed over it (npm pack, as a user's `npm install` of the new version) and, with the same program and stack:
// - `pulumi preview` changes nothing; `pulumi up` keeps the executables (no replacement) and every write;
// - an image change to the current session workload replaces the executables (generation 2): the current
//   state library resumes from the release's volumes with every write;
// - a volume loss: the current library restores from the commits the release's library wrote;
// - `pulumi destroy` keeps the volumes.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanup, containersOf, docker, lastAcked, sessions, startWriters, volumeExists, waitFor } from "../support/harness";
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
const pe = (peId, port, persistentStore) =>
  new ProcessingElement(peId, {
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
/** RESEAT_UPGRADE_TO=<commit>: upgrade to that commit's build instead of the working tree (to bisect an upgrade). */
const UPGRADE_TO = process.env.RESEAT_UPGRADE_TO;

beforeAll(async () => {
  if (UPGRADE_TO) {
    const target = await buildRelease(UPGRADE_TO);
    [current, currentImage] = [target.tarball, await imageId(target.sessionImages.v2)];
  } else {
    [current, currentImage] = await Promise.all([packReseat(), imageId("reseat-session-workload:v2")]);
  }
});
afterAll(() => {
  if (current && !UPGRADE_TO) fs.rmSync(path.dirname(current), { recursive: true, force: true });
});

describe.each(RELEASES)("a stack written by reseat $version, upgraded to this checkout", ({ version, commit }) => {
  const run = `${version.replace(/\./g, "")}-${process.pid}`;
  const table = `it_up${run.replace("-", "_")}_commits`;
  let release: BuiltRelease;
  let dir: string;
  let store: string; // the directory store's root (hostPath); the PE's commits are in <store>/<peId>
  const pes: Pe[] = [];
  const timings: Record<string, number> = {};

  const outputs = async () => {
    const all = await stackOutputs(dir, STACK);
    return new Map(pes.map((pe) => [pe.peId, all[pe.output] as Summary]));
  };
  const config = (key: string, value: string) => mustPulumi(dir, ["config", "set", "--stack", STACK, key, value]);
  const up = async (name: string) => {
    const ran = await mustPulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    timings[name] = ran.ms;
    if (process.env.DEBUG_UPGRADE) console.log(ran.stdout);
    return outputs();
  };
  const expectEveryWrite = async (pe: Pe) => {
    const seen = (await waitFor(`${pe.output}: the service answering`, () => sessions(pe.port))).sessions;
    for (const [key, value] of pe.acked) expect(seen[key]?.n, `${pe.output}: ${key}`).toBe(value);
  };

  beforeAll(async () => {
    const started = Date.now();
    release = await buildRelease(commit);
    timings.buildRelease = Date.now() - started;
    expect(release.version).toBe(version);
    dir = outsideFolder(`upgrade-${version}`);
    store = outsideFolder(`upgrade-store-${version}`);
    fs.chmodSync(store, 0o755); // made 0700 by mkdtemp: the workload (uid 1000) must reach its folder inside
    for (const output of ["directory", "postgres"] as const) {
      const peId = `it-up${output.slice(0, 3)}${run}`;
      const commits = output === "directory" ? async () => storedCommits(path.join(store, peId)) : () => postgresCommits(PG, table, peId);
      pes.push({ output, peId, port: await freePort(), first: undefined as unknown as Summary, acked: new Map(), lastSeq: 0, commits });
    }
    await cleanup(pes.map((pe) => pe.peId));
  });
  afterAll(async () => {
    console.log(`upgrade from ${version} timings (ms): ${JSON.stringify(timings)}`);
    await cleanup(pes.map((pe) => pe.peId));
    await dropPostgresStore(PG, table);
    for (const folder of [dir, store]) if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it(`${version} from its tarball: plain pulumi up creates the PEs; acknowledged writes reach the stores in ${version}'s commits`, async () => {
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
      pgTable: table,
    };
    for (const [key, value] of Object.entries(settings)) await config(key, value);
    // The password as a secret, from stdin (never in a process list).
    execFileSync("pulumi", ["config", "set", "--secret", "--stack", STACK, "reseat:pgPassword", "--non-interactive"], {
      cwd: dir,
      env: userEnv(dir),
      input: PG.RESEAT_PG_PASSWORD,
      stdio: ["pipe", "ignore", "inherit"],
    });

    const created = await up("oldUp");
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
    for (const pe of pes) await expectEveryWrite(pe);
  });

  it("the checkout's tarball installed over it: plain pulumi preview shows no change", async () => {
    await mustRun(dir, "npm", ["install", ...NPM_QUIET, current]);
    // The checkout's tarball is what the project now depends on (its version may still be the last release's).
    const project = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    expect(project.dependencies.reseat).toContain(path.basename(path.dirname(current)));
    expect(project.dependencies.reseat).not.toContain(release.commit);
    const preview = await previewJson(dir, STACK);
    expect(preview.steps.filter((s) => s.op !== "same")).toEqual([]);
    expect(Object.keys(preview.changeSummary)).toEqual(["same"]);
  });

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

    await mustPulumi(dir, ["refresh", "--yes", "--skip-preview", "--stack", STACK]);
    const after = await up("volumeLoss");
    for (const pe of pes) {
      expect(after.get(pe.peId)).toMatchObject({ peId: pe.peId, volumeName: pe.first.volumeName, resumedFrom: "persistent" });
      expect(after.get(pe.peId)!.generation).toBeGreaterThan(before.get(pe.peId)!.generation);
      await expectEveryWrite(pe);
    }
  });

  it("plain pulumi destroy removes the executables and keeps the volumes", async () => {
    await mustPulumi(dir, ["destroy", "--yes", "--skip-preview", "--stack", STACK]);
    for (const pe of pes) {
      expect(await containersOf(pe.peId)).toEqual([]);
      expect(await volumeExists(pe.first.volumeName)).toBe(true);
    }
  });
});
