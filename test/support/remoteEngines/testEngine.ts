// A second Docker Engine owned by one test: its own data root, exec root, pidfile and unix socket,
// optionally a TLS-verified tcp://127.0.0.1:<port> listener, and no networking of its own
// (--bridge=none, no iptables/masquerading) so the machine's main engine and its networks are untouched.
// Containers on it can use `network: "host"` or `"none"`. There is no registry here, so images are
// copied from the main engine (`docker save | docker load`).
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { runProcess, ProcessResult } from "../harness";
import { makeTlsFiles, TlsFiles } from "./certificates";
import { Daemon, freePort, privateDir, removeTree, startDaemon, uniqueId } from "./daemon";
import { keepingDefaultBridge } from "../defaultBridge";

export interface TestEngineOptions {
  /** Listen on tcp://127.0.0.1:<port> with --tlsverify and certificates made for this engine. */
  tls?: boolean;
}

export class TestEngine {
  readonly id: string;
  /** The test's files: data root, logs, certificates. */
  readonly dir: string;
  /** Short (unix socket paths are limited to 108 bytes): sockets, pidfile, containerd state. */
  readonly execRoot: string;
  readonly socket: string;
  /** The engine's host name (`docker info` Name): unique, unlike this machine's. */
  readonly name: string;
  readonly tls?: TlsFiles;
  tcpPort?: number;
  private daemon?: Daemon;

  private constructor(options: TestEngineOptions) {
    this.id = uniqueId("engine");
    this.dir = privateDir(this.id);
    this.execRoot = `/run/reseat-${this.id}`;
    this.socket = path.join(this.execRoot, "docker.sock");
    this.name = `reseat-${this.id}`;
    if (options.tls) this.tls = makeTlsFiles(path.join(this.dir, "tls"), `reseat ${this.id} CA`);
  }

  /** Starts a new engine and waits until it answers. */
  static async start(options: TestEngineOptions = {}): Promise<TestEngine> {
    const engine = new TestEngine(options);
    if (engine.tls) engine.tcpPort = await freePort();
    await engine.start();
    return engine;
  }

  /** unix:///…/docker.sock */
  get unixHost(): string {
    return `unix://${this.socket}`;
  }

  /** tcp://127.0.0.1:<port> (TLS-verified); only for engines started with `tls`. */
  get tcpHost(): string {
    if (!this.tcpPort) throw new Error(`test engine ${this.id} has no tcp listener (start it with { tls: true })`);
    return `tcp://127.0.0.1:${this.tcpPort}`;
  }

  get running(): boolean {
    return this.daemon?.running ?? false;
  }

  /** (Re)starts dockerd on the same data root: containers, volumes and images survive a stop/start. */
  async start(): Promise<void> {
    if (this.running) return;
    fs.mkdirSync(this.execRoot, { recursive: true, mode: 0o700 });
    const configFile = path.join(this.dir, "daemon.json");
    // Never the machine's /etc/docker/daemon.json; an identity key of its own (20.10 derives the
    // engine ID, what reseat records as the engine's identity, from /etc/docker/key.json otherwise).
    fs.writeFileSync(configFile, JSON.stringify({ "deprecated-key-path": path.join(this.dir, "key.json") }) + "\n");
    const args = [
      `--data-root=${path.join(this.dir, "data")}`,
      `--exec-root=${this.execRoot}`,
      `--pidfile=${path.join(this.execRoot, "docker.pid")}`,
      `--config-file=${configFile}`,
      `--host=${this.unixHost}`,
      "--bridge=none",
      "--iptables=false",
      "--ip-masq=false",
      "--userland-proxy=false",
      // Even if it shares a containerd with another engine, its containers live in its own namespaces.
      `--containerd-namespace=reseat-${this.id}`,
      `--containerd-plugins-namespace=reseat-${this.id}-plugins`,
    ];
    if (this.tls && this.tcpPort) {
      args.push(
        `--host=tcp://127.0.0.1:${this.tcpPort}`,
        "--tlsverify",
        `--tlscacert=${this.tls.caFile}`,
        `--tlscert=${this.tls.serverCertFile}`,
        `--tlskey=${this.tls.serverKeyFile}`,
      );
    }
    // --bridge=none deletes the machine engine's docker0 on start-up: put back (defaultBridge.ts).
    this.daemon = await keepingDefaultBridge(() =>
      startDaemon({
        name: this.id,
        // In a UTS namespace of its own, so that the engine reports its own name (its `docker info`
        // Name, what a PE's `host` output shows) instead of this machine's.
        command: "unshare",
        args: ["--uts", "--", "sh", "-c", 'hostname "$0" && exec dockerd "$@"', this.name, ...args],
        runningAs: "dockerd",
        logFile: path.join(this.dir, "dockerd.log"),
        ready: () => ping(this.socket),
        readyTimeoutMs: 90_000,
        dirs: [this.dir, this.execRoot],
      }),
    );
  }

  /** Stops dockerd (SIGTERM: it stops its containers and its containerd) and waits for it to exit. */
  async stop(): Promise<void> {
    await this.daemon?.stop("SIGTERM", 90_000);
  }

  /** Stops the engine and removes everything it had (data root, exec root, certificates). */
  async destroy(): Promise<void> {
    if (this.running) {
      // Containers first, so that dockerd's shutdown has nothing to wait for.
      const ids = (await this.docker("ps", "-aq")).stdout.split(/\s+/).filter(Boolean);
      if (ids.length) await this.docker("rm", "-f", ...ids);
    }
    await this.stop();
    removeTree(this.execRoot);
    removeTree(this.dir);
  }

  /** Runs the docker CLI against this engine (over its unix socket). */
  docker(...args: string[]): Promise<ProcessResult> {
    return runProcess("docker", ["--host", this.unixHost, ...args]);
  }

  /** Copies images from the machine's main engine into this one. */
  async loadImages(refs: string[]): Promise<void> {
    const quoted = refs.map((ref) => `'${ref.replace(/'/g, "'\\''")}'`).join(" ");
    const result = await runProcess("bash", ["-c", `set -o pipefail; docker save ${quoted} | docker --host '${this.unixHost}' load -q`]);
    if (result.code !== 0) throw new Error(`loading ${refs.join(", ")} into test engine ${this.id} failed: ${result.stderr}`);
  }

  logTail(lines = 30): string {
    return this.daemon?.tail(lines) ?? "(not started)";
  }
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: "/_ping", timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
  });
}

/** Runs a docker CLI command and throws with its stderr when it fails. */
export async function mustRun(result: Promise<ProcessResult>, what: string): Promise<string> {
  const done = await result;
  if (done.code !== 0) throw new Error(`${what} failed (${done.code}): ${done.stderr.trim()}`);
  return done.stdout;
}
