// A second Docker Engine owned by the test: its own data root, exec root, socket and pid file, no
// bridge, no iptables — it shares nothing with the machine's engine but the kernel. Observed through
// the `docker` CLI, independently of reseat's own Engine client.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runIn } from "./userProject";
import { keepingDefaultBridge } from "./defaultBridge";

export interface SecondEngine {
  /** DOCKER_HOST value that reaches it. */
  dockerHost: string;
  /** `docker <args>` against it. */
  docker(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Starts it; its --bridge=none deletes the machine engine's docker0 on start-up, which is put back (defaultBridge.ts). */
export function startSecondEngine(): Promise<SecondEngine> {
  return keepingDefaultBridge(startEngine);
}

async function startEngine(): Promise<SecondEngine> {
  // Short: containerd's socket lives under the exec root, and unix socket paths are limited to 107 bytes.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rsd-"));
  const socket = path.join(dir, "docker.sock");
  const dockerHost = `unix://${socket}`;
  const log = fs.openSync(path.join(dir, "dockerd.log"), "a");
  const child = spawn(
    "dockerd",
    [
      "--data-root",
      path.join(dir, "data"),
      "--exec-root",
      path.join(dir, "exec"),
      "--pidfile",
      path.join(dir, "dockerd.pid"),
      "-H",
      dockerHost,
      "--bridge=none",
      "--iptables=false",
      "--ip-masq=false",
    ],
    { stdio: ["ignore", log, log], detached: true },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const docker = async (...args: string[]) => {
    const ran = await runIn(dir, "docker", args, { ...process.env, DOCKER_HOST: dockerHost });
    if (ran.code !== 0) throw new Error(`docker ${args.join(" ")} on the second engine: ${ran.stderr.trim()}`);
    return ran.stdout;
  };
  const stop = async () => {
    if (child.exitCode === null && child.pid) {
      process.kill(child.pid, "SIGTERM");
      const timer = setTimeout(() => child.pid && process.kill(child.pid, "SIGKILL"), 30_000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await until("the second dockerd to answer", 60_000, async () => ((await docker("version", "--format", "{{.Server.Version}}")).trim() ? true : undefined));
  } catch (error) {
    const tail = fs.readFileSync(path.join(dir, "dockerd.log"), "utf8").split("\n").slice(-20).join("\n");
    await stop();
    throw new Error(`${(error as Error).message}\n--- dockerd.log ---\n${tail}`);
  }
  return { dockerHost, docker, stop };
}
