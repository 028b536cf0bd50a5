// Issue 19: a program that composes PEs with other resources through Outputs, as Pulumi users do. In a
// user's own folder (the packed tarball, plain `pulumi`, the program in its own Node process): PE "a"'s
// image is the output of another resource (a small dynamic resource standing in for an image build:
// unknown until it is created), an env value of "a" comes from `config.requireSecret`, and PE "b"'s env
// names a's executableName. The first preview succeeds with those values unknown; up; writes; an image
// change on "a" replaces a's Executable and b's (whose env changes with it) and keeps every write; the
// secret is never in the state in plaintext; a value that resolves invalid at up fails naming the field.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanup, containersOf, httpJson, volumeExists } from "../support/harness";
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
  type PeSummary,
  type StateView,
} from "../support/userProject";

const A = `it-ca-${process.pid}`;
const B = `it-cb-${process.pid}`;
const C = `it-cc-${process.pid}`;
const STACK = "dev";
const TOKEN = `tok-${process.pid}-${Date.now().toString(36)}-do-not-leak`;

const PROJECT = `name: composition
runtime:
  name: nodejs
  options:
    typescript: false
main: index.js
`;

/** The user's program. `image` and `portA`/`portB` are config; `apiToken` is a secret config value. */
const PROGRAM = `
const pulumi = require("@pulumi/pulumi");
const { ProcessingElement } = require("reseat/components");

const config = new pulumi.Config();

// Stands in for an image build: its output (the image to run) is known only once it is created, so
// a preview of a new or changed build shows it as unknown.
const buildProvider = {
  async create(inputs) {
    return { id: "build-" + Date.now(), outs: { source: inputs.source, image: inputs.source, count: inputs.count } };
  },
  async diff(id, olds, news) {
    const replaces = ["source", "count"].filter((key) => JSON.stringify(olds[key]) !== JSON.stringify(news[key]));
    return { changes: replaces.length > 0, replaces, deleteBeforeReplace: false };
  },
};
class ImageBuild extends pulumi.dynamic.Resource {
  constructor(name, args, opts) {
    super(buildProvider, name, { ...args, image: undefined }, opts);
  }
}

const build = new ImageBuild("build", { source: config.require("image"), count: 1 });
const portA = config.requireNumber("portA");
const portB = config.requireNumber("portB");

const a = new ProcessingElement("${A}", {
  image: build.image,
  network: "host",
  env: { PORT: String(portA), API_TOKEN: config.requireSecret("apiToken") },
  persistentStore: { kind: "none" },
  stop: { graceSeconds: 5 },
  readiness: { httpGet: { port: portA, path: "/healthz" }, timeout: "30s" },
});

const b = new ProcessingElement("${B}", {
  image: config.require("imageB"),
  network: "host",
  env: { PORT: String(portB), UPSTREAM: a.executableName },
  persistentStore: { kind: "none" },
  stop: { graceSeconds: 5 },
  readiness: { httpGet: { port: portB, path: "/healthz" }, timeout: "30s" },
});

exports.a = a.summary;
exports.b = b.summary;

// A value that resolves invalid only at up: an image that is no image reference, an env value that is
// no string.
if (config.getBoolean("lateBad")) {
  const bad = new ImageBuild("bad-build", { source: "Not A Valid Reference", count: 7 });
  new ProcessingElement("${C}", { image: bad.image, env: { N: bad.count }, persistentStore: { kind: "none" } });
}
`;

describe("a program composed by Outputs: built image, secret env, one PE's executableName in another's env", () => {
  let tarball: string;
  let dir: string;
  let images: { v1: string; v2: string };
  let portA: number;
  let portB: number;

  const outputs = async () => (await stackOutputs(dir, STACK)) as { a: PeSummary & { executableName: string }; b: PeSummary & { executableName: string } };
  const envOf = async (peId: string) => {
    const running = await containersOf(peId, false);
    expect(running).toHaveLength(1);
    const stdout = execFileSync("docker", ["inspect", "--format", "{{json .Config.Env}}", running[0]!.Id]).toString();
    return Object.fromEntries((JSON.parse(stdout) as string[]).map((entry) => [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)]));
  };

  beforeAll(async () => {
    await cleanup([A, B, C]);
    [tarball, images] = await Promise.all([packReseat(), demoImageIds()]);
    [portA, portB] = [await freePort(), await freePort()];
    dir = outsideFolder("composition");
    await installReseat(dir, tarball);
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), PROJECT);
    fs.writeFileSync(path.join(dir, "index.js"), PROGRAM);
    await mustPulumi(dir, ["stack", "init", STACK]);
    for (const [key, value] of [
      ["image", images.v1],
      ["imageB", images.v1],
      ["portA", String(portA)],
      ["portB", String(portB)],
    ]) {
      await mustPulumi(dir, ["config", "set", "--stack", STACK, key!, value!]);
    }
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "--secret", "apiToken", TOKEN]);
  });

  afterAll(async () => {
    if (dir) await pulumi(dir, ["destroy", "--yes", "--skip-preview", "--stack", STACK]);
    await cleanup([A, B, C]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (tarball) fs.rmSync(path.dirname(tarball), { recursive: true, force: true });
  });

  it("the first preview succeeds with the image and b's env unknown, and creates nothing", async () => {
    const preview = await previewJson(dir, STACK);
    const creates = preview.steps.filter((s) => s.op === "create").map((s) => s.urn.split("::").at(-1));
    expect(creates).toEqual(expect.arrayContaining(["build", `${A}-volume`, `${A}-executable`, `${B}-volume`, `${B}-executable`]));
    expect(await containersOf(A)).toEqual([]);
    expect(await volumeExists(`reseat-${A}-state`)).toBe(false);
  });

  it("up creates both PEs: a runs the built image with the secret in its env, b's env names a's executable", async () => {
    const up = await mustPulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    expect(up.stdout + up.stderr).not.toContain(TOKEN);
    const { a, b } = await outputs();
    expect(a.generation).toBe(1);
    expect(b.generation).toBe(1);
    expect((await envOf(A)).API_TOKEN).toBe(TOKEN);
    expect((await envOf(B)).UPSTREAM).toBe(a.executableName);
    for (const line of ["a1", "a2"]) await httpJson(portA, `/append?line=${line}`, "POST");
    await httpJson(portB, "/append?line=b1", "POST");
    expect((await httpJson<StateView>(portA, "/state")).lines).toEqual(["a1", "a2"]);
  });

  it("the secret is in the state only encrypted: a's env input is a secret, its image reference is not", async () => {
    // (The workload gets it in its environment, as any env value: `docker inspect` shows it there.)
    const exported = await stackExport(dir, STACK);
    expect(exported).not.toContain(TOKEN);
    const deployment = JSON.parse(exported) as { deployment: { resources: { urn: string; inputs?: Record<string, unknown> }[] } };
    const executable = deployment.deployment.resources.find((r) => r.urn.endsWith(`::${A}-executable`))!;
    expect(executable.inputs!.env).toMatchObject({ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270" });
    expect(executable.inputs!.imageRef).toBe(images.v1);
  });

  it("an image change on a: preview shows a's and b's executables replaced (values unknown until up), no volume touched", async () => {
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "image", images.v2]);
    const preview = await previewJson(dir, STACK);
    const replaced = preview.steps.filter((s) => s.op === "replace").map((s) => s.urn.split("::").at(-1));
    expect(replaced.sort()).toEqual(["build", `${A}-executable`, `${B}-executable`].sort());
    expect(preview.steps.filter((s) => s.urn.endsWith("-volume"))).toEqual([]);
  });

  it("up replaces a (new image) and then b (new env), keeping every write", async () => {
    const before = await outputs();
    await mustPulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    const { a, b } = await outputs();
    expect(a.generation).toBe(before.a.generation + 1);
    expect(b.generation).toBe(before.b.generation + 1);
    expect(a.volumeName).toBe(before.a.volumeName);
    const stateA = await httpJson<StateView>(portA, "/state");
    expect(stateA.version).toBe("v2");
    expect(stateA.lines).toEqual(["a1", "a2"]);
    expect((await httpJson<StateView>(portB, "/state")).lines).toEqual(["b1"]);
    expect((await envOf(B)).UPSTREAM).toBe(a.executableName);
    expect(await containersOf(A, false)).toHaveLength(1);
    expect(await containersOf(B, false)).toHaveLength(1);
    expect(await stackExport(dir, STACK)).not.toContain(TOKEN);
    const clean = await pulumi(dir, ["preview", "--stack", STACK, "--expect-no-changes"]);
    expect(clean.code, clean.stdout.slice(-3000)).toBe(0);
  });

  it("a value that resolves invalid at up fails with one message naming every bad field, and creates nothing of that PE", async () => {
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "lateBad", "true"]);
    const preview = await pulumi(dir, ["preview", "--stack", STACK]);
    expect(preview.code, preview.stdout.slice(-3000)).toBe(0);
    const up = await pulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    const text = up.stdout + up.stderr;
    expect(up.code).not.toBe(0);
    expect(text).toContain(`reseat: invalid processing element "${C}":`);
    expect(text).toMatch(/- image: expected a Docker image reference/);
    expect(text).toMatch(/- env\.N: expected a string value/);
    // One readable message: no stack trace, no dump of the error object.
    expect(text).not.toContain("unhandled exception");
    expect(text).not.toMatch(/\n\s+at .+\.js:\d+/);
    expect(text).not.toContain("problems:");
    expect(await containersOf(C)).toEqual([]);
    expect(await volumeExists(`reseat-${C}-state`)).toBe(false);
    // a and b serve on, untouched.
    expect((await httpJson<StateView>(portA, "/state")).lines).toEqual(["a1", "a2"]);
    await mustPulumi(dir, ["config", "rm", "--stack", STACK, "lateBad"]);
  });
});
