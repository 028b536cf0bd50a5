// A private container registry owned by one test: distribution/v3's `registry` (built from Go
// modules by scripts/remote-engines.sh) on 127.0.0.1:<port>, plain HTTP (Docker allows that for
// 127.0.0.0/8), basic auth from an htpasswd file (bcrypt) with a user and a random password made here.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { runProcess } from "../harness";
import { Daemon, freePort, privateDir, removeTree, startDaemon, uniqueId } from "./daemon";

const ROOT = path.resolve(__dirname, "..", "..", "..");

export class PrivateRegistry {
  private constructor(
    readonly id: string,
    readonly dir: string,
    readonly port: number,
    readonly username: string,
    /** Random per registry: searching outputs for it finds any leak. */
    readonly password: string,
    private readonly daemon: Daemon,
  ) {}

  static async start(): Promise<PrivateRegistry> {
    const id = uniqueId("registry");
    const dir = privateDir(id);
    const file = (name: string) => path.join(dir, name);
    const username = "reseat-test";
    const password = randomBytes(18).toString("base64url");
    // -i: the password on stdin, not in argv.
    const entry = execFileSync("htpasswd", ["-niB", username], { input: password, stdio: ["pipe", "pipe", "ignore"] })
      .toString()
      .trim();
    fs.writeFileSync(file("htpasswd"), `${entry}\n`, { mode: 0o600 });
    const port = await freePort();
    fs.writeFileSync(
      file("config.yml"),
      [
        "version: 0.1",
        "log:",
        "  level: info",
        "storage:",
        "  filesystem:",
        `    rootdirectory: ${file("data")}`,
        "  delete:",
        "    enabled: true",
        "http:",
        `  addr: 127.0.0.1:${port}`,
        `  secret: ${randomBytes(16).toString("hex")}`,
        "auth:",
        "  htpasswd:",
        "    realm: reseat-test",
        `    path: ${file("htpasswd")}`,
        "",
      ].join("\n"),
    );
    const binary = execFileSync("bash", [path.join(ROOT, "scripts", "remote-engines.sh"), "registry-bin"])
      .toString()
      .trim();
    if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: run \`bash scripts/remote-engines.sh\` (scripts/bootstrap.sh does)`);
    const daemon = await startDaemon({
      name: id,
      command: binary,
      args: ["serve", file("config.yml")],
      // OpenTelemetry exporters are on by default in v3: nothing here to export to.
      env: { ...process.env, OTEL_TRACES_EXPORTER: "none", OTEL_METRICS_EXPORTER: "none", OTEL_LOGS_EXPORTER: "none" },
      logFile: file("registry.log"),
      // Up once /v2/ answers; 401 shows that authentication is enforced.
      ready: async () => (await fetch(`http://127.0.0.1:${port}/v2/`)).status === 401,
      readyTimeoutMs: 30_000,
      dirs: [dir],
    });
    return new PrivateRegistry(id, dir, port, username, password, daemon);
  }

  /** host:port, as image references and `registryAuth.server` name it. */
  get server(): string {
    return `127.0.0.1:${this.port}`;
  }

  /**
   * Pushes an image of the machine's main engine as <server>/<repository>, logging in with a private
   * Docker config (never the user's ~/.docker), and removes the local tag again, so that the engine has
   * to pull it. Returns the pushed reference.
   */
  async push(localRef: string, repository: string): Promise<string> {
    const ref = `${this.server}/${repository}`;
    const config = path.join(this.dir, "docker-config");
    fs.mkdirSync(config, { recursive: true, mode: 0o700 });
    const docker = async (args: string[], input?: string) => {
      const result = input === undefined ? await runProcess("docker", ["--config", config, ...args]) : await runWithInput(["--config", config, ...args], input);
      if (result.code !== 0) throw new Error(`docker ${args[0]} failed: ${result.stderr.trim()}`);
    };
    await docker(["login", "--username", this.username, "--password-stdin", this.server], this.password);
    try {
      await docker(["tag", localRef, ref]);
      await docker(["push", ref]);
      await docker(["image", "rm", ref]); // the tag only: the image keeps its other names
    } finally {
      await docker(["logout", this.server]).catch(() => undefined);
      fs.rmSync(config, { recursive: true, force: true });
    }
    return ref;
  }

  logTail(lines = 30): string {
    return this.daemon.tail(lines);
  }

  /** The registry's log (what it received, e.g. to check that a pull authenticated). */
  log(): string {
    return fs.readFileSync(this.daemon.logFile, "utf8");
  }

  async stop(): Promise<void> {
    await this.daemon.stop();
    removeTree(this.dir);
  }
}

function runWithInput(args: string[], input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("docker", args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input);
  });
}
