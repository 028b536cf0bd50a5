// A user's own Pulumi project outside the checkout, as a stranger would make one: reseat installed from
// the `npm pack` tarball, @pulumi/pulumi beside it (one copy), the program copied from the README, and
// the plain `pulumi` CLI (with the Node.js language host) run in its own process in that folder.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { ROOT } from "./harness";

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command in a folder to its end, collecting its output and how long it took. */
export function runIn(cwd: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Ran> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr, ms: Date.now() - started }));
  });
}

/** Fails with the command's own output unless it exited 0. */
export async function mustRun(cwd: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<Ran> {
  const ran = await runIn(cwd, cmd, args, env);
  if (ran.code !== 0) {
    throw new Error(
      `${cmd} ${args.join(" ")} (in ${cwd}) exited ${ran.code}\n--- stdout ---\n${ran.stdout.slice(-4000)}\n--- stderr ---\n${ran.stderr.slice(-4000)}`,
    );
  }
  return ran;
}

/** A fresh folder outside the checkout, so that nothing of the project can be found from it. */
export function outsideFolder(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `reseat-${name}-`));
}

/** `npm pack` of the checkout (already compiled by the bootstrap) into a folder of its own. */
export async function packReseat(): Promise<string> {
  const dest = outsideFolder("tarball");
  const ran = await mustRun(ROOT, "npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", dest]);
  return path.join(dest, ran.stdout.trim().split("\n").at(-1)!.trim());
}

/** The @pulumi/pulumi version the checkout uses: the one in npm's cache already. */
export function pulumiSdkVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", "@pulumi", "pulumi", "package.json"), "utf8")) as { version: string }).version;
}

const NPM_QUIET = ["--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"];

/** `npm install <tarball> @pulumi/pulumi` in an empty folder, as the README says. */
export async function installReseat(dir: string, tarball: string): Promise<Ran> {
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: path.basename(dir), private: true }, null, 2));
  return mustRun(dir, "npm", ["install", ...NPM_QUIET, tarball, `@pulumi/pulumi@${pulumiSdkVersion()}`]);
}

/** `npm install` from the folder's package.json and lock file (a fresh runner's checkout). */
export async function reinstall(dir: string): Promise<Ran> {
  return mustRun(dir, "npm", ["install", ...NPM_QUIET]);
}

/** A fenced block of the README that follows the marker comment `<!-- name -->`. */
export function readmeBlock(name: string): string {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  const match = new RegExp(`<!-- ${name} -->\\s*\`\`\`[a-z]*\\n([\\s\\S]*?)\`\`\``).exec(readme);
  if (!match?.[1]) throw new Error(`README.md has no block marked <!-- ${name} -->`);
  return match[1];
}

/** The environment plain `pulumi` runs with in a user folder: the test's, with the folder's own file backend. */
export function userEnv(dir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  fs.mkdirSync(path.join(dir, ".pulumi-state"), { recursive: true }); // as the README says: the CLI wants it to exist
  return { ...process.env, PULUMI_BACKEND_URL: `file://${path.join(dir, ".pulumi-state")}`, ...extra };
}

/** Plain `pulumi <args>` in the folder, non-interactive. */
export function pulumi(dir: string, args: string[], env: NodeJS.ProcessEnv = userEnv(dir)): Promise<Ran> {
  return runIn(dir, "pulumi", [...args, "--non-interactive"], env);
}

export async function mustPulumi(dir: string, args: string[], env: NodeJS.ProcessEnv = userEnv(dir)): Promise<Ran> {
  return mustRun(dir, "pulumi", [...args, "--non-interactive"], env);
}

/** `pulumi preview --json`: its steps and change summary. */
export async function previewJson(
  dir: string,
  stack: string,
  env?: NodeJS.ProcessEnv,
): Promise<{ steps: { op: string; urn: string; type?: string }[]; changeSummary: Record<string, number> }> {
  const ran = await mustPulumi(dir, ["preview", "--stack", stack, "--json"], env);
  const doc = JSON.parse(ran.stdout) as {
    steps?: { op: string; urn: string; newState?: { type: string }; oldState?: { type: string } }[];
    changeSummary?: Record<string, number>;
  };
  return {
    steps: (doc.steps ?? []).map((s) => ({ op: s.op, urn: s.urn, type: s.newState?.type ?? s.oldState?.type ?? s.urn.split("::").at(-2) })),
    changeSummary: doc.changeSummary ?? {},
  };
}

export async function stackOutputs(dir: string, stack: string, env?: NodeJS.ProcessEnv): Promise<Record<string, unknown>> {
  return JSON.parse((await mustPulumi(dir, ["stack", "output", "--stack", stack, "--json"], env)).stdout) as Record<string, unknown>;
}

export async function stackExport(dir: string, stack: string, env?: NodeJS.ProcessEnv): Promise<string> {
  return (await mustPulumi(dir, ["stack", "export", "--stack", stack], env)).stdout;
}

/** A TCP port nobody listens on right now (for the workload on the host network). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** Copies a project folder, leaving out node_modules (a runner's fresh checkout plus its state backend). */
export function copyProject(from: string, to: string): void {
  fs.cpSync(from, to, { recursive: true, filter: (src) => path.basename(src) !== "node_modules" || path.dirname(src) !== from });
}

/**
 * The demo workload's images by id: the tags are rebuilt whenever a checkout on this engine changes
 * the workload, and a test must not see its own "v1" turn into another image midway.
 */
export async function demoImageIds(): Promise<{ v1: string; v2: string }> {
  const id = async (tag: string) => (await mustRun(ROOT, "docker", ["image", "inspect", "--format", "{{.Id}}", tag])).stdout.trim();
  return { v1: await id("reseat-demo-workload:v1"), v2: await id("reseat-demo-workload:v2") };
}

/** What the tests read of a PE's stack outputs, and of the demo workload's /state. */
export interface PeSummary {
  peId: string;
  generation: number;
  executableId: string;
  volumeName: string;
}
export type StateView = { version: string; generation: number; lines: string[] };
