// Helpers for tests against the local Kubernetes cluster (scripts/cluster.sh): its kubeconfig, a kubectl
// bound to it, and bounded polling of the API server.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { ROOT, runProcess, type ProcessResult } from "./harness";

/** RESEAT_CLUSTER_SH (with RESEAT_KUBECONFIG): a second cluster's script, e.g. one tried beside the default. */
export const CLUSTER_SH = process.env.RESEAT_CLUSTER_SH ?? path.join(ROOT, "scripts", "cluster.sh");
const CACHE = process.env.RESEAT_CACHE ?? path.join(os.homedir(), ".cache", "reseat");
export const KUBECONFIG = process.env.RESEAT_KUBECONFIG ?? path.join(CACHE, "k8s", "cluster", "admin.kubeconfig");
/** The kubectl scripts/cluster.sh links beside the Pulumi CLI (matches the server's version). */
const KUBECTL = fs.existsSync(path.join(CACHE, "bin", "kubectl")) ? path.join(CACHE, "bin", "kubectl") : "kubectl";

/** The environment a Pulumi program needs to reach the local cluster (the ambient kubeconfig). */
export function clusterEnv(): NodeJS.ProcessEnv {
  return { ...process.env, KUBECONFIG };
}

export function clusterScript(...args: string[]): Promise<ProcessResult> {
  return runProcess("bash", [CLUSTER_SH, ...args]);
}

export async function kubectl(...args: string[]): Promise<string> {
  const result = await runProcess(KUBECTL, ["--kubeconfig", KUBECONFIG, ...args]);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${result.code}): ${result.stderr.trim()}`);
  return result.stdout;
}

export async function kubectlJson<T>(...args: string[]): Promise<T> {
  return JSON.parse(await kubectl(...args, "-o", "json")) as T;
}

/** Polls `check` until it returns a value (not undefined), for at most `seconds`. */
export async function pollFor<T>(what: string, seconds: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${seconds}s${lastError ? ` (last error: ${String(lastError)})` : ""}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

export interface PodJson {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
  spec: { nodeName?: string };
  status: { phase?: string; conditions?: { type: string; status: string }[] };
}

export function podReady(pod: PodJson): boolean {
  return pod.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/**
 * A service of this host (listening on 127.0.0.1:`port`, e.g. the test PostgreSQL) made reachable from pods:
 * the cluster's nodes are in network namespaces of their own and cannot reach the host's 127.0.0.1, so a
 * forwarder listens in the cluster's hub namespace (on the address `cluster.sh status` names) and passes each
 * connection through a unix socket to this process, which connects it to 127.0.0.1:`port`.
 */
export async function forwardToCluster(port: number): Promise<{ host: string; port: number; close: () => Promise<void> }> {
  const status = await clusterScript("status");
  const hub = /^hub: netns (\S+) address (\S+)$/m.exec(status.stdout);
  if (!hub) throw new Error(`scripts/cluster.sh status names no hub namespace (is the cluster up?):\n${status.stdout}${status.stderr}`);
  const [netns, host] = [hub[1]!, hub[2]!];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-forward-"));
  const socketPath = path.join(dir, "forward.sock");
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => s.destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => server.listen(socketPath, resolve).once("error", reject));
  // Port 0: the kernel picks a free one in the hub; socat reports it once listening (-d -d).
  const socat = spawn(
    "nsenter",
    [`--net=/run/netns/${netns}`, "--", "socat", "-d", "-d", `TCP-LISTEN:0,bind=${host},reuseaddr,fork`, `UNIX-CONNECT:${socketPath}`],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  const listening = await new Promise<number>((resolve, reject) => {
    let stderr = "";
    socat.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      const m = /listening on .*:(\d+)\s*$/m.exec(stderr);
      if (m) resolve(Number(m[1]));
    });
    socat.once("exit", (code) => reject(new Error(`socat in ${netns} exited (${code}) before listening: ${stderr}`)));
  });
  return {
    host,
    port: listening,
    close: async () => {
      const exited = new Promise<void>((resolve) => (socat.exitCode !== null ? resolve() : socat.once("exit", () => resolve())));
      socat.kill("SIGTERM");
      await exited;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
