// The deadline on Kubernetes API calls, against a server that accepts connections and never answers
// (a TCP black hole on 127.0.0.1): calls and watch connects reject with KubernetesDeadlineError. Short
// deadlines here; what is asserted is the error, never how long it took. And no code in src/ builds a
// Kubernetes client that bypasses the deadline.
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubernetesDeadlineError, apiClient, watchWithDeadlines } from "../../../src/backend/kubernetes/apiDeadline";
import { rawGet } from "../../../src/backend/kubernetes/client";

let blackHole: net.Server;
const sockets = new Set<net.Socket>();
let config: k8s.KubeConfig;

beforeAll(async () => {
  blackHole = net.createServer((socket) => {
    sockets.add(socket); // accepted, never answered
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => blackHole.listen(0, "127.0.0.1", resolve));
  const port = (blackHole.address() as net.AddressInfo).port;
  config = new k8s.KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: "hole", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "nobody" }],
    contexts: [{ name: "hole", cluster: "hole", user: "nobody" }],
    currentContext: "hole",
  });
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => blackHole.close(resolve));
});

describe("Kubernetes API deadlines", () => {
  it("a call to a server that never answers rejects with KubernetesDeadlineError", async () => {
    const core = apiClient(config, k8s.CoreV1Api, 200);
    const error = await core.readNamespacedPod({ name: "p", namespace: "ns" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KubernetesDeadlineError);
    expect((error as Error).message).toMatch(/did not answer GET \/api\/v1\/namespaces\/ns\/pods\/p within 200 ms/);
  });

  it("a server that sends the headers and then stalls the body is cut off too", async () => {
    const stalled = http.createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"kind":"Pod",'); // and nothing more
    });
    await new Promise<void>((resolve) => stalled.listen(0, "127.0.0.1", resolve));
    try {
      const stalledConfig = new k8s.KubeConfig();
      stalledConfig.loadFromOptions({
        clusters: [{ name: "s", server: `http://127.0.0.1:${(stalled.address() as net.AddressInfo).port}`, skipTLSVerify: true }],
        users: [{ name: "nobody" }],
        contexts: [{ name: "s", cluster: "s", user: "nobody" }],
        currentContext: "s",
      });
      await expect(apiClient(stalledConfig, k8s.CoreV1Api, 200).readNamespacedPod({ name: "p", namespace: "ns" })).rejects.toBeInstanceOf(
        KubernetesDeadlineError,
      );
    } finally {
      stalled.closeAllConnections();
      await new Promise((resolve) => stalled.close(resolve));
    }
  });

  it("every client kind the backend uses has it (version, coordination)", async () => {
    for (const call of [
      () => apiClient(config, k8s.VersionApi, 200).getCode(),
      () => apiClient(config, k8s.CoordinationV1Api, 200).readNamespacedLease({ name: "l", namespace: "ns" }),
    ]) {
      await expect(call()).rejects.toBeInstanceOf(KubernetesDeadlineError);
    }
  });

  it("the raw GET of the pod proxy (outside the generated client) has the deadline too", async () => {
    const clients = { config, server: config.getCurrentCluster()!.server } as Parameters<typeof rawGet>[0];
    await expect(rawGet(clients, "/api/v1/namespaces/ns/pods/p:8080/proxy/status", 200)).rejects.toBeInstanceOf(KubernetesDeadlineError);
  });

  it("a watch that cannot connect ends with KubernetesDeadlineError, once", async () => {
    const ends: unknown[] = [];
    let resolveEnded!: () => void;
    const ended = new Promise<void>((resolve) => (resolveEnded = resolve));
    await watchWithDeadlines(
      config,
      "/api/v1/namespaces/ns/pods",
      {},
      () => undefined,
      (error) => {
        ends.push(error);
        resolveEnded();
      },
      { connectMs: 200, idleMs: 60_000, serverTimeoutSeconds: 50 },
    );
    await ended;
    expect(ends).toHaveLength(1);
    expect(ends[0]).toBeInstanceOf(KubernetesDeadlineError);
  });

  it("no code in src/ builds a Kubernetes client or watch around the deadline", () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(file);
        else if (file.endsWith(".ts") && !file.endsWith(path.join("kubernetes", "apiDeadline.ts"))) {
          const text = fs.readFileSync(file, "utf8");
          if (/\.makeApiClient\(|new (k8s\.)?Watch\(|createConfiguration\(/.test(text)) offenders.push(path.relative(process.cwd(), file));
        }
      }
    };
    walk(path.resolve(__dirname, "../../../src"));
    expect(offenders).toEqual([]);
  });
});
