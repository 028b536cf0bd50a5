// Drives a reseat stack through the Pulumi Automation API with an inline program, in this process:
// the `reseat` CLI's way (one JSON document, exit codes). The program is the one plain `pulumi up`
// runs in the same folder (Pulumi.yaml `main`), so both ways deploy the same thing; nothing here
// invents settings of its own — backend, passphrase and plugin settings come from the environment,
// Pulumi.yaml and `pulumi login`, exactly as for the plain `pulumi` CLI.
//
// The stack follows the Pulumi CLI's rules: it is `--stack`, else PULUMI_STACK, else the project's
// selected stack (`pulumi stack select`); without any of them nothing runs. A stack is created only
// when asked (`create`: `reseat up --create`, or `pulumi stack init`), so a mistyped name creates
// nothing. Opening a stack never changes which stack is selected.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { EngineEvent, LocalWorkspace, PulumiFn, Stack } from "@pulumi/pulumi/automation";
import { forgetDeclaredPes } from "../schema/uniqueness";

/** The reseat package's own folder (the checkout, or node_modules/reseat when installed). */
export const PROJECT_ROOT = path.resolve(__dirname, "..", "..", "..");
/** reseat's bundled program: one ProcessingElement per entry of `reseat:processingElements`. */
export const DEFAULT_PROGRAM = path.join(PROJECT_ROOT, "dist", "stacks", "index.js");

/**
 * A request that cannot run as given — no stack chosen, no such stack, no program in the folder — found
 * before Pulumi runs anything. The `reseat` CLI answers it with exit code 2, as a usage error.
 */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export interface StackOptions {
  /** Folder holding Pulumi.yaml (and its stack configs). Default: see projectFolder(). */
  workDir?: string;
  /** Default: PULUMI_STACK, else the project's selected stack (`pulumi stack select`); else a UsageError. */
  stackName?: string;
  /** Create the stack when it does not exist (as `pulumi stack init` would). Default: a missing stack is a UsageError. */
  create?: boolean;
  /**
   * The program module, relative to workDir: module.exports is the program function, or the module
   * declares resources at top level and exports the outputs (as for plain `pulumi up`). Evaluated
   * afresh for every operation (see freshProgram).
   * Default: Pulumi.yaml's `main`, else the folder's package (main / index.js), else the bundled program
   * of the reseat installed in the folder.
   */
  programModule?: string;
}

/**
 * The project folder when none is named: like `pulumi`, the nearest folder with a Pulumi.yaml from the
 * working directory up; else this checkout's own project (the demo stack).
 */
export function projectFolder(from = process.cwd()): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "Pulumi.yaml"))) return dir;
    if (dir === path.dirname(dir)) break;
  }
  if (fs.existsSync(path.join(PROJECT_ROOT, "Pulumi.yaml"))) return PROJECT_ROOT;
  throw new UsageError(`no Pulumi.yaml in ${from} or any folder above it (--cwd names the project folder)`);
}

/** Which program `pulumi up` would run in workDir (see StackOptions.programModule). */
export function resolveProgram(workDir: string, programModule?: string): string {
  if (programModule) return path.resolve(workDir, programModule);
  const main = readProject(workDir).main;
  if (main) return path.resolve(workDir, main);
  try {
    return require.resolve(workDir + path.sep);
  } catch {
    return bundledProgramOf(workDir);
  }
}

/**
 * The bundled program of the reseat installed in workDir (or a folder above it: Node's resolution, as
 * for `main: node_modules/reseat/dist/stacks/index.js`). The resources it declares load
 * `reseat/provider/runtime` from the project folder whenever Pulumi runs their provider — for `pulumi`
 * and `reseat` alike, on this runner or the next — so a folder without reseat is refused here rather
 * than failing later with "Cannot find module 'reseat/provider/runtime'".
 */
export function bundledProgramOf(workDir: string): string {
  const fromProject = createRequire(path.join(workDir, "Pulumi.yaml"));
  try {
    fromProject.resolve("reseat/provider/runtime");
    return path.join(path.dirname(fromProject.resolve("reseat/package.json")), "dist", "stacks", "index.js");
  } catch {
    throw new UsageError(
      `${workDir} has no program of its own (no --program, no \`main\` in Pulumi.yaml, no package.json or index.js) and reseat is not installed there. ` +
        `reseat's bundled program (PEs from the stack config \`reseat:processingElements\`) needs reseat in the project folder: its resources load \`reseat/provider/runtime\` from there. ` +
        `Run \`npm install reseat\` in ${workDir}, or name your program with --program.`,
    );
  }
}

/**
 * The environment the Pulumi CLI gets: this process's, plus one convenience — when reseat is
 * installed as a package, its node_modules folder on NODE_PATH, so that the dynamic-provider host finds
 * `@pulumi/pulumi` beside it.
 */
export function cliEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  const installedIn = path.dirname(PROJECT_ROOT);
  if (path.basename(installedIn) === "node_modules") {
    env.NODE_PATH = [installedIn, process.env.NODE_PATH].filter(Boolean).join(path.delimiter);
  }
  return env;
}

/**
 * Creates the folder of a file:// backend when missing (the Pulumi CLI refuses a missing one). The URL
 * is PULUMI_BACKEND_URL's, else Pulumi.yaml's `backend.url`; a relative path is relative to the project
 * folder, where the CLI runs.
 */
export function ensureFileBackend(workDir: string): void {
  const url = backendUrl(workDir);
  if (!url?.startsWith("file://")) return;
  const dir = url.slice("file://".length).split("?")[0]!;
  if (dir && !dir.startsWith("~")) fs.mkdirSync(path.resolve(workDir, dir), { recursive: true });
}

function backendUrl(workDir: string): string | undefined {
  return process.env.PULUMI_BACKEND_URL || readProject(workDir).backend;
}

/** Remembers what the program threw, so the CLI can print the program's own message (e.g. a SpecError). */
export class ProgramErrors {
  last: Error | undefined;
}

/** Where the stack name came from. */
export type StackSource = "--stack" | "PULUMI_STACK" | "selected";

/**
 * The stack an operation runs on, by the Pulumi CLI's precedence: the flag, else PULUMI_STACK, else the
 * project's selected stack. None of them: a UsageError saying how to choose one.
 */
export function chooseStack(choices: { flag?: string; env?: string; selected?: string }, existing: string[] = []): { name: string; source: StackSource } {
  if (choices.flag) return { name: choices.flag, source: "--stack" };
  if (choices.env) return { name: choices.env, source: "PULUMI_STACK" };
  if (choices.selected) return { name: choices.selected, source: "selected" };
  throw new UsageError(
    `no stack chosen: pass --stack NAME, set PULUMI_STACK, or select one with \`pulumi stack select NAME\`${listed(existing)}. ` +
      `A new stack is created by \`reseat up --stack NAME --create\` or \`pulumi stack init NAME\`.`,
  );
}

/** The UsageError for a stack that does not exist (a mistyped --stack, a stale PULUMI_STACK). */
export function missingStack(name: string, source: StackSource, backend: string | undefined, existing: string[]): UsageError {
  return new UsageError(
    `no stack named "${name}" (from ${source}) in ${backend ? `the backend ${backend}` : "the logged-in backend"}${listed(existing)}. ` +
      `Nothing was created: to create it, run \`reseat up --stack ${name} --create\` or \`pulumi stack init ${name}\`.`,
  );
}

function listed(existing: string[]): string {
  return existing.length ? `; this project's stacks: ${existing.join(", ")}` : "; this project has no stacks yet";
}

/** A stack opened for operations, and how it was found. */
export interface OpenedStack {
  stack: Stack;
  source: StackSource;
  /** True when this call created it (`create`). */
  created: boolean;
  /** The program module each operation evaluates. */
  program: string;
}

/** The Automation API's Stack for the project's stack (see openProjectStack). */
export async function openStack(options: StackOptions = {}, errors = new ProgramErrors()): Promise<Stack> {
  return (await openProjectStack(options, errors)).stack;
}

/**
 * Opens the stack of the project in workDir by the Pulumi CLI's rules (see chooseStack), creating it only
 * with `create`. Everything that can be refused — no Pulumi.yaml, no program, no stack chosen, no such
 * stack — is refused as a UsageError before Pulumi runs any program, so nothing is created then.
 */
export async function openProjectStack(options: StackOptions = {}, errors = new ProgramErrors()): Promise<OpenedStack> {
  const workDir = options.workDir ? path.resolve(options.workDir) : projectFolder();
  readProject(workDir);
  const modulePath = resolveProgram(workDir, options.programModule);
  try {
    require.resolve(modulePath);
  } catch {
    throw new UsageError(`no program at ${modulePath} (from ${options.programModule ? "--program" : "Pulumi.yaml's main"})`);
  }
  const envVars = cliEnv();
  ensureFileBackend(workDir);
  const workspace = await LocalWorkspace.create({ workDir, envVars, program: freshProgram(modulePath, errors) });
  const pulumiCli = (args: string[]) => runPulumi(workspace.pulumiCommand.command, args, workDir, envVars);
  const listStacks = async () => (await workspace.listStacks()).map((summary) => summary.name);

  const flag = options.stackName;
  const env = process.env.PULUMI_STACK || undefined;
  // The selected stack is read only when no name is given: `pulumi stack ls` is a CLI run of its own.
  const stacks = flag || env ? undefined : await workspace.listStacks();
  const { name, source } = chooseStack(
    { flag, env, selected: stacks?.find((summary) => summary.current)?.name },
    stacks?.map((summary) => summary.name),
  );

  let created = false;
  if (source !== "selected" && !(await stackExists(pulumiCli, name))) {
    if (!options.create) throw missingStack(name, source, backendUrl(workDir), await listStacks());
    // `--no-select`: creating a stack here does not change which stack bare `pulumi`/`reseat` runs use.
    await pulumiCli(["stack", "init", name, "--no-select"]);
    created = true;
  }
  // The Automation API's Stack.select runs `pulumi stack select`, which also makes the stack the
  // workspace's selected one: a `reseat preview --stack prod` would then send the next bare `reseat up` to
  // prod. The Pulumi CLI's --stack never does that; every operation below names the stack itself.
  workspace.selectStack = async () => undefined;
  const stack = await Stack.select(name, workspace);
  return { stack, source, created, program: modulePath };
}

/** Whether the backend has the stack: `pulumi stack ls`' name rules are the CLI's own, so the CLI answers. */
async function stackExists(pulumiCli: (args: string[]) => Promise<string>, name: string): Promise<boolean> {
  try {
    await pulumiCli(["stack", "tag", "ls", "--json", "--stack", name]);
    return true;
  } catch (error) {
    if (/no stack named .* found/.test((error as Error).message)) return false;
    throw error;
  }
}

/** Runs the Pulumi CLI the Automation API uses, non-interactively, in the project folder. */
function runPulumi(command: string, args: string[], workDir: string, envVars: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, [...args, "--non-interactive"], { cwd: workDir, env: { ...process.env, ...envVars }, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`pulumi ${args.join(" ")}: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
  });
}

/**
 * The inline program for the Automation API: the module as Pulumi's Node.js language host runs it (a
 * module exporting a function is the program; else its exports are the stack's outputs, its resources
 * declared while it loads), evaluated afresh for every operation. The Automation API runs the inline
 * program once per operation in this process (`preview` then `up`, the demo's two `up`s); a module that
 * declares its resources at top level would be taken from Node's require cache the second time and
 * declare nothing, and Pulumi would plan to delete every resource. So each run first drops from the
 * cache the modules the previous run loaded — the program's own files — and requires it again.
 * Packages (anything under node_modules, and reseat's own dist/) stay loaded: they are libraries such
 * as @pulumi/pulumi, whose single instance the Automation API relies on, and reseat's components.
 */
export function freshProgram(modulePath: string, errors = new ProgramErrors()): PulumiFn {
  const loader = freshLoader(modulePath);
  return async () => {
    forgetDeclaredPes();
    try {
      const loaded = loader() as Record<string, unknown> | PulumiFn;
      if (typeof loaded === "function") return await loaded();
      if (typeof loaded.default === "function") return await (loaded.default as PulumiFn)();
      return await (loaded as Record<string, unknown>);
    } catch (error) {
      errors.last = error as Error;
      throw error;
    }
  };
}

/** A loader that evaluates the module and its own files afresh on every call (see freshProgram). */
export function freshLoader(modulePath: string): () => unknown {
  let ownFiles: string[] = [];
  let previous: { exports: unknown } | undefined;
  return () => {
    const root = require.resolve(modulePath);
    for (const file of new Set([root, ...ownFiles])) delete require.cache[file];
    const before = new Set(Object.keys(require.cache));
    let exports: unknown;
    try {
      exports = require(root);
    } finally {
      // Also after a throw: what loaded before the error is evaluated again next time.
      ownFiles = Object.keys(require.cache).filter((file) => !before.has(file) && (file === root || !isPackageFile(file)));
    }
    // An ES module (require(esm)) is evaluated once per process whatever the require cache holds: the
    // second load hands back the very same exports. A program declared at its top level would then
    // declare nothing, so that is refused; a program exported as a function is simply called again.
    if (previous && exports === previous.exports && !isProgramFunction(exports)) {
      throw new Error(
        `the program ${root} cannot be evaluated again in this process (an ES module is evaluated once), so a second operation would declare nothing: ` +
          `export the program as a function (\`export default async () => { … }\`), or run one operation per process`,
      );
    }
    previous = { exports };
    return exports;
  };
}

function isProgramFunction(exports: unknown): boolean {
  return typeof exports === "function" || (typeof exports === "object" && exports !== null && typeof (exports as { default?: unknown }).default === "function");
}

/** A file of an installed package or of reseat itself (loaded once per process), not of the program. */
function isPackageFile(file: string): boolean {
  return file.split(path.sep).includes("node_modules") || file.startsWith(path.join(PROJECT_ROOT, "dist") + path.sep);
}

/** The few Pulumi.yaml keys reseat reads: name, main, backend.url. */
function readProject(workDir: string): { name: string; main?: string; backend?: string } {
  const file = path.join(workDir, "Pulumi.yaml");
  if (!fs.existsSync(file)) throw new UsageError(`${workDir} has no Pulumi.yaml (--cwd names the project folder)`);
  const text = fs.readFileSync(file, "utf8");
  const name = /^name:\s*(\S+)/m.exec(text)?.[1];
  if (!name) throw new UsageError(`${file} has no name`);
  const main = /^main:\s*(\S+)/m.exec(text)?.[1];
  const backend = /^backend:\s*\n\s+url:\s*(\S+)/m.exec(text)?.[1];
  return { name, ...(main ? { main } : {}), ...(backend ? { backend } : {}) };
}

export interface StepRecord {
  op: string;
  urn: string;
  type: string;
  /** The inputs whose change forces the replacement (replace steps only). */
  replaceKeys?: string[];
  /** The inputs that differ. */
  diffs?: string[];
}

/**
 * Collects resource steps (create/update/replace/delete…) and error diagnostics from engine events.
 * Errors are kept whole and named by resource (`orders-2-executable: …`), so that a failed rollout
 * says which member failed and why, with the container's log tail.
 */
export function stepCollector(): { steps: StepRecord[]; errors: string[]; onEvent: (event: EngineEvent) => void } {
  const steps: StepRecord[] = [];
  const errors: string[] = [];
  return {
    steps,
    errors,
    onEvent: (event) => {
      const meta = event.resourcePreEvent?.metadata;
      if (meta) {
        steps.push({
          op: meta.op,
          urn: meta.urn,
          type: meta.type,
          ...(meta.keys?.length ? { replaceKeys: meta.keys } : {}),
          ...(meta.diffs?.length ? { diffs: meta.diffs } : {}),
        });
      }
      const diagnostic = event.diagnosticEvent;
      if (diagnostic?.severity === "error" && diagnostic.urn && !diagnostic.urn.endsWith("pulumi:pulumi:Stack")) {
        const name = diagnostic.urn.split("::").at(-1);
        errors.push(`${name}: ${diagnostic.message.trim()}`);
      }
    },
  };
}

/** Operations that change nothing (Pulumi's own --expect-no-changes ignores them too). */
const NO_CHANGE_OPS = new Set(["same", "read", "read-discard", "read-replacement"]);

/** The operations of a change summary that would change something, e.g. {replace: 1}. */
export function changesIn(summary: Record<string, number | undefined>): Record<string, number> {
  return Object.fromEntries(Object.entries(summary).filter(([op, count]) => !NO_CHANGE_OPS.has(op) && (count ?? 0) > 0)) as Record<string, number>;
}
