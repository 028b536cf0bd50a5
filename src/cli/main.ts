#!/usr/bin/env node
// `reseat` — the non-interactive entry point for people and GitOps pipelines.
//   reseat up|preview|refresh|destroy|outputs [--stack local] [--cwd DIR] [--program FILE] [--json]
// With --json, stdout carries exactly one JSON document — usage errors included; Pulumi's progress
// goes to stderr. Exit codes: 0 ok, 1 failed, 2 usage error, 3 `preview --expect-no-changes` found changes.
import { parseArgs } from "node:util";
import type { OutputMap } from "@pulumi/pulumi/automation";
// Loaded when needed, so that usage errors answer at once (the Automation API takes a second to load).
type StackModule = typeof import("../automation/stack");
import type { Backend, EngineTarget } from "../backend/backend";

const USAGE = `usage:
  reseat <up|preview|refresh|destroy|outputs|cancel> [--stack NAME] [--cwd DIR] [--program FILE] [--json] [--refresh]
         [--clear-pending-creates]   (refresh/up after an interrupted run; see the README's recovery steps)
  reseat preview --expect-no-changes  exit 3 when the stack would change (a drift gate)
  reseat watch [--json]               the failure controller: reseats failed executables until stopped
  reseat status [--json]              the processing elements on this engine
  --cwd DIR       the project folder (Pulumi.yaml); default: the nearest one from here up
  --program FILE  the program module, relative to --cwd; default: Pulumi.yaml's main
  --kubernetes NAMESPACE [--context NAME]
                  watch and status: the PEs in that namespace of the cluster the ambient kubeconfig
                  (KUBECONFIG) reaches; default: the local Docker Engine (DOCKER_HOST)
exit codes: 0 ok, 1 failed, 2 usage error, 3 changes found by --expect-no-changes`;

const COMMANDS = new Set(["up", "preview", "refresh", "destroy", "outputs", "cancel", "watch", "status"]);

export const EXIT = { ok: 0, failed: 1, usage: 2, changes: 3 } as const;

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        stack: { type: "string", default: "local" },
        cwd: { type: "string" },
        program: { type: "string" },
        json: { type: "boolean", default: false },
        refresh: { type: "boolean", default: false },
        "expect-no-changes": { type: "boolean", default: false },
        "clear-pending-creates": { type: "boolean", default: false },
        kubernetes: { type: "string" },
        context: { type: "string" },
        help: { type: "boolean", default: false },
      },
    });
  } catch (error) {
    return usageError(argv.includes("--json"), argv.find((arg) => !arg.startsWith("-")), (error as Error).message);
  }
  const { positionals, values } = parsed;
  const command = positionals[0];
  const json = values.json ?? false;
  if (values.help) {
    if (json) process.stdout.write(JSON.stringify({ ok: true, command: command ?? null, usage: USAGE }, null, 2) + "\n");
    else console.log(USAGE);
    return EXIT.ok;
  }
  if (!command) return usageError(json, undefined, "no command given");
  if (!COMMANDS.has(command)) return usageError(json, command, `unknown command "${command}"`);
  if (positionals.length > 1) return usageError(json, command, `unexpected argument "${positionals[1]}"`);
  if (values["expect-no-changes"] && command !== "preview") return usageError(json, command, "--expect-no-changes applies to preview only");
  const { changesIn, openStack, ProgramErrors, stepCollector }: StackModule = require("../automation/stack");
  const errors = new ProgramErrors();
  const progress = (text: string) => process.stderr.write(text);
  const report = (doc: Record<string, unknown>) => {
    if (json) process.stdout.write(JSON.stringify(doc, null, 2) + "\n");
  };
  const engine: EngineTarget | undefined = values.kubernetes ? { kind: "kubernetes", namespace: values.kubernetes, ...(values.context ? { context: values.context } : {}) } : undefined;
  const openEngine = (): Backend => (require("../backend/open") as typeof import("../backend/open")).openBackend(engine);
  const { steps, errors: resourceErrors, onEvent } = stepCollector();
  try {
    if (command === "watch") return await runWatch(json, openEngine());
    if (command === "status") {
      const { controllerPresence, gatherStatus, formatStatusTable }: typeof import("../controller/status") = require("../controller/status");
      const backend = openEngine();
      const [rows, controller] = await Promise.all([gatherStatus(backend), controllerPresence(backend)]);
      // One row per PE (the shape scripts/tf.sh reads); each says which controller watches it.
      const watchedBy = controller.watching ? controller.holder : null;
      if (json) process.stdout.write(JSON.stringify(rows.map((row) => ({ ...row, watchedBy })), null, 2) + "\n");
      else console.log(`${formatStatusTable(rows)}\n\ncontroller: ${controller.watching ? `watching (${controller.holder}, renewed ${controller.renewedAt})` : controller.holder ? `not renewing (last: ${controller.holder} at ${controller.renewedAt})` : "none watching"}`);
      return 0;
    }
    const stack = await openStack({ workDir: values.cwd, stackName: values.stack, programModule: values.program }, errors);
    const common = { onOutput: progress, onEvent, refresh: values.refresh, color: "never" as const };
    switch (command) {
      case "up": {
        // After an interrupted run: drop Pulumi's pending creates first; reseat's create adopts what
        // actually runs (found by the PE's identity), so nothing is created twice.
        if (values["clear-pending-creates"]) await stack.refresh({ onOutput: progress, color: "never", clearPendingCreates: true });
        const result = await stack.up(common);
        const outputs = plain(result.outputs);
        report({ ok: true, command, summary: result.summary.resourceChanges ?? {}, steps, outputs });
        if (!json) printOutputs(outputs);
        return 0;
      }
      case "preview": {
        const result = await stack.preview(common);
        const changes = changesIn(result.changeSummary);
        if (values["expect-no-changes"] && Object.keys(changes).length) {
          // The drift gate: the preview itself worked, but the stack is not what is deployed.
          const error = `changes found where none were expected: ${Object.entries(changes).map(([op, n]) => `${op} ${n}`).join(", ")}`;
          report({ ok: false, command, error, changes, changeSummary: result.changeSummary, steps });
          process.stderr.write(`\nreseat preview: ${error}\n`);
          return EXIT.changes;
        }
        report({ ok: true, command, changeSummary: result.changeSummary, changes, steps });
        return 0;
      }
      case "refresh": {
        const result = await stack.refresh({ onOutput: progress, onEvent, color: "never", clearPendingCreates: values["clear-pending-creates"] });
        report({ ok: true, command, summary: result.summary.resourceChanges ?? {}, steps });
        return 0;
      }
      case "destroy": {
        const result = await stack.destroy({ onOutput: progress, onEvent, color: "never" });
        report({ ok: true, command, summary: result.summary.resourceChanges ?? {}, steps });
        return 0;
      }
      case "cancel": {
        // Removes the stack's lock left by a `reseat up` that was killed (only when it is really gone).
        await stack.cancel();
        report({ ok: true, command });
        return 0;
      }
      case "outputs": {
        const outputs = plain(await stack.outputs());
        report({ ok: true, command, outputs });
        if (!json) printOutputs(outputs);
        return 0;
      }
      default:
        return usageError(json, command, `unknown command "${command}"`);
    }
  } catch (error) {
    // Prefer the program's own error (it names the bad field) over the CLI's wrapper text.
    const message = errors.last?.message ?? (resourceErrors.length ? resourceErrors.join("\n") : extractPulumiError(error as Error));
    if (command === "up" && /was reverted: the new executable/.test(message)) {
      // A reverted replacement: make Pulumi's state describe the executable that serves again.
      await refreshAfterRevert(values.cwd, values.stack, values.program, progress);
    }
    report({ ok: false, command, error: message });
    process.stderr.write(`\nreseat ${command} failed:\n${message}\n`);
    return 1;
  }
}

async function refreshAfterRevert(cwd: string | undefined, stackName: string | undefined, program: string | undefined, progress: (text: string) => void): Promise<void> {
  try {
    const { openStack }: StackModule = require("../automation/stack");
    const stack = await openStack({ workDir: cwd, stackName, programModule: program });
    await stack.refresh({ onOutput: progress, color: "never" });
  } catch (error) {
    progress(`\n(refresh after the revert failed: ${(error as Error).message.split("\n")[0]}; run refresh yourself)\n`);
  }
}

/** A usage error: the usage on stderr, and with --json one JSON document on stdout. */
function usageError(json: boolean, command: string | undefined, message: string): number {
  if (json) process.stdout.write(JSON.stringify({ ok: false, command: command ?? null, error: `usage: ${message}`, usage: USAGE }, null, 2) + "\n");
  process.stderr.write(`reseat: ${message}\n${USAGE}\n`);
  return EXIT.usage;
}

/** Runs the failure controller until SIGINT/SIGTERM. */
async function runWatch(json: boolean, backend: Backend): Promise<number> {
  const { watch }: typeof import("../controller/watch") = require("../controller/watch");
  const watcher = await watch({
    backend,
    onEvent: (event) => {
      if (json) process.stdout.write(JSON.stringify(event) + "\n");
      else console.log(`${event.at} ${event.kind}${event.peId ? ` ${event.peId}` : ""}${event.generation ? ` generation ${event.generation}` : ""}${event.delayMs ? ` in ${event.delayMs}ms` : ""}${event.reason ? `: ${event.reason}` : ""}${event.error ? ` — ${event.error}` : ""}`);
    },
  });
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await watcher.stop();
  return 0;
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
