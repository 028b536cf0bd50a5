// Drives a reseat stack through the Pulumi Automation API with an inline program, in this process.
// Why not `pulumi up` on Pulumi.yaml: the Node.js language host is not buildable from the module
// proxy here (see README), and an inline program needs only the CLI. The Pulumi.yaml, the stack
// configs in stacks/ and the file:// backend are the same either way.
import * as path from "node:path";
import * as fs from "node:fs";
import { EngineEvent, LocalWorkspace, PulumiFn, Stack } from "@pulumi/pulumi/automation";
import { forgetDeclaredPes } from "../spec/uniqueness";

export const PROJECT_ROOT = path.resolve(__dirname, "..", "..", "..");
export const DEFAULT_PROGRAM = path.join(PROJECT_ROOT, "dist", "stacks", "index.js");

export interface StackOptions {
  /** Folder holding Pulumi.yaml (and stacks/Pulumi.<stack>.yaml). Default: the reseat checkout. */
  workDir?: string;
  stackName?: string;
  /** Module whose default export (or module.exports) is the Pulumi program. */
  programModule?: string;
}

/** Environment for an offline CLI: local file backend, no update checks, no plugin downloads. */
export function offlineEnv(workDir: string): Record<string, string> {
  const env: Record<string, string> = {
    PULUMI_SKIP_UPDATE_CHECK: "1",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_BACKEND_URL: process.env.PULUMI_BACKEND_URL ?? `file://${path.join(workDir, ".pulumi-state")}`,
    PULUMI_CONFIG_PASSPHRASE: process.env.PULUMI_CONFIG_PASSPHRASE ?? "reseat-local-demo",
  };
  return env;
}

/** Remembers what the program threw, so the CLI can print the program's own message (e.g. a SpecError). */
export class ProgramErrors {
  last: Error | undefined;
}

export async function openStack(options: StackOptions = {}, errors = new ProgramErrors()): Promise<Stack> {
  const workDir = path.resolve(options.workDir ?? PROJECT_ROOT);
  const stackName = options.stackName ?? "local";
  const modulePath = path.resolve(options.programModule ?? DEFAULT_PROGRAM);
  const env = offlineEnv(workDir);
  if (env.PULUMI_BACKEND_URL?.startsWith("file://")) {
    fs.mkdirSync(env.PULUMI_BACKEND_URL.slice("file://".length), { recursive: true });
  }
  Object.assign(process.env, env);
  const program: PulumiFn = async () => {
    // The Automation API runs this inline program once per operation in this process (the demo runs
    // two `up`s): each run declares its PEs afresh.
    forgetDeclaredPes();
    try {
      const loaded = require(modulePath) as { default?: PulumiFn } | PulumiFn;
      const fn = typeof loaded === "function" ? loaded : loaded.default;
      if (!fn) throw new Error(`${modulePath} exports no Pulumi program`);
      return await fn();
    } catch (error) {
      errors.last = error as Error;
      throw error;
    }
  };
  return LocalWorkspace.createOrSelectStack({ stackName, projectName: readProjectName(workDir), program }, { workDir, envVars: env });
}

function readProjectName(workDir: string): string {
  const text = fs.readFileSync(path.join(workDir, "Pulumi.yaml"), "utf8");
  const match = /^name:\s*(\S+)/m.exec(text);
  if (!match?.[1]) throw new Error(`${workDir}/Pulumi.yaml has no name`);
  return match[1];
}

export interface StepRecord {
  op: string;
  urn: string;
  type: string;
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
      if (meta) steps.push({ op: meta.op, urn: meta.urn, type: meta.type });
      const diagnostic = event.diagnosticEvent;
      if (diagnostic?.severity === "error" && diagnostic.urn && !diagnostic.urn.endsWith("pulumi:pulumi:Stack")) {
        const name = diagnostic.urn.split("::").at(-1);
        errors.push(`${name}: ${diagnostic.message.trim()}`);
      }
    },
  };
}
