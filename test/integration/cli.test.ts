// The reseat CLI follows Pulumi's stack rules (issue 19, item 5), on the real Pulumi CLI and Docker: the
// stack is --stack, else PULUMI_STACK, else the selected stack; a stack is created only by
// `up --create`; a mistyped name creates nothing, neither in the backend nor on the engine; opening a
// stack never changes which one is selected; every command's --json is one envelope {ok, command, …};
// and openStack runs a fresh instance of the program for each operation of one process.
//
// The project lives outside the checkout with reseat linked into its node_modules (what `npm install`
// of a folder makes), so the CLI's bundled program runs as it does for a user; a folder without reseat
// is refused before anything runs.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, ROOT, cleanup, containersOf, demoSpec, volumeExists } from "../support/harness";
import { demoImageIds, freePort, mustPulumi, outsideFolder, runIn, userEnv } from "../support/userProject";

const PE = `it-cli-${process.pid}`;
/** Declared only in the config of a stack that is never created: it must never reach the engine. */
const TYPO_PE = `it-cli-typo-${process.pid}`;
const BARE_PE = `it-cli-bare-${process.pid}`;
const STACK = "cli";

interface Envelope {
  ok: boolean;
  command: string | null;
  stack?: string;
  created?: boolean;
  error?: string;
  summary?: Record<string, number>;
  outputs?: { processingElements?: Record<string, { generation: number; volumeName: string; executableId: string }> };
  processingElements?: { peId: string; generation: number | null; state: string; watchedBy: string | null }[];
  controller?: { watching: boolean; holder: string | null; renewedAt: string | null };
  engine?: { kind: string };
}

/** The environment of a person who has chosen no stack: no PULUMI_STACK. */
function envOf(dir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = userEnv(dir, extra);
  if (!("PULUMI_STACK" in extra)) delete env.PULUMI_STACK;
  return env;
}

async function reseat(dir: string, args: string[], extra: NodeJS.ProcessEnv = {}): Promise<{ code: number; doc: Envelope; stderr: string }> {
  const ran = await runIn(dir, process.execPath, [CLI, ...args, "--json"], envOf(dir, extra));
  let doc: Envelope;
  try {
    doc = JSON.parse(ran.stdout) as Envelope;
  } catch {
    throw new Error(
      `reseat ${args.join(" ")}: stdout is not one JSON document (exit ${ran.code}):\n${ran.stdout.slice(-2000)}\n--- stderr ---\n${ran.stderr.slice(-4000)}`,
    );
  }
  return { code: ran.code, doc, stderr: ran.stderr };
}

async function mustReseat(dir: string, args: string[], extra: NodeJS.ProcessEnv = {}): Promise<Envelope> {
  const result = await reseat(dir, args, extra);
  if (result.code !== 0 || !result.doc.ok)
    throw new Error(`reseat ${args.join(" ")} failed (${result.code}): ${result.doc.error}\n--- stderr ---\n${result.stderr.slice(-4000)}`);
  return result.doc;
}

/** The stacks in the project's file backend, and which is selected, as the Pulumi CLI lists them. */
async function stacksOf(dir: string): Promise<{ name: string; current: boolean }[]> {
  return JSON.parse((await mustPulumi(dir, ["stack", "ls", "--json"], envOf(dir))).stdout) as { name: string; current: boolean }[];
}

/** The checkpoint files of the project's file backend (one per stack). */
function checkpointFiles(dir: string): string[] {
  const stacks = path.join(dir, ".pulumi-state", ".pulumi", "stacks");
  if (!fs.existsSync(stacks)) return [];
  return fs
    .readdirSync(stacks, { recursive: true })
    .map(String)
    .filter((file) => file.endsWith(".json"));
}

function writeStackConfig(dir: string, stack: string, specs: unknown[]): void {
  const file = path.join(dir, "stacks", `Pulumi.${stack}.yaml`);
  // Keep the encryption salt `pulumi stack init` wrote (in its YAML, or in the JSON written here: JSON is YAML).
  const salt = fs.existsSync(file) ? /encryptionsalt['"]?:\s*['"]?([^'"\s,}]+)/.exec(fs.readFileSync(file, "utf8"))?.[1] : undefined;
  fs.writeFileSync(file, JSON.stringify({ ...(salt ? { encryptionsalt: salt } : {}), config: { "reseat:processingElements": specs } }, null, 2));
}

/** A project folder: Pulumi.yaml without `main` (so the CLI's bundled program), stack configs in stacks/. */
function makeFolder(name: string): string {
  const dir = outsideFolder(name);
  fs.writeFileSync(path.join(dir, "Pulumi.yaml"), `name: ${name}\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nstackConfigDir: stacks\n`);
  fs.mkdirSync(path.join(dir, "stacks"));
  return dir;
}

describe("the reseat CLI's stack rules", () => {
  let dir: string;
  let images: { v1: string; v2: string };
  let port: number;

  beforeAll(async () => {
    await cleanup([PE, TYPO_PE, BARE_PE]);
    images = await demoImageIds();
    port = await freePort();
    dir = makeFolder("cli");
    // reseat installed in the project as `npm install /path/to/reseat` does it (a link), @pulumi/pulumi beside it.
    fs.mkdirSync(path.join(dir, "node_modules"));
    fs.symlinkSync(ROOT, path.join(dir, "node_modules", "reseat"));
    fs.symlinkSync(path.join(ROOT, "node_modules", "@pulumi"), path.join(dir, "node_modules", "@pulumi"));
    writeStackConfig(dir, STACK, [demoSpec(PE, port, { image: images.v1 })]);
    // A stack config that is tracked but whose stack was never created in this backend.
    writeStackConfig(dir, "staging", [demoSpec(TYPO_PE, port + 1, { image: images.v1 })]);
  });

  afterAll(async () => {
    if (dir && (await stacksOf(dir).catch(() => [])).some((s) => s.name === STACK)) await reseat(dir, ["destroy", "--stack", STACK]);
    await cleanup([PE, TYPO_PE, BARE_PE]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("no stack given and none selected: exit 2 saying how to choose or create one; nothing created", async () => {
    for (const args of [["preview"], ["up"], ["up", "--create"], ["outputs"], ["destroy"]]) {
      const { code, doc } = await reseat(dir, [...args, "--cwd", dir]);
      expect(code, args.join(" ")).toBe(2);
      expect(doc).toMatchObject({ ok: false, command: args[0] });
      expect(doc.error).toContain("no stack chosen: pass --stack NAME, set PULUMI_STACK, or select one with `pulumi stack select NAME`");
      expect(doc.error).toContain("`reseat up --stack NAME --create`");
    }
    expect(await stacksOf(dir)).toEqual([]);
    expect(checkpointFiles(dir)).toEqual([]);
  });

  it("up --create creates the stack (without selecting it) and deploys; a second up --create just runs up", async () => {
    const up = await mustReseat(dir, ["up", "--stack", STACK, "--create"]);
    expect(up).toMatchObject({ ok: true, command: "up", stack: STACK, created: true });
    expect(up.outputs?.processingElements?.[PE]?.generation).toBe(1);
    expect((await containersOf(PE, false)).length).toBe(1);
    expect(await stacksOf(dir)).toEqual([expect.objectContaining({ name: STACK, current: false })]);
    const again = await mustReseat(dir, ["up", "--stack", STACK, "--create"]);
    expect(again).toMatchObject({ ok: true, stack: STACK, created: false, summary: { same: expect.any(Number) } });
    expect(Object.keys(again.summary!)).toEqual(["same"]);
  });

  it("a mistyped --stack: exit 2 naming the stacks there are; nothing in the backend, nothing on the engine", async () => {
    // "staging" has a tracked config declaring TYPO_PE, but no stack: create-or-select would deploy it.
    for (const command of ["up", "preview", "refresh", "destroy", "outputs", "cancel"]) {
      for (const name of ["staging", "cil"]) {
        const { code, doc, stderr } = await reseat(dir, [command, "--stack", name]);
        expect(code, `${command} --stack ${name}`).toBe(2);
        expect(doc).toMatchObject({ ok: false, command });
        expect(doc.error).toContain(`no stack named "${name}" (from --stack)`);
        expect(doc.error).toContain(`this project's stacks: ${STACK}`);
        expect(doc.error).toContain(`\`reseat up --stack ${name} --create\``);
        expect(stderr).toContain(`no stack named "${name}"`);
      }
    }
    expect((await stacksOf(dir)).map((s) => s.name)).toEqual([STACK]);
    expect(checkpointFiles(dir).filter((file) => /^(staging|cil)\.json/.test(path.basename(file)))).toEqual([]);
    expect(fs.existsSync(path.join(dir, "stacks", "Pulumi.cil.yaml"))).toBe(false);
    expect(await containersOf(TYPO_PE)).toEqual([]);
    expect(await volumeExists(`reseat-${TYPO_PE}-state`)).toBe(false);
  });

  it("PULUMI_STACK, then the selected stack; opening a stack never changes the selection", async () => {
    expect(await mustReseat(dir, ["outputs"], { PULUMI_STACK: STACK })).toMatchObject({ ok: true, command: "outputs", stack: STACK });
    const stale = await reseat(dir, ["outputs"], { PULUMI_STACK: "cil" });
    expect(stale.code).toBe(2);
    expect(stale.doc.error).toContain('no stack named "cil" (from PULUMI_STACK)');
    // A second stack (no PEs), created by up --create; then `pulumi stack select` picks the first one.
    writeStackConfig(dir, "other", []);
    expect(await mustReseat(dir, ["up", "--stack", "other", "--create"])).toMatchObject({ created: true });
    await mustPulumi(dir, ["stack", "select", STACK], envOf(dir));
    expect(await mustReseat(dir, ["preview"])).toMatchObject({ ok: true, stack: STACK });
    // --stack names another stack for one run; the selection stays (as `pulumi preview --stack other`).
    expect(await mustReseat(dir, ["preview", "--stack", "other"])).toMatchObject({ ok: true, stack: "other" });
    expect((await stacksOf(dir)).filter((s) => s.current).map((s) => s.name)).toEqual([STACK]);
    await mustReseat(dir, ["destroy", "--stack", "other"]);
    await mustPulumi(dir, ["stack", "rm", "--yes", "other"], envOf(dir));
  });

  it("status --json is the envelope: {ok, command, engine, processingElements, controller}", async () => {
    const status = await mustReseat(dir, ["status"]);
    expect(status).toMatchObject({ ok: true, command: "status", engine: { kind: "docker" }, controller: { watching: expect.any(Boolean) } });
    expect(status.processingElements?.find((row) => row.peId === PE)).toMatchObject({ peId: PE, generation: 1, state: "running" });
    const version = await mustReseat(dir, ["--version"]);
    expect(version).toEqual({
      ok: true,
      command: "version",
      version: (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version,
    });
  });

  it("openStack in one process: preview, up, preview — a program declared at top level runs afresh each time (one replace, no delete)", async () => {
    // The user's own program, declaring its PEs at the top level of the module (not as a function).
    fs.writeFileSync(
      path.join(dir, "topLevel.js"),
      [
        'const pulumi = require("@pulumi/pulumi");',
        'const { ProcessingElement } = require("reseat/components");',
        'const specs = new pulumi.Config("reseat").requireObject("processingElements");',
        "const pes = specs.map((spec) => new ProcessingElement(spec.peId, spec));",
        "exports.processingElements = Object.fromEntries(pes.map((pe) => [pe.spec.peId, pe.summary]));",
        "",
      ].join("\n"),
    );
    // Several operations in one Node process, as a program using the Automation API would run them.
    fs.writeFileSync(
      path.join(dir, "operations.js"),
      [
        'const { openStack } = require("reseat");',
        "(async () => {",
        '  const stack = await openStack({ workDir: process.cwd(), stackName: process.argv[2], programModule: "topLevel.js" });',
        "  const run = async (operation) => {",
        "    const steps = [];",
        "    const onEvent = (event) => { const meta = event.resourcePreEvent?.metadata; if (meta) steps.push({ op: meta.op, type: meta.type }); };",
        '    const result = await stack[operation]({ onEvent, onOutput: (text) => process.stderr.write(text), color: "never" });',
        '    return { steps, summary: operation === "preview" ? result.changeSummary : result.summary.resourceChanges };',
        "  };",
        '  const preview = await run("preview");',
        '  const up = await run("up");',
        '  const after = await run("preview");',
        "  const outputs = await stack.outputs();",
        "  process.stdout.write(JSON.stringify({ preview, up, after, pes: outputs.processingElements.value }));",
        "})().catch((error) => { console.error(error); process.exit(1); });",
        "",
      ].join("\n"),
    );
    const before = (await mustReseat(dir, ["outputs", "--stack", STACK])).outputs!.processingElements![PE]!;
    writeStackConfig(dir, STACK, [demoSpec(PE, port, { image: images.v2 })]);
    const ran = await runIn(dir, process.execPath, ["operations.js", STACK], envOf(dir));
    if (ran.code !== 0) throw new Error(`operations.js exited ${ran.code}\n${ran.stderr.slice(-4000)}`);
    type Operation = { steps: { op: string; type: string }[]; summary: Record<string, number> };
    const result = JSON.parse(ran.stdout) as {
      preview: Operation;
      up: Operation;
      after: Operation;
      pes: Record<string, { generation: number; volumeName: string }>;
    };
    for (const operation of [result.preview, result.up]) {
      expect(operation.summary.replace).toBe(1);
      expect(Object.keys(operation.summary).filter((op) => op !== "same" && op !== "replace")).toEqual([]);
      expect(operation.steps.filter((step) => step.op === "delete" || step.op === "create")).toEqual([]);
      expect(operation.steps.filter((step) => step.op === "replace").map((step) => step.type)).toEqual(["pulumi-nodejs:dynamic/reseat:Executable"]);
    }
    // The third evaluation declares everything again: nothing left to change.
    expect(Object.keys(result.after.summary)).toEqual(["same"]);
    expect(result.pes[PE]).toMatchObject({ generation: before.generation + 1, volumeName: before.volumeName });
    const running = await containersOf(PE, false);
    expect(running).toHaveLength(1);
  });

  it("the bundled program in a folder without reseat: refused (exit 2, `npm install reseat`), nothing created", async () => {
    const bare = makeFolder("cli-bare");
    try {
      writeStackConfig(bare, "dev", [demoSpec(BARE_PE, port + 2, { image: images.v1 })]);
      for (const args of [
        ["up", "--stack", "dev", "--create"],
        ["preview", "--stack", "dev"],
      ]) {
        const { code, doc } = await reseat(bare, [...args, "--cwd", bare]);
        expect(code).toBe(2);
        expect(doc.error).toContain(`Run \`npm install reseat\` in ${bare}`);
      }
      expect(fs.existsSync(path.join(bare, ".pulumi-state", ".pulumi"))).toBe(false);
      expect(await containersOf(BARE_PE)).toEqual([]);
      expect(await volumeExists(`reseat-${BARE_PE}-state`)).toBe(false);
    } finally {
      fs.rmSync(bare, { recursive: true, force: true });
    }
  });
});
