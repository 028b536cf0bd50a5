// One PE declared by a user's own project in Node.js, Python or YAML, each in a fresh folder outside the
// checkout (the system temp dir), as a user sets it up (the layer rules keep bench/ from importing
// test/support, so this is the benches' own small copy of what test/support/pluginPackage.ts does):
// - Node.js: `npm install <the checkout's npm pack tarball> @pulumi/pulumi@<the checkout's version>`, the
//   README's user program (`reseat/components`) — what the README tells a Node.js user to do;
// - Python and YAML: the plugin package (scripts/plugin.sh) and its `add-to-project`; Python with the
//   project's own virtualenv active (seeing the cached venv's `pulumi` SDK through a .pth file).
// All three declare the same PE spec from the stack config keys `image` and `port`.
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PROJECT_ROOT } from "../src/automation/stack";

export const LANGUAGES = ["node", "python", "yaml"] as const;
export type Language = (typeof LANGUAGES)[number];

const CACHE = process.env.RESEAT_CACHE ?? path.join(os.homedir(), ".cache", "reseat");
const PYTHON_VENV = path.join(CACHE, "python", "venv");

/** The PE every language's program declares: the demo workload on the host network, its own port, readiness over HTTP. */
const programs: Record<Language, (peId: string) => Record<string, string>> = {
  node: (peId) => ({
    "Pulumi.yaml": "name: bench-node\nruntime: nodejs\n",
    "index.js": `const pulumi = require("@pulumi/pulumi");
const { ProcessingElement } = require("reseat/components");

const config = new pulumi.Config();
const port = config.requireNumber("port");
const pe = new ProcessingElement("pe", {
  peId: "${peId}",
  image: config.require("image"),
  network: "host",
  env: { PORT: String(port) },
  stop: { graceSeconds: 5 },
  readiness: { httpGet: { port, path: "/healthz" }, timeout: "30s" },
});
exports.pe = pe.summary;
`,
  }),
  python: (peId) => ({
    "Pulumi.yaml": "name: bench-python\nruntime: python\n",
    "__main__.py": `import pulumi
import pulumi_reseat as reseat

config = pulumi.Config()
port = config.require_int("port")
pe = reseat.ProcessingElement(
    "pe",
    pe_id="${peId}",
    image=config.require("image"),
    network="host",
    env={"PORT": str(port)},
    stop={"grace_seconds": 5},
    readiness={"http_get": {"port": port, "path": "/healthz"}, "timeout": "30s"},
)
pulumi.export("pe", {"peId": pe.pe_id, "generation": pe.generation, "executableId": pe.executable_id})
`,
  }),
  yaml: (peId) => ({
    "Pulumi.yaml": `name: bench-yaml
runtime: yaml
config:
  image: { type: string }
  port: { type: integer }
resources:
  pe:
    type: reseat:index:ProcessingElement
    properties:
      peId: ${peId}
      image: \${image}
      network: host
      env:
        PORT: { fn::toJSON: "\${port}" }
      stop: { graceSeconds: 5 }
      readiness: { httpGet: { port: "\${port}", path: /healthz }, timeout: 30s }
outputs:
  pe:
    peId: \${pe.peId}
    generation: \${pe.generation}
    executableId: \${pe.executableId}
`,
  }),
};

/** Runs a command to its end; fails with its output unless it exits 0. Resolves to its stdout. */
export function run(cwd: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`${cmd} ${args.join(" ")} (in ${cwd}) exited ${code}:\n${(stdout + stderr).slice(-3000)}`)),
    );
  });
}

/** What a user installs once for all three projects: the checkout's npm pack tarball and the plugin package. */
export interface Installables {
  root: string;
  tarball: string;
  pluginPackage: string;
}

export async function buildInstallables(): Promise<Installables> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-bench-langs-"));
  const packed = (await run(PROJECT_ROOT, "npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", root])).trim().split("\n").at(-1)!.trim();
  const built = await run(PROJECT_ROOT, "bash", [path.join(PROJECT_ROOT, "scripts", "plugin.sh"), path.join(root, "plugin")]);
  return { root, tarball: path.join(root, packed), pluginPackage: built.trim().split("\n").at(-1)!.trim() };
}

/** The environment a user's shell has in the folder: its own file backend; for Python, its venv active. */
export function languageEnv(dir: string, language: Language): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PULUMI_BACKEND_URL: `file://${path.join(dir, ".pulumi-state")}` };
  if (language !== "python") return env;
  const venv = path.join(dir, "venv");
  return { ...env, VIRTUAL_ENV: venv, PATH: `${path.join(venv, "bin")}:${process.env.PATH}` };
}

/** A project folder (inside `installables.root`) declaring the PE, reseat installed the language's way, stack `stack` initialised. */
export async function languageProject(installables: Installables, language: Language, peId: string, stack: string): Promise<string> {
  const dir = path.join(installables.root, language);
  fs.mkdirSync(path.join(dir, ".pulumi-state"), { recursive: true });
  for (const [name, text] of Object.entries(programs[language](peId))) fs.writeFileSync(path.join(dir, name), text);
  const env = languageEnv(dir, language);
  if (language === "node") {
    const sdk = (JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, "node_modules", "@pulumi", "pulumi", "package.json"), "utf8")) as { version: string })
      .version;
    fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "bench-node", private: true }, null, 2));
    await run(dir, "npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", installables.tarball, `@pulumi/pulumi@${sdk}`], env);
  } else {
    if (language === "python") makeVenv(path.join(dir, "venv"));
    await run(dir, path.join(installables.pluginPackage, "add-to-project"), [], env);
  }
  await run(dir, "pulumi", ["stack", "init", stack, "--non-interactive"], env);
  return dir;
}

/** The project's own virtualenv, seeing the cached venv's packages (the `pulumi` SDK) through a .pth file. */
function makeVenv(venv: string): void {
  const purelib = (python: string) => execFileSync(python, ["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).toString().trim();
  execFileSync(path.join(PYTHON_VENV, "bin", "python3"), ["-m", "venv", "--without-pip", venv]);
  fs.writeFileSync(path.join(purelib(path.join(venv, "bin", "python3")), "reseat-bench-base.pth"), `${purelib(path.join(PYTHON_VENV, "bin", "python3"))}\n`);
}

/** Sets the stack's `image` and `port` config (the project-namespaced keys), as `pulumi config set` would. */
export function setStackConfig(dir: string, stack: string, values: { image: string; port: number }): void {
  const file = path.join(dir, `Pulumi.${stack}.yaml`);
  const project = /^name:\s*(\S+)/m.exec(fs.readFileSync(path.join(dir, "Pulumi.yaml"), "utf8"))![1]!;
  // Keep what `stack init` wrote (the passphrase's encryptionsalt); replace the config block.
  const kept = fs.existsSync(file) ? fs.readFileSync(file, "utf8").replace(/^config:\n(?:[ \t]+.*\n?)*/m, "") : "";
  const config = `config:\n  ${project}:image: ${JSON.stringify(values.image)}\n  ${project}:port: "${values.port}"\n`;
  fs.writeFileSync(file, kept.replace(/\n*$/, kept.trim() ? "\n" : "") + config);
}
