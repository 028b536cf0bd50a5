// reseat as a plugin package, as a platform team hands it to a Python or YAML user: the package folder
// built by scripts/plugin.sh (outside the checkout), a fresh project folder with nothing of the checkout
// but that package, `add-to-project` run there, and the plain `pulumi` CLI with the language's own host.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ROOT } from "./harness";
import { mustRun, outsideFolder, userEnv } from "./userProject";

const CACHE = process.env.RESEAT_CACHE ?? path.join(os.homedir(), ".cache", "reseat");
/** The Python the tests' programs run with: the venv scripts/python-venv.sh makes (the `pulumi` SDK from PyPI). */
export const PYTHON_VENV = path.join(CACHE, "python", "venv");

/** Builds the package folder from this checkout (compiled by the bootstrap) into a folder outside it (with --tarball, the tarball beside it). */
export async function buildPluginPackage(...flags: "--tarball"[]): Promise<string> {
  const out = outsideFolder("plugin");
  const built = await mustRun(ROOT, "bash", [path.join(ROOT, "scripts", "plugin.sh"), out, ...flags]);
  return built.stdout.trim().split("\n").at(-1)!.trim();
}

/**
 * The project's own virtualenv, as a Python user has one: made in the folder, seeing the cached venv's
 * packages (the `pulumi` SDK) through a .pth file, so that the SDK add-to-project installs lands in
 * the project, not in the shared cache.
 */
function projectVenv(dir: string): string {
  const venv = path.join(dir, "venv");
  if (!fs.existsSync(venv)) {
    execFileSync(path.join(PYTHON_VENV, "bin", "python3"), ["-m", "venv", "--without-pip", venv]);
    const base = execFileSync(path.join(PYTHON_VENV, "bin", "python3"), ["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
      .toString()
      .trim();
    const own = execFileSync(path.join(venv, "bin", "python3"), ["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
      .toString()
      .trim();
    fs.writeFileSync(path.join(own, "reseat-test-base.pth"), `${base}\n`);
  }
  return venv;
}

/** The environment a user's shell has: the folder's file backend; for Python, the project's venv active (VIRTUAL_ENV, its bin first). */
export function languageEnv(dir: string, language: "python" | "yaml", extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  if (language === "yaml") return userEnv(dir, extra);
  const venv = projectVenv(dir);
  return userEnv(dir, { VIRTUAL_ENV: venv, PATH: `${path.join(venv, "bin")}:${process.env.PATH}`, ...extra });
}

/** A fresh project folder (outside the checkout) with the package added: returns the folder. */
export async function projectWithPackage(pkg: string, language: "python" | "yaml", files: Record<string, string>): Promise<string> {
  const dir = outsideFolder(`${language}-user`);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  await mustRun(dir, path.join(pkg, "add-to-project"), [], languageEnv(dir, language));
  return dir;
}

/** The session workload's images by id (their tags are rebuilt when the workload changes). */
export async function sessionImageIds(): Promise<{ v1: string; v2: string }> {
  const id = async (tag: string) => (await mustRun(ROOT, "docker", ["image", "inspect", "--format", "{{.Id}}", tag])).stdout.trim();
  return { v1: await id("reseat-session-workload:v1"), v2: await id("reseat-session-workload:v2") };
}

/** Writes sessions s0 … s<count-1>, one at a time, each acknowledged (durable on the volume) before the next: how many were. */
export async function putSessions(baseUrl: string, count: number): Promise<number> {
  let acknowledged = 0;
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${baseUrl}/sessions/s${i}`, { method: "PUT", body: JSON.stringify({ n: i }) });
    if (res.ok && ((await res.json()) as { ok?: boolean }).ok) acknowledged++;
  }
  return acknowledged;
}

/** The sessions putSessions(count) writes. */
export function expectedSessions(count: number): Record<string, { n: number }> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`s${i}`, { n: i }]));
}

/** The sessions the workload serves now. */
export async function sessionsOf(baseUrl: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${baseUrl}/sessions`);
  if (!res.ok) throw new Error(`GET ${baseUrl}/sessions -> ${res.status}`);
  return ((await res.json()) as { sessions: Record<string, unknown> }).sessions;
}

/** The session workload's version (its image's WORKLOAD_VERSION). */
export async function workloadVersion(baseUrl: string): Promise<string> {
  const res = await fetch(`${baseUrl}/healthz`);
  if (!res.ok) throw new Error(`GET ${baseUrl}/healthz -> ${res.status}`);
  return ((await res.json()) as { version: string }).version;
}
