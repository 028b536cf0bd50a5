// Issue 10: reseat as a stranger gets it. `npm pack` → an empty folder outside the checkout → `npm install
// <tarball> @pulumi/pulumi` → the README's program → plain `pulumi up` (the official Node.js language
// host); then the same project moved to another folder ("runner") with its state backend, the first
// folder deleted, node_modules reinstalled: up, refresh and destroy still work.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanup, containersOf, httpJson, volumeExists } from "../support/harness";
import {
  copyProject,
  demoImageIds,
  freePort,
  installReseat,
  mustPulumi,
  mustRun,
  outsideFolder,
  packReseat,
  previewJson,
  readmeBlock,
  reinstall,
  runIn,
  stackExport,
  stackOutputs,
  userEnv,
  type PeSummary,
  type StateView,
} from "../support/userProject";

const NEW_USER = `it-nu-${process.pid}`;
const MOVED = `it-mv-${process.pid}`;
const STACK = "dev";
let images: { v1: string; v2: string };

/** The README's project and program, with the test's own PE name (PEs share the machine's engine). */
async function writeReadmeProject(dir: string, peName: string, port: number): Promise<void> {
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), readmeBlock("user-project"));
  const program = readmeBlock("user-program");
  expect(program).toContain('new ProcessingElement("orders"');
  fs.writeFileSync(path.join(dir, "index.js"), program.replace('new ProcessingElement("orders"', `new ProcessingElement("${peName}"`));
  await mustPulumi(dir, ["stack", "init", STACK]);
  await mustPulumi(dir, ["config", "set", "--stack", STACK, "image", images.v1]);
  await mustPulumi(dir, ["config", "set", "--stack", STACK, "port", String(port)]);
}

async function pe(dir: string): Promise<PeSummary> {
  return (await stackOutputs(dir, STACK)).orders as PeSummary;
}

describe("a new user: npm pack → npm install → the README's program → plain pulumi up", () => {
  let tarball: string;
  let dir: string;
  let port: number;
  let first: PeSummary;
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    await cleanup([NEW_USER, MOVED]);
    [tarball, images] = await Promise.all([packReseat(), demoImageIds()]);
    dir = outsideFolder("new-user");
    port = await freePort();
  });
  afterAll(async () => {
    console.log(`new-user timings (ms): ${JSON.stringify(timings)}`);
    await cleanup([NEW_USER, MOVED]);
    if (tarball) fs.rmSync(path.dirname(tarball), { recursive: true, force: true });
  });

  it("the tarball installs into an empty folder: one @pulumi/pulumi, the reseat bin, reseat/components, reseat/state, the provider runtime", async () => {
    timings.npmInstall = (await installReseat(dir, tarball)).ms;
    expect(fs.existsSync(path.join(dir, "node_modules", "reseat", "node_modules", "@pulumi"))).toBe(false);
    const resolved = await mustRun(dir, process.execPath, [
      "-e",
      'for (const m of ["reseat", "reseat/components", "reseat/state", "reseat/provider/runtime", "@pulumi/pulumi"]) console.log(require.resolve(m));',
    ]);
    for (const line of resolved.stdout.trim().split("\n")) expect(line.startsWith(path.join(fs.realpathSync(dir), "node_modules"))).toBe(true);
    const help = await mustRun(dir, path.join(dir, "node_modules", ".bin", "reseat"), ["--help", "--json"]);
    expect((JSON.parse(help.stdout) as { usage: string }).usage).toContain("reseat <up|preview");
  });

  it("plain pulumi up runs the README's program: the PE is created and keeps state", async () => {
    await writeReadmeProject(dir, NEW_USER, port);
    const up = await mustPulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    timings.firstUp = up.ms;
    first = await pe(dir);
    expect(first.peId).toBe(NEW_USER);
    expect(first.generation).toBe(1);
    for (const line of ["a", "b", "c"]) await httpJson(port, `/append?line=${line}`, "POST");
    expect((await httpJson<StateView>(port, "/state")).lines).toEqual(["a", "b", "c"]);
  });

  it("the reseat bin runs the same program: no changes expected, and the same outputs", async () => {
    const reseat = path.join(dir, "node_modules", ".bin", "reseat");
    const gate = await runIn(dir, reseat, ["preview", "--stack", STACK, "--cwd", ".", "--expect-no-changes", "--json"], userEnv(dir));
    expect(gate.code, gate.stderr.slice(-2000)).toBe(0);
    timings.reseatPreview = gate.ms;
    const outputs = JSON.parse((await mustRun(dir, reseat, ["outputs", "--stack", STACK, "--json"], userEnv(dir))).stdout) as {
      outputs: { orders: PeSummary };
    };
    expect(outputs.outputs.orders.executableId).toBe(first.executableId);
  });

  it("an image change: plain pulumi preview shows one replace and no volume operation; the drift gate says so", async () => {
    await mustPulumi(dir, ["config", "set", "--stack", STACK, "image", images.v2]);
    const preview = await previewJson(dir, STACK);
    expect(preview.changeSummary.replace).toBe(1);
    const changed = preview.steps.filter((s) => s.op !== "same");
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.every((s) => s.urn.endsWith(`${NEW_USER}-executable`))).toBe(true);
    // `pulumi preview --json` lists the steps that do something: none for the volume.
    expect(preview.steps.filter((s) => s.urn.endsWith(`${NEW_USER}-volume`))).toEqual([]);
    expect(preview.changeSummary.same).toBeGreaterThan(0);

    const gate = await runIn(
      dir,
      path.join(dir, "node_modules", ".bin", "reseat"),
      ["preview", "--stack", STACK, "--expect-no-changes", "--json"],
      userEnv(dir),
    );
    expect(gate.code).toBe(3);
    const doc = JSON.parse(gate.stdout) as { ok: boolean; changes: Record<string, number> };
    expect(doc.ok).toBe(false);
    expect(doc.changes).toEqual({ replace: 1 });
  });

  it("plain pulumi up replaces the executable and keeps the volume and its state", async () => {
    const up = await mustPulumi(dir, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    timings.replaceUp = up.ms;
    const after = await pe(dir);
    expect(after.generation).toBe(2);
    expect(after.volumeName).toBe(first.volumeName);
    expect(after.executableId).not.toBe(first.executableId);
    const state = await httpJson<StateView>(port, "/state");
    expect(state.version).toBe("v2");
    expect(state.lines).toEqual(["a", "b", "c"]);
    await mustPulumi(dir, ["destroy", "--yes", "--skip-preview", "--stack", STACK]);
    expect(await containersOf(NEW_USER)).toEqual([]);
    expect(await volumeExists(first.volumeName)).toBe(true);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("a moved runner: up from folder A; project and state copied to B; A deleted; reinstalled in B: up, refresh, destroy work", async () => {
    const a = outsideFolder("runner-a");
    const movedPort = await freePort();
    await installReseat(a, tarball);
    await writeReadmeProject(a, MOVED, movedPort);
    await mustPulumi(a, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    const before = await pe(a);
    for (const line of ["x", "y"]) await httpJson(movedPort, `/append?line=${line}`, "POST");

    const b = outsideFolder("runner-b");
    copyProject(a, b);
    fs.rmSync(a, { recursive: true, force: true });
    timings.reinstall = (await reinstall(b)).ms;

    const exported = await stackExport(b, STACK);
    expect(exported).not.toContain(a);
    expect(exported).not.toContain("dist/src/provider/runtime");
    // Nothing in the state names folder A, so nothing needs rewriting from B.
    const unchanged = await previewJson(b, STACK);
    expect(Object.keys(unchanged.changeSummary)).toEqual(["same"]);

    await mustPulumi(b, ["config", "set", "--stack", STACK, "image", images.v2]);
    await mustPulumi(b, ["up", "--yes", "--skip-preview", "--stack", STACK]);
    const after = await pe(b);
    expect(after.generation).toBe(before.generation + 1);
    expect(after.volumeName).toBe(before.volumeName);
    expect((await httpJson<StateView>(movedPort, "/state")).lines).toEqual(["x", "y"]);

    const refresh = await mustPulumi(b, ["refresh", "--yes", "--skip-preview", "--stack", STACK]);
    expect(refresh.stdout).toContain("4 unchanged");
    expect((await pe(b)).executableId).toBe(after.executableId);

    await mustPulumi(b, ["destroy", "--yes", "--skip-preview", "--stack", STACK]);
    expect(await containersOf(MOVED)).toEqual([]);
    expect(await volumeExists(before.volumeName)).toBe(true);
    fs.rmSync(b, { recursive: true, force: true });
  });
});
