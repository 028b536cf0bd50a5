// Helpers for tests against the local Kubernetes cluster (scripts/cluster.sh): its kubeconfig, a kubectl
// bound to it, and bounded polling of the API server.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ROOT, runProcess, type ProcessResult } from "./harness";

export const CLUSTER_SH = path.join(ROOT, "scripts", "cluster.sh");
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
