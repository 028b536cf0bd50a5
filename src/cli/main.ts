#!/usr/bin/env node
// `reseat` — the non-interactive entry point for people and GitOps pipelines.
//   reseat up|preview|refresh|destroy|outputs|cancel [--stack NAME] [--create] [--cwd DIR] [--program FILE] [--json]
// The command line is parsed by commander (per-command flags, `--help` for the program and for each
// command, `--version`); what commander reports is turned into reseat's answers here, so that every
// usage error is exit 2 with a message naming the flag. The stack follows the Pulumi CLI's rules
// (--stack, else PULUMI_STACK, else the selected stack) and is created only by `up --create`. With
// --json, stdout carries exactly one JSON document {ok, command, …} — usage errors and help included
// (`watch`: one line per event, then that document); Pulumi's progress goes to stderr. Exit codes: 0 ok,
// 1 failed, 2 usage error, 3 `preview --expect-no-changes` found changes.
import * as fs from "node:fs";
import * as path from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import type { OutputMap } from "@pulumi/pulumi/automation";
// Loaded when needed, so that usage errors answer at once (the Automation API takes a second to load).
type StackModule = typeof import("../automation/stack");
import type { Backend, EngineTarget } from "../backend/backend";
import { packageVersion } from "../util/packageVersion";

/** Commands that run a Pulumi operation on a stack. */
const STACK_COMMANDS = ["up", "preview", "refresh", "destroy", "outputs", "cancel"] as const;
/** Commands that read the engine only. */
const ENGINE_COMMANDS = ["watch", "status"] as const;
type StackCommand = (typeof STACK_COMMANDS)[number];
type CommandName = StackCommand | (typeof ENGINE_COMMANDS)[number];

export const EXIT = { ok: 0, failed: 1, usage: 2, changes: 3 } as const;

const STACK_COMMANDS_TEXT = "stack commands (up, preview, refresh, destroy, outputs, cancel)";

/**
 * Every flag of a command, with the commands that take it: a command's help lists its own, and a flag
 * given to a command that does not take it is a usage error saying which commands do.
 */
const FLAGS: Record<string, { flags: string; description: string; commands: readonly CommandName[]; what: string }> = {
  stack: {
    flags: "--stack <name>",
    description: "the stack; default: PULUMI_STACK, else the project's selected stack (`pulumi stack select`)",
    commands: STACK_COMMANDS,
    what: STACK_COMMANDS_TEXT,
  },
  cwd: {
    flags: "--cwd <dir>",
    description: "the project folder (Pulumi.yaml); default: the nearest one from here up",
    commands: STACK_COMMANDS,
    what: STACK_COMMANDS_TEXT,
  },
  program: {
    flags: "--program <file>",
    description: "the program module, relative to --cwd; default: Pulumi.yaml's main",
    commands: STACK_COMMANDS,
    what: STACK_COMMANDS_TEXT,
  },
  create: {
    flags: "--create",
    description: "create the stack when it does not exist (as `pulumi stack init`)",
    commands: ["up"],
    what: "up only (a stack is created only by `reseat up --create` or `pulumi stack init`)",
  },
  refresh: {
    flags: "--refresh",
    description: "refresh the stack from the engines first",
    commands: ["up", "preview", "destroy"],
    what: "up, preview and destroy",
  },
  "expect-no-changes": {
    flags: "--expect-no-changes",
    description: "exit 3 when the stack would change (a drift gate)",
    commands: ["preview"],
    what: "preview only",
  },
  "clear-pending-creates": {
    flags: "--clear-pending-creates",
    description: "after an interrupted run: drop Pulumi's pending creates first (steps: docs/failures.md)",
    commands: ["up", "refresh"],
    what: "up and refresh",
  },
  kubernetes: {
    flags: "--kubernetes <namespace>",
    description: "the PEs in that namespace of the cluster the ambient kubeconfig (KUBECONFIG) reaches; default: the local Docker Engine (DOCKER_HOST)",
    commands: ENGINE_COMMANDS,
    what: "watch and status",
  },
  context: {
    flags: "--context <name>",
    description: "the kubeconfig context (with --kubernetes)",
    commands: ENGINE_COMMANDS,
    what: "watch and status (with --kubernetes)",
  },
};

const COMMANDS: Record<CommandName, string> = {
  up: "deploy the stack: create, update or reseat its processing elements",
  preview: "what `up` would change (changes nothing on any engine)",
  refresh: "read what runs on the engines into the stack's state",
  destroy: "remove the stack's resources",
  outputs: "the stack's outputs",
  cancel: "remove the lock a killed `reseat up` left on the stack",
  watch: "the failure controller: reseats failed executables until stopped (SIGINT, SIGTERM)",
  status: "the processing elements on the engine",
};

/** After the program's own help: the synopsis and the rules every command shares. */
const SYNOPSIS = `
Synopsis:
  reseat <up|preview|refresh|destroy|outputs|cancel> [--stack NAME] [--cwd DIR] [--program FILE] [--json] [--refresh]
         [--clear-pending-creates]    (refresh/up after an interrupted run; steps: docs/failures.md)
  reseat up --create                  create the stack when it does not exist (as \`pulumi stack init\`)
  reseat preview --expect-no-changes  exit 3 when the stack would change (a drift gate)
  reseat watch [--json]               the failure controller: reseats failed executables until stopped
  reseat status [--json]              the processing elements on this engine
  reseat <command> --help             a command's flags
The stack: --stack, else PULUMI_STACK, else the project's selected stack; only \`up --create\` creates one.
Exit codes: 0 ok, 1 failed, 2 usage error, 3 changes found by --expect-no-changes`;

/** What the command line asks for, once it is known to be well formed. */
export interface Invocation {
  command: CommandName | "help" | "version";
  json: boolean;
  /** For "help": the help asked for (the program's, or one command's). */
  help?: string;
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

/** A flag's value must be a value: neither empty nor the next flag (commander takes the next word as it is). */
function valueOf(flag: string): (value: string) => string {
  return (value) => {
    if (!value.trim()) throw new InvalidArgumentError(`--${flag}: expected a value, got an empty string`);
    if (value.startsWith("--")) throw new InvalidArgumentError(`--${flag}: expected a value, got the flag "${value}"`);
    return value;
  };
}

/**
 * The commander program. Output goes to `output` (reseat decides what to print, and how with --json);
 * commander's exits become exceptions; `onCommand` receives a command's flags once they parsed.
 */
function buildProgram(
  output: { out: string; err: string },
  onCommand?: (command: CommandName, options: Record<string, unknown>, args: string[]) => void,
): Command {
  const program = new Command("reseat")
    .usage("<command> [options]")
    .description("Runs the project's Pulumi program (the one `pulumi up` runs) for people and pipelines, and watches the engine's processing elements.")
    .exitOverride()
    .configureOutput({ writeOut: (text) => (output.out += text), writeErr: (text) => (output.err += text) })
    .configureHelp({ showGlobalOptions: true })
    .option("--json", "exactly one JSON document on stdout, usage errors included; progress on stderr")
    .version(`reseat ${packageVersion()}`, "-V, --version", "the package's version")
    .helpOption("-h, --help", "this help (a command's: reseat <command> --help)")
    .addHelpText("after", SYNOPSIS);
  for (const name of [...STACK_COMMANDS, ...ENGINE_COMMANDS]) {
    const command = program
      .command(name)
      .description(COMMANDS[name])
      .helpOption("-h, --help", "this command's help")
      // Reported by reseat, naming the argument (commander's message does not).
      .allowExcessArguments(true)
      .action((options: Record<string, unknown>, self: Command) => onCommand?.(name, options, self.args));
    for (const [key, flag] of Object.entries(FLAGS)) {
      if (!flag.commands.includes(name)) continue;
      const option = new Option(flag.flags, flag.description);
      command.addOption(flag.flags.includes("<") ? option.argParser(valueOf(key)) : option);
    }
  }
  return program;
}

/** The program's help: what a usage error prints, and `reseat --help`. */
export function programHelp(): string {
  return `${buildProgram({ out: "", err: "" }).helpInformation()}${SYNOPSIS}\n`;
}

/** The command line, checked without touching Pulumi or an engine (unit-tested). */
export function parseCommandLine(argv: string[]): Parsed {
  const output = { out: "", err: "" };
  let chosen: { command: CommandName; options: Record<string, unknown>; args: string[] } | undefined;
  const program = buildProgram(output, (command, options, args) => (chosen = { command, options, args }));
  // --json decides how even a malformed command line is answered: looked for before parsing.
  const jsonAsked = argv.includes("--json");
  const firstWord = argv.find((arg) => !arg.startsWith("-")) ?? null;
  const problem = (error: string, command: string | null = firstWord): Parsed => ({ ok: false, json: jsonAsked, command, error });
  try {
    program.parse(argv, { from: "user" });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    switch (error.code) {
      case "commander.helpDisplayed":
      case "commander.help":
        // `--help`, `<command> --help`, `help [command]`: exit code 0. No command at all: commander's help with exit code 1.
        if (error.exitCode !== 0) return problem("no command given", null);
        return { ok: true, invocation: { ...defaults(jsonAsked), command: "help", help: output.out } };
      case "commander.version":
        return { ok: true, invocation: { ...defaults(jsonAsked), command: "version" } };
      case "commander.unknownCommand":
        return problem(`unknown command "${/'([^']*)'/.exec(error.message)?.[1] ?? firstWord}"`);
      case "commander.unknownOption": {
        const flag = /'([^']*)'/.exec(error.message)?.[1] ?? "";
        const known = FLAGS[flag.replace(/^--/, "")];
        return problem(known ? `${flag} applies to ${known.what}` : commanderMessage(error));
      }
      case "commander.optionMissingArgument": {
        const flag = /'(--[\w-]+)/.exec(error.message)?.[1] ?? "";
        return problem(`${flag}: expected a value`);
      }
      case "commander.invalidArgument":
        // Our own check's words (valueOf), without commander's preamble.
        return problem(/is invalid\. (.*)$/s.exec(error.message)?.[1] ?? commanderMessage(error));
      default:
        return problem(commanderMessage(error));
    }
  }
  if (!chosen) return problem("no command given", null);
  const { command, options, args } = chosen;
  const json = program.opts<{ json?: boolean }>().json === true;
  if (args.length) return { ok: false, json, command, error: `unexpected argument "${args[0]}"` };
  if (options.context !== undefined && options.kubernetes === undefined) return { ok: false, json, command, error: "--context applies with --kubernetes only" };
  const text = (key: string) => (typeof options[key] === "string" ? { [key]: options[key] as string } : {});
  return {
    ok: true,
    invocation: {
      ...defaults(json),
      command,
      create: options.create === true,
      refresh: options.refresh === true,
      expectNoChanges: options.expectNoChanges === true,
      clearPendingCreates: options.clearPendingCreates === true,
      ...text("stack"),
      ...text("cwd"),
      ...text("program"),
      ...text("kubernetes"),
      ...text("context"),
    },
  };
}

function defaults(json: boolean): Omit<Invocation, "command"> {
  return { json, create: false, refresh: false, expectNoChanges: false, clearPendingCreates: false };
}

/** commander's message without its "error: " prefix, on one line. */
function commanderMessage(error: CommanderError): string {
  return error.message.replace(/^error: /, "").replace(/\s*\n\s*/g, " ");
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(argv);
  if (!parsed.ok) return usageError(parsed.json, parsed.command, parsed.error);
  const invocation = parsed.invocation;
  const { command, json } = invocation;
  if (command === "help") {
    const help = invocation.help ?? programHelp();
    if (json) writeDoc({ ok: true, command: "help", usage: help });
    else process.stdout.write(help);
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
  const engine: EngineTarget | undefined = invocation.kubernetes
    ? { kind: "kubernetes", namespace: invocation.kubernetes, ...(invocation.context ? { context: invocation.context } : {}) }
    : undefined;
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
      console.log(
        `${formatStatusTable(rows)}\n\ncontroller: ${controller.watching ? `watching (${controller.holder}, renewed ${controller.renewedAt})` : controller.holder ? `not renewing (last: ${controller.holder} at ${controller.renewedAt})` : "none watching"}`,
      );
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
async function runStackCommand(invocation: Invocation, command: StackCommand): Promise<number> {
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
    const opened = await openProjectStack(
      { workDir: invocation.cwd, stackName: invocation.stack, create: invocation.create, programModule: invocation.program },
      errors,
    );
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
          const error = `changes found where none were expected: ${Object.entries(changes)
            .map(([op, n]) => `${op} ${n}`)
            .join(", ")}`;
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
  const usage = programHelp();
  if (json) writeDoc({ ok: false, command, error: `usage: ${message}`, usage });
  process.stderr.write(printUsage ? `reseat: usage: ${message}\n${usage}` : `reseat: ${message}\n`);
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
      else
        console.log(
          `${event.at} ${event.kind}${event.peId ? ` ${event.peId}` : ""}${event.generation ? ` generation ${event.generation}` : ""}${event.delayMs ? ` in ${event.delayMs}ms` : ""}${event.reason ? `: ${event.reason}` : ""}${event.error ? ` — ${event.error}` : ""}`,
        );
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
