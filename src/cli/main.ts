#!/usr/bin/env node
// `reseat` — the non-interactive entry point for people and GitOps pipelines.
//   reseat up|preview|refresh|destroy|outputs|cancel [--stack NAME] [--create] [--cwd DIR] [--program FILE] [--json]
// The stack follows the Pulumi CLI's rules (--stack, else PULUMI_STACK, else the selected stack) and is
// created only by `up --create`. With --json, stdout carries exactly one JSON document {ok, command, …} —
// usage errors included (`watch`: one line per event, then that document); Pulumi's progress goes to
// stderr. Exit codes: 0 ok, 1 failed, 2 usage error, 3 `preview --expect-no-changes` found changes.
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import type { OutputMap } from "@pulumi/pulumi/automation";
// Loaded when needed, so that usage errors answer at once (the Automation API takes a second to load).
type StackModule = typeof import("../automation/stack");
import type { Backend, EngineTarget } from "../backend/backend";

export const USAGE = `usage:
  reseat <up|preview|refresh|destroy|outputs|cancel> [--stack NAME] [--cwd DIR] [--program FILE] [--json] [--refresh]
         [--clear-pending-creates]    (refresh/up after an interrupted run; see the README's recovery steps)
  reseat up --create                  create the stack when it does not exist (as \`pulumi stack init\`)
  reseat preview --expect-no-changes  exit 3 when the stack would change (a drift gate)
  reseat watch [--json]               the failure controller: reseats failed executables until stopped
  reseat status [--json]              the processing elements on this engine
  reseat --version
  --stack NAME    the stack; default: PULUMI_STACK, else the project's selected stack (\`pulumi stack select\`)
  --cwd DIR       the project folder (Pulumi.yaml); default: the nearest one from here up
  --program FILE  the program module, relative to --cwd; default: Pulumi.yaml's main
  --kubernetes NAMESPACE [--context NAME]
                  watch and status: the PEs in that namespace of the cluster the ambient kubeconfig
                  (KUBECONFIG) reaches; default: the local Docker Engine (DOCKER_HOST)
exit codes: 0 ok, 1 failed, 2 usage error, 3 changes found by --expect-no-changes`;

/** Commands that run a Pulumi operation on a stack. */
const STACK_COMMANDS = ["up", "preview", "refresh", "destroy", "outputs", "cancel"] as const;
/** Commands that read the engine only. */
const ENGINE_COMMANDS = ["watch", "status"] as const;
type Command = (typeof STACK_COMMANDS)[number] | (typeof ENGINE_COMMANDS)[number];

export const EXIT = { ok: 0, failed: 1, usage: 2, changes: 3 } as const;

const OPTIONS = {
  stack: { type: "string" },
  create: { type: "boolean", default: false },
  cwd: { type: "string" },
  program: { type: "string" },
  json: { type: "boolean", default: false },
  refresh: { type: "boolean", default: false },
  "expect-no-changes": { type: "boolean", default: false },
  "clear-pending-creates": { type: "boolean", default: false },
  kubernetes: { type: "string" },
  context: { type: "string" },
  help: { type: "boolean", default: false },
  version: { type: "boolean", default: false },
} as const;

/** Which options each kind of command takes (a flag given to a command that ignores it is a usage error). */
const ONLY_FOR: Record<string, { commands: readonly string[]; what: string }> = {
  stack: { commands: STACK_COMMANDS, what: "stack commands (up, preview, refresh, destroy, outputs, cancel)" },
  cwd: { commands: STACK_COMMANDS, what: "stack commands (up, preview, refresh, destroy, outputs, cancel)" },
  program: { commands: STACK_COMMANDS, what: "stack commands (up, preview, refresh, destroy, outputs, cancel)" },
  create: { commands: ["up"], what: "up only (a stack is created only by `reseat up --create` or `pulumi stack init`)" },
  refresh: { commands: ["up", "preview", "destroy"], what: "up, preview and destroy" },
  "expect-no-changes": { commands: ["preview"], what: "preview only" },
  "clear-pending-creates": { commands: ["up", "refresh"], what: "up and refresh" },
  kubernetes: { commands: ENGINE_COMMANDS, what: "watch and status" },
  context: { commands: ENGINE_COMMANDS, what: "watch and status (with --kubernetes)" },
};

/** What the command line asks for, once it is known to be well formed. */
export interface Invocation {
  command: Command | "help" | "version";
  json: boolean;
  stack?: string;
  create: boolean;
  cwd?: string;
  program?: string;
  refresh: boolean;
  expectNoChanges: boolean;
  clearPendingCreates: boolean;
  kubernetes?: string;
  context?: string;
}

export type Parsed = { ok: true; invocation: Invocation } | { ok: false; json: boolean; command: string | null; error: string };

/** The command line, checked without touching Pulumi or an engine (unit-tested). */
export function parseCommandLine(argv: string[]): Parsed {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
  } catch (error) {
    return { ok: false, json: argv.includes("--json"), command: argv.find((arg) => !arg.startsWith("-")) ?? null, error: (error as Error).message };
  }
  const { positionals, values } = parsed;
  const json = values.json;
  const first = positionals[0];
  const problem = (error: string): Parsed => ({ ok: false, json, command: first ?? null, error });
  const base = { json, create: values.create, refresh: values.refresh, expectNoChanges: values["expect-no-changes"], clearPendingCreates: values["clear-pending-creates"] };
  if (values.help) return { ok: true, invocation: { ...base, command: "help" } };
  if (values.version) return { ok: true, invocation: { ...base, command: "version" } };
  if (first === undefined) return problem("no command given");
  if (![...STACK_COMMANDS, ...ENGINE_COMMANDS].includes(first as Command)) return problem(`unknown command "${first}"`);
  const command = first as Command;
  if (positionals.length > 1) return problem(`unexpected argument "${positionals[1]}"`);
  for (const [option, rule] of Object.entries(ONLY_FOR)) {
    const value = values[option as keyof typeof values];
    if (value !== undefined && value !== false && !rule.commands.includes(command)) return problem(`--${option} applies to ${rule.what}`);
  }
  for (const option of ["stack", "cwd", "program", "kubernetes", "context"] as const) {
    if (values[option] !== undefined && !values[option]!.trim()) return problem(`--${option}: expected a value, got an empty string`);
  }
  if (values.context && !values.kubernetes) return problem("--context applies with --kubernetes only");
  return {
    ok: true,
    invocation: {
      ...base,
      command,
      ...(values.stack ? { stack: values.stack } : {}),
      ...(values.cwd ? { cwd: values.cwd } : {}),
      ...(values.program ? { program: values.program } : {}),
      ...(values.kubernetes ? { kubernetes: values.kubernetes } : {}),
      ...(values.context ? { context: values.context } : {}),
    },
  };
}

/** The version of the reseat package this CLI belongs to. */
export function packageVersion(): string {
  const manifest = JSON.parse(fs.readFileSync(path.resolve(__dirname, "..", "..", "..", "package.json"), "utf8")) as { version: string };
  return manifest.version;
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(argv);
  if (!parsed.ok) return usageError(parsed.json, parsed.command, parsed.error);
  const invocation = parsed.invocation;
  const { command, json } = invocation;
  if (command === "help") {
    if (json) writeDoc({ ok: true, command: "help", usage: USAGE });
    else console.log(USAGE);
    return EXIT.ok;
  }
  if (command === "version") {
    if (json) writeDoc({ ok: true, command: "version", version: packageVersion() });
    else console.log(`reseat ${packageVersion()}`);
    return EXIT.ok;
  }
  if (command === "watch" || command === "status") return runEngineCommand(invocation, command);
  return runStackCommand(invocation, command);
}

/** `watch` and `status`: the engine's PEs, no stack involved. */
async function runEngineCommand(invocation: Invocation, command: "watch" | "status"): Promise<number> {
  const { json } = invocation;
  const engine: EngineTarget | undefined = invocation.kubernetes ? { kind: "kubernetes", namespace: invocation.kubernetes, ...(invocation.context ? { context: invocation.context } : {}) } : undefined;
  try {
    const backend = (require("../backend/open") as typeof import("../backend/open")).openBackend(engine);
    if (command === "watch") return await runWatch(json, backend);
    const { controllerPresence, gatherStatus, formatStatusTable }: typeof import("../controller/status") = require("../controller/status");
    const [rows, controller] = await Promise.all([gatherStatus(backend), controllerPresence(backend)]);
    // Each row also says which controller watches it (`watchedBy`), the controller's lease in `controller`.
    const watchedBy = controller.watching ? controller.holder : null;
    if (json) {
      writeDoc({ ok: true, command, engine: engine ?? { kind: "docker" }, processingElements: rows.map((row) => ({ ...row, watchedBy })), controller });
    } else {
      console.log(`${formatStatusTable(rows)}\n\ncontroller: ${controller.watching ? `watching (${controller.holder}, renewed ${controller.renewedAt})` : controller.holder ? `not renewing (last: ${controller.holder} at ${controller.renewedAt})` : "none watching"}`);
    }
    return EXIT.ok;
  } catch (error) {
    const message = (error as Error).message;
    if (json) writeDoc({ ok: false, command, error: message });
    process.stderr.write(`\nreseat ${command} failed:\n${message}\n`);
    return EXIT.failed;
  }
}

/** up, preview, refresh, destroy, outputs, cancel: a Pulumi operation on the chosen stack. */
async function runStackCommand(invocation: Invocation, command: (typeof STACK_COMMANDS)[number]): Promise<number> {
  const { json } = invocation;
  const { changesIn, openProjectStack, ProgramErrors, stepCollector, UsageError }: StackModule = require("../automation/stack");
  const errors = new ProgramErrors();
  const progress = (text: string) => process.stderr.write(text);
  const { steps, errors: resourceErrors, onEvent } = stepCollector();
  let stackName: string | undefined;
  const report = (doc: Record<string, unknown>) => {
    if (json) writeDoc({ ok: doc.ok, command, ...(stackName ? { stack: stackName } : {}), ...doc });
  };
  try {
    const opened = await openProjectStack({ workDir: invocation.cwd, stackName: invocation.stack, create: invocation.create, programModule: invocation.program }, errors);
    const stack = opened.stack;
    stackName = stack.name;
    if (opened.created) progress(`reseat: created stack "${stack.name}"\n`);
    const common = { onOutput: progress, onEvent, refresh: invocation.refresh, color: "never" as const };
    switch (command) {
      case "up": {
        // After an interrupted run: drop Pulumi's pending creates first; reseat's create adopts what
        // actually runs (found by the PE's identity), so nothing is created twice.
        if (invocation.clearPendingCreates) await stack.refresh({ onOutput: progress, color: "never", clearPendingCreates: true });
        const result = await stack.up(common);
        const outputs = plain(result.outputs);
        report({ ok: true, created: opened.created, summary: result.summary.resourceChanges ?? {}, steps, outputs });
        if (!json) printOutputs(outputs);
        return EXIT.ok;
      }
      case "preview": {
        const result = await stack.preview(common);
        const changes = changesIn(result.changeSummary);
        if (invocation.expectNoChanges && Object.keys(changes).length) {
          // The drift gate: the preview itself worked, but the stack is not what is deployed.
          const error = `changes found where none were expected: ${Object.entries(changes).map(([op, n]) => `${op} ${n}`).join(", ")}`;
          report({ ok: false, error, changes, changeSummary: result.changeSummary, steps });
          process.stderr.write(`\nreseat preview: ${error}\n`);
          return EXIT.changes;
        }
        report({ ok: true, changeSummary: result.changeSummary, changes, steps });
        return EXIT.ok;
      }
      case "refresh": {
        const result = await stack.refresh({ onOutput: progress, onEvent, color: "never", clearPendingCreates: invocation.clearPendingCreates });
        report({ ok: true, summary: result.summary.resourceChanges ?? {}, steps });
        return EXIT.ok;
      }
      case "destroy": {
        const result = await stack.destroy({ onOutput: progress, onEvent, color: "never", refresh: invocation.refresh });
        report({ ok: true, summary: result.summary.resourceChanges ?? {}, steps });
        return EXIT.ok;
      }
      case "cancel": {
        // Removes the stack's lock left by a `reseat up` that was killed (only when it is really gone).
        await stack.cancel();
        report({ ok: true });
        return EXIT.ok;
      }
      case "outputs": {
        const outputs = plain(await stack.outputs());
        report({ ok: true, outputs });
        if (!json) printOutputs(outputs);
        return EXIT.ok;
      }
    }
  } catch (error) {
    // No stack chosen, no such stack, no program: refused before anything ran.
    if (error instanceof UsageError) return usageError(json, command, error.message, false);
    // Prefer the program's own error (it names the bad field) over the CLI's wrapper text.
    const message = errors.last?.message ?? (resourceErrors.length ? resourceErrors.join("\n") : extractPulumiError(error as Error));
    if (command === "up" && stackName && /was reverted: the new executable/.test(message)) {
      // A reverted replacement: make Pulumi's state describe the executable that serves again.
      await refreshAfterRevert({ workDir: invocation.cwd, stackName, programModule: invocation.program }, progress);
    }
    report({ ok: false, error: message });
    process.stderr.write(`\nreseat ${command} failed:\n${message}\n`);
    return EXIT.failed;
  }
}

async function refreshAfterRevert(options: import("../automation/stack").StackOptions, progress: (text: string) => void): Promise<void> {
  try {
    const { openStack }: StackModule = require("../automation/stack");
    const stack = await openStack(options);
    await stack.refresh({ onOutput: progress, color: "never" });
  } catch (error) {
    progress(`\n(refresh after the revert failed: ${(error as Error).message.split("\n")[0]}; run refresh yourself)\n`);
  }
}

function writeDoc(doc: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(doc, null, 2) + "\n");
}

/**
 * A usage error: the message (and, for a malformed command line, the usage) on stderr, and with --json
 * one JSON document on stdout.
 */
function usageError(json: boolean, command: string | null, message: string, printUsage = true): number {
  if (json) writeDoc({ ok: false, command, error: `usage: ${message}`, usage: USAGE });
  process.stderr.write(`reseat: ${message}\n${printUsage ? `${USAGE}\n` : ""}`);
  return EXIT.usage;
}

/**
 * Runs the failure controller until SIGINT/SIGTERM. With --json, one line per event as it happens (a
 * stream: `{at, kind, …}`), then, when stopped, the command's document `{ok, command: "watch", events}`.
 */
async function runWatch(json: boolean, backend: Backend): Promise<number> {
  const { watch }: typeof import("../controller/watch") = require("../controller/watch");
  let events = 0;
  const watcher = await watch({
    backend,
    onEvent: (event) => {
      events++;
      if (json) process.stdout.write(JSON.stringify(event) + "\n");
      else console.log(`${event.at} ${event.kind}${event.peId ? ` ${event.peId}` : ""}${event.generation ? ` generation ${event.generation}` : ""}${event.delayMs ? ` in ${event.delayMs}ms` : ""}${event.reason ? `: ${event.reason}` : ""}${event.error ? ` — ${event.error}` : ""}`);
    },
  });
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await watcher.stop();
  if (json) process.stdout.write(JSON.stringify({ ok: true, command: "watch", events }) + "\n");
  return EXIT.ok;
}

function plain(outputs: OutputMap): Record<string, unknown> {
  return Object.fromEntries(Object.entries(outputs).map(([key, output]) => [key, output.secret ? "[secret]" : output.value]));
}

function printOutputs(outputs: Record<string, unknown>): void {
  console.log(JSON.stringify(outputs, null, 2));
}

/** Without a resource's own diagnostic, the CLI's "error:" lines are the useful part of its output. */
function extractPulumiError(error: Error): string {
  const text = `${(error as { stderr?: string }).stderr ?? ""}\n${(error as { stdout?: string }).stdout ?? ""}\n${error.message}`;
  const lines = text.split("\n").filter((line) => /^\s*error:/.test(line));
  return lines.length ? [...new Set(lines.map((l) => l.trim()))].join("\n") : error.message;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    // exitCode, not exit(): a large --json document on a pipe must be written out in full first.
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
