#!/usr/bin/env node
// `reseat` — the non-interactive entry point for people and GitOps pipelines.
//   reseat up|preview|refresh|destroy|outputs [--stack local] [--cwd DIR] [--program FILE] [--json]
// With --json, stdout carries exactly one JSON document; Pulumi's progress goes to stderr.
import { parseArgs } from "node:util";
import { OutputMap } from "@pulumi/pulumi/automation";
import { openStack, ProgramErrors, stepCollector } from "../automation/stack";

const USAGE = `usage: reseat <up|preview|refresh|destroy|outputs> [--stack NAME] [--cwd DIR] [--program FILE] [--json] [--refresh]`;

export async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      stack: { type: "string", default: "local" },
      cwd: { type: "string" },
      program: { type: "string" },
      json: { type: "boolean", default: false },
      refresh: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  const command = positionals[0];
  if (values.help || !command) {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  const json = values.json ?? false;
  const errors = new ProgramErrors();
  const progress = (text: string) => process.stderr.write(text);
  const report = (doc: Record<string, unknown>) => {
    if (json) process.stdout.write(JSON.stringify(doc, null, 2) + "\n");
  };
  try {
    const stack = await openStack({ workDir: values.cwd, stackName: values.stack, programModule: values.program }, errors);
    const { steps, onEvent } = stepCollector();
    const common = { onOutput: progress, onEvent, refresh: values.refresh, color: "never" as const };
    switch (command) {
      case "up": {
        const result = await stack.up(common);
        const outputs = plain(result.outputs);
        report({ ok: true, command, summary: result.summary.resourceChanges ?? {}, steps, outputs });
        if (!json) printOutputs(outputs);
        return 0;
      }
      case "preview": {
        const result = await stack.preview(common);
        report({ ok: true, command, changeSummary: result.changeSummary, steps });
        return 0;
      }
      case "refresh": {
        const result = await stack.refresh({ onOutput: progress, onEvent, color: "never" });
        report({ ok: true, command, summary: result.summary.resourceChanges ?? {}, steps });
        return 0;
      }
      case "destroy": {
        const result = await stack.destroy({ onOutput: progress, onEvent, color: "never" });
        report({ ok: true, command, summary: result.summary.resourceChanges ?? {}, steps });
        return 0;
      }
      case "outputs": {
        const outputs = plain(await stack.outputs());
        report({ ok: true, command, outputs });
        if (!json) printOutputs(outputs);
        return 0;
      }
      default:
        console.error(USAGE);
        return 2;
    }
  } catch (error) {
    // Prefer the program's own error (it names the bad field) over the CLI's wrapper text.
    const message = errors.last?.message ?? extractPulumiError(error as Error);
    report({ ok: false, command, error: message });
    process.stderr.write(`\nreseat ${command} failed:\n${message}\n`);
    return 1;
  }
}

function plain(outputs: OutputMap): Record<string, unknown> {
  return Object.fromEntries(Object.entries(outputs).map(([key, output]) => [key, output.secret ? "[secret]" : output.value]));
}

function printOutputs(outputs: Record<string, unknown>): void {
  console.log(JSON.stringify(outputs, null, 2));
}

/** The CLI's error lines ("error: …") are the useful part of a failed command's output. */
function extractPulumiError(error: Error): string {
  const text = `${(error as { stderr?: string }).stderr ?? ""}\n${(error as { stdout?: string }).stdout ?? ""}\n${error.message}`;
  const lines = text.split("\n").filter((line) => /error:|reseat:/.test(line));
  return lines.length ? [...new Set(lines.map((l) => l.trim()))].join("\n") : error.message;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
