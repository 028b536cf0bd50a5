// Issue 20: the dynamic-provider line (providerText in src/provider/reseatResource.ts) pinned against the real
// host shipped in @pulumi/pulumi (cmd/dynamic-provider, launched by the pulumi-resource-pulumi-nodejs shim), for
// the version the checkout pins (its devDependency) and the newest the npm registry serves (`npm view`, once per
// run). For each: a user project outside the checkout whose node_modules holds that @pulumi/pulumi (installed once
// into <RESEAT_CACHE>/pulumi-sdk/<version>, linked in) and reseat from this checkout's `npm pack`; two bare
// StateVolumes; plain `pulumi up`, `pulumi preview --json`, `pulumi destroy` (real CLI, file backend, Docker).
// Only the host evaluating the stored line reaches reseat's create and delete: the volume on Docker with reseat's
// labels after `up`, and the one not retained gone after `destroy`, are the proof.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABELS } from "../../src/backend/backend";
import { providerText } from "../../src/provider/reseatResource";
import { cleanup, docker, orUndefined, ROOT, volumeExists } from "../support/harness";
import { mustPulumi, mustRun, outsideFolder, packReseat, previewJson, stackExport, userEnv } from "../support/userProject";

const STACK = "dev";
const KIND = "StateVolume";
const NPM_QUIET = ["--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"];

/** The two hosts: the checkout's pinned @pulumi/pulumi and the registry's newest (the same one, tested once, when they agree). */
const PINNED = (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { devDependencies: Record<string, string> }).devDependencies[
  "@pulumi/pulumi"
]!;
const NEWEST = execFileSync("npm", ["view", "@pulumi/pulumi", "version"], { encoding: "utf8" }).trim();
const HOSTS = [...new Set([PINNED, NEWEST])].map((version) => ({ version, which: version === PINNED ? "pinned" : "newest" }));
console.log(`dynamic-provider hosts: pinned @pulumi/pulumi ${PINNED}, newest ${NEWEST}`);

/** Where each @pulumi/pulumi version is installed once, outside the checkout (RESEAT_CACHE as the scripts set it). */
const SDK_CACHE = path.join(process.env.RESEAT_CACHE ?? path.join(os.homedir(), ".cache", "reseat"), "pulumi-sdk");

/**
 * The package folder of @pulumi/pulumi `version`, installed by npm (with its dependencies) on first use. Installed
 * in a folder of its own and renamed into place with its `done` marker: a run cut short, or a concurrent one,
 * leaves nothing half-installed under the version's name; when present, this is one stat.
 */
async function pulumiSdk(version: string): Promise<string> {
  const dir = path.join(SDK_CACHE, version);
  const pkg = path.join(dir, "node_modules", "@pulumi", "pulumi");
  if (fs.existsSync(path.join(dir, "done"))) return pkg;
  fs.mkdirSync(SDK_CACHE, { recursive: true });
  fs.rmSync(dir, { recursive: true, force: true }); // a folder without its marker is not a finished install
  const staging = fs.mkdtempSync(path.join(SDK_CACHE, `.${version}-`));
  try {
    fs.writeFileSync(path.join(staging, "package.json"), JSON.stringify({ name: `pulumi-sdk-${version}`, private: true }, null, 2));
    await mustRun(staging, "npm", ["install", ...NPM_QUIET, `@pulumi/pulumi@${version}`]);
    fs.writeFileSync(path.join(staging, "done"), `${version}\n`);
    try {
      fs.renameSync(staging, dir);
    } catch (error) {
      // Another run renamed its own install into place first: that one serves.
      if (!fs.existsSync(path.join(dir, "done"))) throw error;
    }
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  return pkg;
}

/** The user's program: two bare StateVolumes, one retained on destroy (as a PE's is), one not (destroy deletes it). */
const PROGRAM = `const pulumi = require("@pulumi/pulumi");
const { StateVolume } = require("reseat");

const config = new pulumi.Config();
const volume = (peId, opts) =>
  new StateVolume(peId, { peId, name: "reseat-" + peId + "-state", driver: "local", owner: pulumi.getProject() + "/" + pulumi.getStack() + "/" + peId }, opts);
exports.kept = volume(config.require("keptPe"), { retainOnDelete: true }).name;
exports.deleted = volume(config.require("deletedPe")).name;
`;

/**
 * Loaded into every Node process the CLI starts (NODE_OPTIONS): appends the process's script and working folder
 * to the log beside it, so that the test sees which dynamic-provider host served each command.
 */
const PROBE = `require("node:fs").appendFileSync(__dirname + "/node-processes.log", JSON.stringify({ script: process.argv[1] ?? null, cwd: process.cwd() }) + "\\n");\n`;

interface ExportedResource {
  urn: string;
  type: string;
  id?: string;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
}

async function exportedResources(dir: string): Promise<ExportedResource[]> {
  const exported = JSON.parse(await stackExport(dir, STACK)) as { deployment: { resources?: ExportedResource[] } };
  return exported.deployment.resources ?? [];
}

let tarball: string; // the checkout's `npm pack`
beforeAll(async () => {
  tarball = await packReseat();
});
afterAll(() => {
  if (tarball) fs.rmSync(path.dirname(tarball), { recursive: true, force: true });
});

describe.each(HOSTS)("reseat's dynamic-provider line on the host of @pulumi/pulumi $version ($which)", ({ version }) => {
  const run = `${version.replace(/\./g, "")}-${process.pid}`;
  const keptPe = `it-dphk${run}`;
  const deletedPe = `it-dphd${run}`;
  const volumeOf = (peId: string) => `reseat-${peId}-state`;
  let dir = "";
  let host = ""; // this version's cmd/dynamic-provider/index.js (real path)
  /** The environment of plain `pulumi` with the probe loaded into its Node processes. */
  const probed = () => userEnv(dir, { NODE_OPTIONS: `--require ${path.join(dir, "probe.cjs")}` });
  /** The dynamic-provider hosts started since the last call (the probe's log, then emptied). */
  const hostsStarted = () => {
    const log = path.join(dir, "node-processes.log");
    const lines = fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n").filter(Boolean) : [];
    fs.rmSync(log, { force: true });
    return (lines.map((line) => JSON.parse(line)) as { script: string | null; cwd: string }[])
      .filter((p) => p.script?.endsWith(path.join("cmd", "dynamic-provider", "index.js")) || p.script?.endsWith(path.join("cmd", "dynamic-provider")))
      .map((p) => ({ script: fs.realpathSync(p.script!), cwd: fs.realpathSync(p.cwd) }));
  };
  /** A plain `pulumi` command, served by this version's host in the project's folder (and by no other host). */
  const onThisHost = async <T>(command: string, run: (env: NodeJS.ProcessEnv) => Promise<T>): Promise<T> => {
    hostsStarted();
    const result = await run(probed());
    const started = hostsStarted();
    expect(started.length, `${command}: a dynamic-provider host started`).toBeGreaterThan(0);
    expect(started, command).toEqual(started.map(() => ({ script: host, cwd: fs.realpathSync(dir) })));
    return result;
  };
  const pulumiOnThisHost = (args: string[]) => onThisHost(args[0]!, (env) => mustPulumi(dir, args, env));

  beforeAll(async () => {
    await cleanup([keptPe, deletedPe]);
    const sdk = await pulumiSdk(version);
    dir = outsideFolder(`dynamic-host-${version}`);
    fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: path.basename(dir), private: true }, null, 2));
    // reseat from the tarball, without npm adding its peer @pulumi/pulumi: that is this version's, linked in.
    await mustRun(dir, "npm", ["install", ...NPM_QUIET, "--legacy-peer-deps", tarball]);
    fs.mkdirSync(path.join(dir, "node_modules", "@pulumi"), { recursive: true });
    fs.symlinkSync(sdk, path.join(dir, "node_modules", "@pulumi", "pulumi"), "dir");
    // The host the shim starts is the one its own lookup finds from the project folder: this version's.
    host = fs.realpathSync(path.join(sdk, "cmd", "dynamic-provider", "index.js"));
    const found = (await mustRun(dir, "node", ["-e", "console.log(require.resolve('@pulumi/pulumi/cmd/dynamic-provider'))"])).stdout.trim();
    expect(fs.realpathSync(found)).toBe(host);
    expect((JSON.parse(fs.readFileSync(path.join(sdk, "package.json"), "utf8")) as { version: string }).version).toBe(version);
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), `name: dynamic-host\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: index.js\n`);
    fs.writeFileSync(path.join(dir, "index.js"), PROGRAM);
    fs.writeFileSync(path.join(dir, "probe.cjs"), PROBE);
    await mustPulumi(dir, ["stack", "init", STACK]);
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "keptPe", keptPe]);
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "deletedPe", deletedPe]);
  });
  afterAll(async () => {
    await cleanup([keptPe, deletedPe]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("pulumi up: the host reaches reseat's create, the volumes exist on Docker with reseat's labels", async () => {
    await pulumiOnThisHost(["up", "--yes", "--skip-preview", "--stack", STACK]);
    for (const peId of [keptPe, deletedPe]) {
      const volume = (await orUndefined(docker.getVolume(volumeOf(peId)).inspect())) as { Labels?: Record<string, string> } | undefined;
      expect(volume, volumeOf(peId)).toBeDefined();
      expect(volume!.Labels).toMatchObject({
        [LABELS.managed]: "true",
        [LABELS.role]: "state-volume",
        [LABELS.peId]: peId,
        [LABELS.owner]: `dynamic-host/${STACK}/${peId}`,
      });
    }
  });

  it("the stack's state holds the line byte for byte as each resource's provider, in its inputs and its outputs", async () => {
    const volumes = (await exportedResources(dir)).filter((r) => r.type === `pulumi-nodejs:dynamic/reseat:${KIND}`);
    expect(volumes.map((r) => r.id).sort()).toEqual([volumeOf(deletedPe), volumeOf(keptPe)].sort());
    for (const resource of volumes) {
      expect(resource.inputs?.__provider, resource.urn).toBe(providerText(KIND));
      expect(resource.outputs?.__provider, resource.urn).toBe(providerText(KIND));
      // Written by reseat's create (the engine's answer), not by the program.
      expect(resource.outputs?.createdAt, resource.urn).toEqual(expect.any(String));
      expect(resource.outputs?.adopted, resource.urn).toBe(false);
    }
  });

  it("pulumi preview --json: the host's check and diff find no change", async () => {
    const preview = await onThisHost("preview", (env) => previewJson(dir, STACK, env));
    expect(preview.steps.filter((s) => s.op !== "same")).toEqual([]);
    expect(Object.keys(preview.changeSummary)).toEqual(["same"]);
  });

  it("pulumi destroy: the host reaches reseat's delete (the volume not retained is gone); the retained one is kept", async () => {
    await pulumiOnThisHost(["destroy", "--yes", "--skip-preview", "--stack", STACK]);
    expect(await volumeExists(volumeOf(deletedPe))).toBe(false);
    expect(await volumeExists(volumeOf(keptPe))).toBe(true);
    expect((await exportedResources(dir)).filter((r) => r.type === `pulumi-nodejs:dynamic/reseat:${KIND}`)).toEqual([]);
  });
});
