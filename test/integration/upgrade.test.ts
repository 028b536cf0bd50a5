// Issue 21: stacks, volumes and store commits written by a previous release keep working after the upgrade.
// For each release (0.3.0, 0.4.0), built from its commit as its users got it (npm pack; test/support/buildRelease.sh):
// a user project outside the checkout installs that tarball, declares a PE with a directory store and runs
// the release's own session workload (its state library writes the volume and the commits); plain `pulumi up`,
// acknowledged writes, commits holding them. Then the checkout's tarball is installed over it (npm pack, as a
// user's `npm install` of the new version) and, with the same program and stack:
// - `pulumi preview` changes nothing; `pulumi up` keeps the executable (no replacement) and every write;
// - an image change to the current session workload replaces the executable (generation + 1): the current
//   state library resumes from the release's volume with every write;
// - a volume loss: the current library restores from the commits the release's library wrote;
// - `pulumi destroy` keeps the volume.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanup, containersOf, docker, lastAcked, sessions, startWriters, volumeExists, waitFor } from "../support/harness";
import { buildRelease, imageId, RELEASES, type BuiltRelease } from "../support/releases";
import { storedCommits } from "../support/storeCommits";
import { freePort, mustPulumi, mustRun, outsideFolder, packReseat, previewJson, pulumiSdkVersion, stackOutputs, userEnv } from "../support/userProject";

const STACK = "dev";
const NPM_QUIET = ["--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"];

/** The user's program: the same before and after the upgrade (a user upgrades the package, not the program). */
const PROGRAM = `const pulumi = require("@pulumi/pulumi");
const { ProcessingElement } = require("reseat/components");

const config = new pulumi.Config();
const port = config.requireNumber("port");
const pe = new ProcessingElement(config.require("peId"), {
  image: config.require("image"),
  network: "host",
  env: { PORT: String(port) },
  persistentStore: { kind: "directory", hostPath: config.require("store") },
  commitInterval: config.require("commitInterval"),
  stop: { signal: "SIGTERM", graceSeconds: 20 },
  readiness: { httpGet: { port, path: "/healthz" }, timeout: "60s" },
});
exports.pe = pe.summary;
`;

interface Summary {
  peId: string;
  generation: number;
  executableId: string;
  volumeName: string;
  resumedFrom: string | null;
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
  const peId = `it-up${version.replace(/\./g, "")}-${process.pid}`;
  let release: BuiltRelease;
  let oldImages: { v1: string; v2: string };
  let dir: string;
  let store: string; // the directory store's root (hostPath); the PE's commits are in <store>/<peId>
  let port: number;
  let first: Summary;
  let acked: Map<string, number>;
  let lastSeq: number;
  const timings: Record<string, number> = {};

  const outputs = async () => (await stackOutputs(dir, STACK)).pe as Summary;
  const config = (key: string, value: string) => mustPulumi(dir, ["config", "set", "--stack", STACK, key, value]);
  const up = async (name: string) => {
    const ran = await mustPulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    timings[name] = ran.ms;
    if (process.env.DEBUG_UPGRADE) console.log(ran.stdout);
    return outputs();
  };
  const expectEveryWrite = async () => {
    const seen = (await waitFor("the service answering", () => sessions(port))).sessions;
    for (const [key, value] of acked) expect(seen[key]?.n, key).toBe(value);
  };

  beforeAll(async () => {
    await cleanup([peId]);
    const started = Date.now();
    release = await buildRelease(commit);
    timings.buildRelease = Date.now() - started;
    expect(release.version).toBe(version);
    oldImages = { v1: await imageId(release.sessionImages.v1), v2: await imageId(release.sessionImages.v2) };
    dir = outsideFolder(`upgrade-${version}`);
    store = outsideFolder(`upgrade-store-${version}`);
    fs.chmodSync(store, 0o755); // made 0700 by mkdtemp: the workload (uid 1000) must reach its folder inside
    port = await freePort();
  });
  afterAll(async () => {
    console.log(`upgrade from ${version} timings (ms): ${JSON.stringify(timings)}`);
    await cleanup([peId]);
    for (const folder of [dir, store]) if (folder) fs.rmSync(folder, { recursive: true, force: true });
  });

  it(`${version} from its tarball: plain pulumi up creates the PE; acknowledged writes reach the store in ${version}'s commits`, async () => {
    fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: path.basename(dir), private: true }, null, 2));
    await mustRun(dir, "npm", ["install", ...NPM_QUIET, release.tarball, `@pulumi/pulumi@${pulumiSdkVersion()}`]);
    expect(JSON.parse(fs.readFileSync(path.join(dir, "node_modules", "reseat", "package.json"), "utf8")).version).toBe(version);
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), `name: upgrade\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: index.js\n`);
    fs.writeFileSync(path.join(dir, "index.js"), PROGRAM);
    await mustPulumi(dir, ["stack", "init", STACK]);
    for (const [key, value] of Object.entries({ peId, image: oldImages.v1, port: String(port), store, commitInterval: "1s" })) await config(key, value);

    first = await up("oldUp");
    expect(first).toMatchObject({ peId, generation: 1, resumedFrom: "empty" });
    const writers = startWriters(port, 2, "old");
    await waitFor("50 acknowledged writes", async () => (writers.acks.length >= 50 ? true : undefined));
    await writers.stop();
    acked = lastAcked(writers.acks);
    lastSeq = Math.max(...writers.acks.map((a) => a.seq));
    // Made, not assumed: the interval commits go on while writes are pending; wait for one holding them all.
    await waitFor(`a commit holding seq ${lastSeq}`, async () => (storedCommits(path.join(store, peId)).some((c) => c.seq >= lastSeq) ? true : undefined), 60_000);
    await expectEveryWrite();
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

  it("plain pulumi up: the same executable (no replacement), generation 1, every write there", async () => {
    const after = await up("newUp");
    expect(after).toMatchObject({ peId, generation: 1, executableId: first.executableId, volumeName: first.volumeName });
    expect((await containersOf(peId, false)).map((c) => c.Id)).toEqual([first.executableId]);
    await expectEveryWrite();
  });

  it("an image change to the current session workload replaces the executable: generation 2, resumed from the volume, every write there", async () => {
    // A long interval from here on: the store then keeps only what the release's library committed (its
    // interval commits and its final commit on SIGTERM), for the volume loss below.
    await config("image", currentImage);
    await config("commitInterval", "1h");
    const after = await up("imageChange");
    expect(after).toMatchObject({ peId, generation: 2, volumeName: first.volumeName, resumedFrom: "local" });
    expect(after.executableId).not.toBe(first.executableId);
    expect((await containersOf(peId)).map((c) => c.Id)).toEqual([after.executableId]);
    await expectEveryWrite();
  });

  it(`a volume loss: the current library restores from the commits ${version}'s library wrote`, async () => {
    const before = await outputs();
    const commits = storedCommits(path.join(store, peId));
    expect(commits.length).toBeGreaterThan(0);
    expect(commits.every((c) => c.generation === 1)).toBe(true); // all written by the release's executable
    expect(Math.max(...commits.map((c) => c.seq))).toBeGreaterThanOrEqual(lastSeq);
    await docker.getContainer(before.executableId).remove({ force: true });
    await docker.getVolume(before.volumeName).remove();

    await mustPulumi(dir, ["refresh", "--yes", "--skip-preview", "--stack", STACK]);
    const after = await up("volumeLoss");
    expect(after).toMatchObject({ peId, volumeName: first.volumeName, resumedFrom: "persistent" });
    expect(after.generation).toBeGreaterThan(before.generation);
    await expectEveryWrite();
  });

  it("plain pulumi destroy removes the executable and keeps the volume", async () => {
    await mustPulumi(dir, ["destroy", "--yes", "--skip-preview", "--stack", STACK]);
    expect(await containersOf(peId)).toEqual([]);
    expect(await volumeExists(first.volumeName)).toBe(true);
  });
});
