// Issue 24: the README as a newcomer reads it. Every fenced block the README marks `<!-- runnable -->` runs
// as written, in order, in one bash session (so `cd` and variables carry from one block to the next), in a
// sandbox: this checkout's package files copied to <tmp>/reseat, the working directory there, so that the
// README's `../orders` lands in <tmp>. Then what those commands promise is checked: the tarball named from
// package.json, one @pulumi/pulumi, the pinned @pulumi/kubernetes matching the plugin the bootstrap builds.
// And sourcing scripts/bootstrap.sh leaves the caller's shell options as they were.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../support/harness";
import { mustRun, runIn, type Ran } from "../support/userProject";

/** The fenced blocks that follow `<!-- runnable -->` in the README, in order. */
function runnableBlocks(readme: string): string[] {
  return [...readme.matchAll(/<!-- runnable -->\s*```(?:sh|bash)\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { name: string; version: string; devDependencies: Record<string, string> };
const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");

/** The Kubernetes plugin version scripts/build-kubernetes.sh builds and installs. */
function pluginVersion(): string {
  const ran = spawnSync("bash", [path.join(ROOT, "scripts", "build-kubernetes.sh"), "print-env"], { encoding: "utf8" });
  const version = /^PK_PLUGIN_VERSION=(\S+)$/m.exec(ran.stdout)?.[1];
  if (!version) throw new Error(`build-kubernetes.sh print-env named no PK_PLUGIN_VERSION:\n${ran.stdout}${ran.stderr}`);
  return version;
}

describe("the README's runnable commands, run as written", () => {
  let sandbox: string;
  let ran: Ran;

  beforeAll(async () => {
    sandbox = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-readme-"));
    // The package's own files (what `npm pack` would take), so the README's `npm pack` runs on a copy.
    const listed = JSON.parse((await mustRun(ROOT, "npm", ["pack", "--dry-run", "--json", "--ignore-scripts"])).stdout) as { files: { path: string }[] }[];
    for (const { path: file } of listed[0]!.files) {
      fs.mkdirSync(path.dirname(path.join(sandbox, "reseat", file)), { recursive: true });
      fs.copyFileSync(path.join(ROOT, file), path.join(sandbox, "reseat", file));
    }
    const script = ["set -euo pipefail", ...runnableBlocks(readme)].join("\n");
    ran = await runIn(path.join(sandbox, "reseat"), "bash", ["-c", script], {
      ...process.env,
      // The copy has no sources to compile (`prepack`); npm answers from its cache where it can.
      npm_config_ignore_scripts: "true",
      npm_config_prefer_offline: "true",
      npm_config_audit: "false",
      npm_config_fund: "false",
      npm_config_loglevel: "error",
    });
  });
  afterAll(() => {
    if (sandbox) fs.rmSync(sandbox, { recursive: true, force: true });
  });

  it("marks the requirements check, the install and the Kubernetes pin as runnable", () => {
    const blocks = runnableBlocks(readme);
    expect(blocks.some((b) => b.includes("pulumi version") && b.includes("pulumi-language-nodejs") && b.includes("docker version"))).toBe(true);
    expect(blocks.some((b) => b.includes("npm pack") && b.includes("npm install"))).toBe(true);
    expect(blocks.some((b) => /npm install @pulumi\/kubernetes@\S+/.test(b))).toBe(true);
  });

  it("runs every runnable block to the end", () => {
    expect(ran.code, `stdout:\n${ran.stdout}\nstderr:\n${ran.stderr}`).toBe(0);
    expect(ran.stdout).toMatch(/^v(2[2-9]|[3-9]\d)\./m);
    expect(ran.stdout).toContain("Docker Engine ");
  });

  it("installs reseat from the tarball npm pack names from package.json, beside one @pulumi/pulumi", () => {
    const tarball = `${pkg.name}-${pkg.version}.tgz`;
    expect(fs.existsSync(path.join(sandbox, "reseat", tarball))).toBe(true);
    expect(readme).toContain(`# in this checkout: ${tarball}`);
    const orders = path.join(sandbox, "orders");
    const installed = JSON.parse(fs.readFileSync(path.join(orders, "node_modules", "reseat", "package.json"), "utf8")) as { version: string };
    expect(installed.version).toBe(pkg.version);
    expect(fs.existsSync(path.join(orders, "node_modules", "@pulumi", "pulumi", "package.json"))).toBe(true);
    expect(fs.existsSync(path.join(orders, "node_modules", "reseat", "node_modules", "@pulumi", "pulumi"))).toBe(false);
    const resolved = spawnSync(process.execPath, ["-e", 'require("reseat/components"); require("reseat/state"); console.log("ok")'], {
      cwd: orders,
      encoding: "utf8",
    });
    expect(resolved.stdout.trim(), resolved.stderr).toBe("ok");
  });

  it("pins @pulumi/kubernetes to the plugin version the bootstrap builds", () => {
    const plugin = pluginVersion();
    expect(pkg.devDependencies["@pulumi/kubernetes"]).toBe(plugin);
    const pinned = /npm install @pulumi\/kubernetes@(\S+)/.exec(runnableBlocks(readme).join("\n"))?.[1];
    expect(pinned).toBe(plugin);
    const installed = JSON.parse(fs.readFileSync(path.join(sandbox, "orders", "node_modules", "@pulumi", "kubernetes", "package.json"), "utf8")) as {
      version: string;
    };
    expect(installed.version).toBe(plugin);
  });
});

describe("scripts/bootstrap.sh, sourced", () => {
  it("leaves the caller's shell options as they were, and a later failing command does not end the shell", () => {
    const script = [
      "set +e +u +o pipefail",
      'before="$(set +o; shopt -p)"',
      'source scripts/bootstrap.sh demo || { echo "bootstrap failed"; exit 9; }',
      'after="$(set +o; shopt -p)"',
      '[ "$before" = "$after" ] && echo "options: unchanged" || { echo "options: changed"; diff <(echo "$before") <(echo "$after"); }',
      "false",
      'echo "still running after a failing command"',
      'command -v pulumi >/dev/null && echo "pulumi on PATH"',
    ].join("\n");
    const ran = spawnSync("bash", ["-c", script], { cwd: ROOT, encoding: "utf8", env: process.env });
    expect(ran.stdout, ran.stderr.slice(-3000)).toContain("options: unchanged");
    expect(ran.stdout).toContain("still running after a failing command");
    expect(ran.stdout).toContain("pulumi on PATH");
    expect(ran.status).toBe(0);
  });
});
