// Which stack and which program an operation runs, decided without Pulumi or an engine: the command line,
// the Pulumi CLI's stack precedence (--stack, PULUMI_STACK, the selected stack), and a program evaluated
// afresh for every operation in one process.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { chooseStack, freshLoader, missingStack, UsageError } from "../../../src/automation/stack";
import { parseCommandLine } from "../../../src/cli/main";

describe("parseCommandLine", () => {
  it("a stack command: no default stack (the stack comes from --stack, PULUMI_STACK or the selected stack)", () => {
    const parsed = parseCommandLine(["preview", "--json"]);
    expect(parsed).toMatchObject({ ok: true, invocation: { command: "preview", json: true, create: false } });
    expect(parsed.ok && parsed.invocation.stack).toBeUndefined();
  });

  it("up --stack NAME --create", () => {
    expect(parseCommandLine(["up", "--stack", "dev", "--create"])).toMatchObject({ ok: true, invocation: { command: "up", stack: "dev", create: true } });
  });

  it.each([
    [["preview", "--create"], "--create applies to up only"],
    [["destroy", "--create"], "--create applies to up only"],
    [["status", "--stack", "dev"], "--stack applies to stack commands"],
    [["watch", "--program", "x.js"], "--program applies to stack commands"],
    [["refresh", "--expect-no-changes"], "--expect-no-changes applies to preview only"],
    [["up", "--stack", " "], "--stack: expected a value, got an empty string"],
    [["status", "--context", "kind"], "--context applies with --kubernetes only"],
    [["up", "down"], 'unexpected argument "down"'],
    [[], "no command given"],
  ])("%j is a usage error: %s", (argv, error) => {
    expect(parseCommandLine(argv)).toMatchObject({ ok: false, error: expect.stringContaining(error) });
  });

  it("--version and --help need no command", () => {
    expect(parseCommandLine(["--version"])).toMatchObject({ ok: true, invocation: { command: "version" } });
    expect(parseCommandLine(["--help", "--json"])).toMatchObject({ ok: true, invocation: { command: "help", json: true } });
  });
});

describe("chooseStack: the Pulumi CLI's precedence", () => {
  it("--stack, else PULUMI_STACK, else the selected stack", () => {
    expect(chooseStack({ flag: "a", env: "b", selected: "c" })).toEqual({ name: "a", source: "--stack" });
    expect(chooseStack({ env: "b", selected: "c" })).toEqual({ name: "b", source: "PULUMI_STACK" });
    expect(chooseStack({ selected: "c" })).toEqual({ name: "c", source: "selected" });
  });

  it("none of them: a usage error saying how to choose one and how to create one", () => {
    expect(() => chooseStack({}, ["dev", "prod"])).toThrow(UsageError);
    expect(() => chooseStack({}, ["dev", "prod"])).toThrow(
      "no stack chosen: pass --stack NAME, set PULUMI_STACK, or select one with `pulumi stack select NAME`; this project's stacks: dev, prod. " +
        "A new stack is created by `reseat up --stack NAME --create` or `pulumi stack init NAME`.",
    );
    expect(() => chooseStack({})).toThrow("this project has no stacks yet");
  });

  it("a stack that does not exist is named with where the name came from, and how to create it", () => {
    const error = missingStack("dve", "--stack", "file://./.pulumi-state", ["dev"]);
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toBe(
      'no stack named "dve" (from --stack) in the backend file://./.pulumi-state; this project\'s stacks: dev. ' +
        "Nothing was created: to create it, run `reseat up --stack dve --create` or `pulumi stack init dve`.",
    );
  });
});

describe("freshLoader: one evaluation of the program per operation", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-fresh-"));
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  };
  // Each evaluation of a file appends its name here, as a program declaring resources would register them.
  const evaluations = (): string[] => ((globalThis as { __reseatEvaluations?: string[] }).__reseatEvaluations ??= []);
  const record = (name: string) => `(globalThis.__reseatEvaluations ??= []).push(${JSON.stringify(name)});\n`;

  it("a program declared at top level is evaluated again, with its own modules; packages under node_modules once", () => {
    write("top/node_modules/lib/index.js", record("lib") + "module.exports = { made: 0 };\n");
    write("top/helper.js", record("helper") + "module.exports = require('lib');\n");
    write("top/index.js", record("program") + "const lib = require('./helper'); lib.made++; exports.made = lib.made;\n");
    evaluations().length = 0;
    const load = freshLoader(path.join(dir, "top", "index.js"));
    const first = load() as { made: number };
    const second = load() as { made: number };
    expect(evaluations()).toEqual(["program", "helper", "lib", "program", "helper"]);
    expect([first.made, second.made]).toEqual([1, 2]);
    expect(second).not.toBe(first);
  });

  it("a program that threw while loading is loaded afresh next time", () => {
    write(
      "throws/index.js",
      record("throws") + "if ((globalThis.__reseatEvaluations.filter((n) => n === 'throws').length) === 1) throw new Error('bad spec');\nexports.ok = true;\n",
    );
    evaluations().length = 0;
    const load = freshLoader(path.join(dir, "throws", "index.js"));
    expect(() => load()).toThrow("bad spec");
    expect(load()).toEqual({ ok: true });
  });

  it("an ES module declared at top level cannot be evaluated twice in one process: refused, never an empty program", () => {
    write("esm/index.mjs", record("esm") + "export const made = 1;\n");
    const load = freshLoader(path.join(dir, "esm", "index.mjs"));
    expect(load()).toMatchObject({ made: 1 });
    expect(() => load()).toThrow(/cannot be evaluated again in this process \(an ES module is evaluated once\).*export the program as a function/);
  });

  it("an ES module exporting the program as a function is simply called again", () => {
    write("esm-fn/index.mjs", "export default async () => ({ made: 1 });\n");
    const load = freshLoader(path.join(dir, "esm-fn", "index.mjs"));
    const first = load() as { default: unknown };
    expect(typeof first.default).toBe("function");
    expect((load() as { default: unknown }).default).toBe(first.default);
  });
});
