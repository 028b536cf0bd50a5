// The official Kubernetes client, configured from the ambient kubeconfig (KUBECONFIG, else ~/.kube/config)
// and the context a PE's spec names. Only the namespace and context are ever recorded in Pulumi state.
import * as https from "node:https";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { KubernetesDeadlineError, apiClient } from "./apiDeadline";

export interface KubernetesClients {
  config: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  coordination: k8s.CoordinationV1Api;
  version: k8s.VersionApi;
  /** The context in use (for people reading errors and status). */
  context: string;
  server: string;
}

export function connect(context: string | undefined): KubernetesClients {
  const config = new k8s.KubeConfig();
  const defaultFile = path.join(os.homedir(), ".kube", "config");
  if (!process.env.KUBECONFIG && !fs.existsSync(defaultFile) && !process.env.KUBERNETES_SERVICE_HOST) {
    // The client would otherwise fall back to http://localhost:8080 and fail with an unrelated TLS message.
    throw new Error(
      `reseat: no kubeconfig for a PE with a kubernetes section: set KUBECONFIG (the local cluster's is printed by \`scripts/cluster.sh status\`) or create ${defaultFile}`,
    );
  }
  config.loadFromDefault();
  if (context) {
    if (!config.getContextObject(context)) {
      const known = config.getContexts().map((c) => c.name);
      throw new Error(
        `reseat: kubernetes.context "${context}" is not in the kubeconfig (${process.env.KUBECONFIG ?? "~/.kube/config"}; contexts: ${known.join(", ") || "none"})`,
      );
    }
    config.setCurrentContext(context);
  }
  const cluster = config.getCurrentCluster();
  if (!cluster)
    throw new Error(`reseat: no Kubernetes cluster configured: set KUBECONFIG (or ~/.kube/config) to reach the cluster of a PE with a kubernetes section`);
  return {
    config,
    // Every call of these clients has a deadline (apiDeadline.ts): a black-holed API server fails them.
    core: apiClient(config, k8s.CoreV1Api),
    coordination: apiClient(config, k8s.CoordinationV1Api),
    version: apiClient(config, k8s.VersionApi),
    context: config.getCurrentContext(),
    server: cluster.server,
  };
}

/** The API server's status code of a failed call (undefined for network errors). */
export function statusOf(error: unknown): number | undefined {
  if (error instanceof k8s.ApiException) return error.code;
  const code = (error as { code?: unknown })?.code;
  return typeof code === "number" ? code : undefined;
}

export function isNotFound(error: unknown): boolean {
  return statusOf(error) === 404;
}

export function isConflict(error: unknown): boolean {
  return statusOf(error) === 409;
}

/** undefined for 404, the value otherwise. */
export async function orUndefined<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** Request options that make a PATCH a JSON merge patch (the client defaults to JSON patch). */
export const MERGE_PATCH = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
export const JSON_PATCH = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch);

/** A short, readable message for an API error (the server's own message when there is one). */
export function apiMessage(error: unknown): string {
  if (error instanceof k8s.ApiException) {
    const body = error.body as unknown;
    const text = typeof body === "string" ? body : JSON.stringify(body);
    try {
      const parsed = JSON.parse(text) as { message?: string };
      if (parsed.message) return `${error.code}: ${parsed.message}`;
    } catch {
      // not JSON
    }
    return `${error.code}: ${text.slice(0, 500)}`;
  }
  return (error as Error)?.message ?? String(error);
}

/**
 * A GET of a raw API path (e.g. the pod proxy), with the kubeconfig's credentials. The generated client
 * escapes "/" inside proxy paths, so this goes through node:https with the same TLS and auth options.
 */
export async function rawGet(clients: KubernetesClients, apiPath: string, timeoutMs = 3000): Promise<{ status: number; body: string }> {
  const url = new URL(apiPath, clients.server);
  const options: https.RequestOptions = { method: "GET", headers: {} };
  await clients.config.applyToHTTPSOptions(options);
  const transport = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    // A deadline on the whole exchange (connection, headers, body), as every other API call has (apiDeadline.ts).
    const deadline = setTimeout(() => req.destroy(new KubernetesDeadlineError(clients.server, `GET ${apiPath}`, timeoutMs)), timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(deadline);
      reject(error);
    };
    const req = transport.request(url, options, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => {
        clearTimeout(deadline);
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on("error", fail);
    });
    req.on("error", fail);
    req.end();
  });
}
