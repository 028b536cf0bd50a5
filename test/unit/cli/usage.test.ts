// The reseat CLI's contract for pipelines, where no engine or Pulumi is involved: usage errors are one
// JSON document with --json and exit 2; --program resolves against --cwd. Runs the compiled CLI.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_PROGRAM, projectFolder, resolveProgram } from "../../../src/automation/stack";

const CLI = path.resolve(__dirname, "..", "..", "..", "dist", "src", "cli", "main.js");

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

  it("--help --json: the usage as JSON, exit 0", async () => {
    const { code, stdout } = await cli("--help", "--json");
    expect(code).toBe(0);
    expect((JSON.parse(stdout) as { ok: boolean; usage: string }).usage).toContain("--expect-no-changes");
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

  it("Pulumi.yaml's main, else the folder's package, else reseat's bundled program", () => {
    write("Pulumi.yaml", "name: p\nruntime: nodejs\n");
    expect(resolveProgram(dir)).toBe(DEFAULT_PROGRAM);
    write("index.js", "module.exports = async () => ({});\n");
    expect(resolveProgram(dir)).toBe(path.join(dir, "index.js"));
    write("Pulumi.yaml", "name: p\nruntime: nodejs\nmain: build/main.js\n");
    expect(resolveProgram(dir)).toBe(path.join(dir, "build", "main.js"));
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
