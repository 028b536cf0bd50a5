// Drives a reseat stack through the Pulumi Automation API with an inline program, in this process:
// the `reseat` CLI's way (one JSON document, exit codes). The program is the one plain `pulumi up`
// runs in the same folder (Pulumi.yaml `main`), so both ways deploy the same thing; nothing here
// invents settings of its own — backend, passphrase and plugin settings come from the environment,
// Pulumi.yaml and `pulumi login`, exactly as for the plain `pulumi` CLI.
import * as path from "node:path";
import * as fs from "node:fs";
import { EngineEvent, LocalWorkspace, PulumiFn, Stack } from "@pulumi/pulumi/automation";
import { forgetDeclaredPes } from "../spec/uniqueness";

/** The reseat package's own folder (the checkout, or node_modules/reseat when installed). */
export const PROJECT_ROOT = path.resolve(__dirname, "..", "..", "..");
/** reseat's bundled program: one ProcessingElement per entry of `reseat:processingElements`. */
export const DEFAULT_PROGRAM = path.join(PROJECT_ROOT, "dist", "stacks", "index.js");

export interface StackOptions {
  /** Folder holding Pulumi.yaml (and its stack configs). Default: see projectFolder(). */
  workDir?: string;
  stackName?: string;
  /**
   * The program module, relative to workDir: module.exports is the program function, or the module
   * declares resources at top level and exports the outputs (as for plain `pulumi up`).
   * Default: Pulumi.yaml's `main`, else the folder's package (main / index.js), else reseat's bundled program.
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
  throw new Error(`no Pulumi.yaml in ${from} or any folder above it (--cwd names the project folder)`);
}

/** Which program `pulumi up` would run in workDir (see StackOptions.programModule). */
export function resolveProgram(workDir: string, programModule?: string): string {
  if (programModule) return path.resolve(workDir, programModule);
  const main = readProject(workDir).main;
  if (main) return path.resolve(workDir, main);
  try {
    return require.resolve(workDir + path.sep);
  } catch {
    return DEFAULT_PROGRAM;
  }
}

/**
 * The environment the Pulumi CLI gets: this process's, plus one convenience — when reseat is
 * installed as a package, its node_modules folder on NODE_PATH, so that a project folder holding only
 * Pulumi.yaml and stack configs finds `@pulumi/pulumi` (the dynamic-provider host) and `reseat` (its
 * runtime) there.
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
  const url = process.env.PULUMI_BACKEND_URL || readProject(workDir).backend;
  if (!url?.startsWith("file://")) return;
  const dir = url.slice("file://".length).split("?")[0]!;
  if (dir && !dir.startsWith("~")) fs.mkdirSync(path.resolve(workDir, dir), { recursive: true });
}

/** Remembers what the program threw, so the CLI can print the program's own message (e.g. a SpecError). */
export class ProgramErrors {
  last: Error | undefined;
}

export async function openStack(options: StackOptions = {}, errors = new ProgramErrors()): Promise<Stack> {
  const workDir = options.workDir ? path.resolve(options.workDir) : projectFolder();
  const stackName = options.stackName ?? "local";
  const modulePath = resolveProgram(workDir, options.programModule);
  const envVars = cliEnv();
  ensureFileBackend(workDir);
  // As Pulumi's Node.js runner does: the module is the program when it exports a function, else its
  // exports are the stack's outputs (resources declared at top level, while it is required — here).
  // A default-exported function is accepted too (`export default`, for --program modules).
  const program: PulumiFn = async () => {
    // The Automation API runs this inline program once per operation in this process (the demo runs
    // two `up`s): each run declares its PEs afresh.
    forgetDeclaredPes();
    try {
      const loaded = require(modulePath) as Record<string, unknown> | PulumiFn;
      if (typeof loaded === "function") return await loaded();
      if (typeof loaded.default === "function") return await (loaded.default as PulumiFn)();
      return await (loaded as Record<string, unknown>);
    } catch (error) {
      errors.last = error as Error;
      throw error;
    }
  };
  return LocalWorkspace.createOrSelectStack({ stackName, projectName: readProject(workDir).name, program }, { workDir, envVars });
}

/** The few Pulumi.yaml keys reseat reads: name, main, backend.url. */
function readProject(workDir: string): { name: string; main?: string; backend?: string } {
  const file = path.join(workDir, "Pulumi.yaml");
  if (!fs.existsSync(file)) throw new Error(`${workDir} has no Pulumi.yaml (--cwd names the project folder)`);
  const text = fs.readFileSync(file, "utf8");
  const name = /^name:\s*(\S+)/m.exec(text)?.[1];
  if (!name) throw new Error(`${file} has no name`);
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
