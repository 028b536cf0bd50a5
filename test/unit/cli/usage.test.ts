// The reseat CLI's contract for pipelines, where no engine or Pulumi is involved: usage errors are one
// JSON document with --json and exit 2; --program resolves against --cwd. Runs the compiled CLI.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { projectFolder, resolveProgram, UsageError } from "../../../src/automation/stack";

const CHECKOUT = path.resolve(__dirname, "..", "..", "..");
const CLI = path.join(CHECKOUT, "dist", "src", "cli", "main.js");

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }));
  });
}

describe("reseat CLI usage errors", () => {
  it.each([
    [["--json"], "no command given"],
    [["frobnicate", "--json"], 'unknown command "frobnicate"'],
    [["up", "--json", "--no-such-flag"], "--no-such-flag"],
    [["up", "extra", "--json"], 'unexpected argument "extra"'],
    [["up", "--expect-no-changes", "--json"], "--expect-no-changes applies to preview only"],
    [["preview", "--stack", "--json"], "--stack"],
    [["preview", "--create", "--json"], "--create applies to up only"],
    [["status", "--stack", "dev", "--json"], "--stack applies to stack commands"],
    [["up", "--kubernetes", "ns", "--json"], "--kubernetes applies to watch and status"],
    [["up", "--stack", "", "--json"], "--stack: expected a value"],
  ])("%j: exit 2 and one JSON document naming the problem", async (args, expected) => {
    const { code, stdout, stderr } = await cli(...args);
    expect(code).toBe(2);
    const doc = JSON.parse(stdout) as { ok: boolean; error: string; usage: string };
    expect(doc.ok).toBe(false);
    expect(doc.error).toContain(expected);
    expect(doc.usage).toContain("reseat <up|preview|refresh|destroy|outputs|cancel>");
    expect(stderr).toContain(expected);
  });

  it("without --json: the usage on stderr, nothing on stdout", async () => {
    const { code, stdout, stderr } = await cli("frobnicate");
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain("usage:");
  });

  it("--version: the package's version; with --json, the envelope", async () => {
    const { version } = JSON.parse(fs.readFileSync(path.resolve(__dirname, "..", "..", "..", "package.json"), "utf8")) as { version: string };
    const plain = await cli("--version");
    expect(plain.code).toBe(0);
    expect(plain.stdout.trim()).toBe(`reseat ${version}`);
    const json = await cli("--version", "--json");
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ ok: true, command: "version", version });
  });

  it("--help --json: the usage as JSON, exit 0", async () => {
    const { code, stdout } = await cli("--help", "--json");
    expect(code).toBe(0);
    expect((JSON.parse(stdout) as { ok: boolean; usage: string }).usage).toContain("--expect-no-changes");
  });
});

describe("reseat CLI help (commander): the program's and each command's, with that command's flags only", () => {
  const flagsOf: Record<string, string[]> = {
    up: ["--stack <name>", "--cwd <dir>", "--program <file>", "--create", "--refresh", "--clear-pending-creates"],
    preview: ["--stack <name>", "--cwd <dir>", "--program <file>", "--refresh", "--expect-no-changes"],
    refresh: ["--stack <name>", "--cwd <dir>", "--program <file>", "--clear-pending-creates"],
    destroy: ["--stack <name>", "--cwd <dir>", "--program <file>", "--refresh"],
    outputs: ["--stack <name>", "--cwd <dir>", "--program <file>"],
    cancel: ["--stack <name>", "--cwd <dir>", "--program <file>"],
    watch: ["--kubernetes <namespace>", "--context <name>"],
    status: ["--kubernetes <namespace>", "--context <name>"],
  };
  const everyFlag = [...new Set(Object.values(flagsOf).flat())];

  it("--help: every command, the synopsis and the exit codes; exit 0, nothing on stderr", async () => {
    const { code, stdout, stderr } = await cli("--help");
    expect(code).toBe(0);
    expect(stderr).toBe("");
    expect(stdout).toContain("Usage: reseat <command> [options]");
    for (const command of Object.keys(flagsOf)) expect(stdout).toMatch(new RegExp(`^  ${command} \\[options\\]`, "m"));
    expect(stdout).toContain("Exit codes: 0 ok, 1 failed, 2 usage error, 3 changes found by --expect-no-changes");
  });

  it.each(Object.keys(flagsOf))("%s --help: its own flags (and the global ones), exit 0", async (command) => {
    const { code, stdout } = await cli(command, "--help");
    expect(code).toBe(0);
    expect(stdout).toContain(`Usage: reseat ${command} [options]`);
    for (const flag of everyFlag) {
      if (flagsOf[command]!.includes(flag)) expect(stdout).toContain(flag);
      else expect(stdout).not.toContain(flag);
    }
    expect(stdout).toContain("--json");
    // `help <command>` says the same.
    expect((await cli("help", command)).stdout).toBe(stdout);
  });

  it("an unknown flag: exit 2 naming it, on stderr with the usage; nothing on stdout", async () => {
    const { code, stdout, stderr } = await cli("status", "--no-such-flag");
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toMatch(/^reseat: usage: unknown option '--no-such-flag'\n/);
    expect(stderr).toContain("Usage: reseat <command> [options]");
  });

  it("a misspelt flag: exit 2, naming it and the flag meant", async () => {
    const { code, stderr } = await cli("up", "--stak", "dev");
    expect(code).toBe(2);
    expect(stderr).toContain("unknown option '--stak' (Did you mean --stack?)");
  });

  it("-V is --version", async () => {
    const { code, stdout } = await cli("-V");
    expect(code).toBe(0);
    expect(stdout.trim()).toMatch(/^reseat \d+\.\d+\.\d+/);
  });
});

describe("resolveProgram: the program plain `pulumi up` would run in the folder", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-program-"));
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  };

  it("--program is relative to --cwd, not to the shell's folder", () => {
    write("Pulumi.yaml", "name: p\nruntime: nodejs\n");
    expect(resolveProgram(dir, "lib/prog.js")).toBe(path.join(dir, "lib", "prog.js"));
  });

  it("Pulumi.yaml's main, else the folder's package, else the bundled program of the reseat installed there", () => {
    write("Pulumi.yaml", "name: p\nruntime: nodejs\n");
    // As `npm install <folder>` installs it: a link in node_modules.
    fs.mkdirSync(path.join(dir, "node_modules"), { recursive: true });
    fs.symlinkSync(CHECKOUT, path.join(dir, "node_modules", "reseat"));
    expect(resolveProgram(dir)).toBe(path.join(CHECKOUT, "dist", "stacks", "index.js"));
    write("index.js", "module.exports = async () => ({});\n");
    expect(resolveProgram(dir)).toBe(path.join(dir, "index.js"));
    write("Pulumi.yaml", "name: p\nruntime: nodejs\nmain: build/main.js\n");
    expect(resolveProgram(dir)).toBe(path.join(dir, "build", "main.js"));
  });
});

describe("the bundled program in a folder without reseat", () => {
  it("is refused, saying to install reseat there (its resources load reseat/provider/runtime from the project folder)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-bare-"));
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: p\nruntime: nodejs\n");
    expect(() => resolveProgram(dir)).toThrow(UsageError);
    expect(() => resolveProgram(dir)).toThrow(`Run \`npm install reseat\` in ${dir}, or name your program with --program.`);
  });

  it("the CLI answers that with exit 2 before running anything", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-bare-"));
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: p\nruntime: nodejs\n");
    const { code, stdout } = await cli("preview", "--cwd", dir, "--stack", "dev", "--json");
    expect(code).toBe(2);
    expect(JSON.parse(stdout)).toMatchObject({ ok: false, command: "preview", error: expect.stringContaining("npm install reseat") });
  });
});

describe("projectFolder: the project when --cwd is not given", () => {
  it("is the nearest folder with a Pulumi.yaml, from the working directory up", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-folder-"));
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: p\nruntime: nodejs\n");
    fs.mkdirSync(path.join(dir, "infra", "deep"), { recursive: true });
    expect(projectFolder(path.join(dir, "infra", "deep"))).toBe(dir);
  });
});
