// Issue 21.5: a deadline on every Kubernetes API call. The backend reaches the local cluster through a
// TCP proxy this test controls (127.0.0.1, the API server's certificate kept valid by tls-server-name).
// Black-holed (connections accepted, nothing forwarded either way), every backend call — ping, list,
// waitReady, stop, a watch's connect — rejects with KubernetesDeadlineError, and the controller's open
// watch is declared dead by its idle deadline; forwarding again, the controller reconnects and repairs
// the PE whose pod was deleted meanwhile. What is asserted is the error and the recovery, never a duration.
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubernetesBackend } from "../../src/backend/kubernetes/kubernetesBackend";
import { KubernetesDeadlineError } from "../../src/backend/kubernetes/apiDeadline";
import { WatchEvent, Watcher, watch } from "../../src/controller/watch";
import { reseat } from "../../src/replacement/reseat";
import { executableDesired } from "../../src/schema/desired";
import { parseProcessingElement } from "../../src/schema/processingElement";
import { KUBECONFIG, kubectl, pollFor } from "../support/kubernetes";
import { SESSION_PORT, loadImages, makeTestNamespace, podsOfPe, useCluster } from "../support/kubernetesPe";

const NAMESPACE = `reseat-it-kdl-${process.pid}`;
const PE = `kdl-${process.pid}`;
const IMAGE = "reseat-session-workload:v1";

/** A TCP proxy in front of the API server that can black-hole: accept, forward nothing, answer nothing. */
class ApiProxy {
  private readonly server: net.Server;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket; holed: boolean }>();
  blackHoled = false;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(target.port, target.host);
      const pair = { client, upstream, holed: this.blackHoled };
      this.pairs.add(pair);
      // Bytes are dropped while black-holed (on connections old and new): a silent network, not a reset.
      client.on("data", (chunk) => (this.blackHoled ? (pair.holed = true) : upstream.write(chunk)));
      upstream.on("data", (chunk) => (this.blackHoled ? (pair.holed = true) : client.write(chunk)));
      const close = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on("close", close).on("error", close);
      upstream.on("close", close).on("error", close);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  blackHole(): void {
    this.blackHoled = true;
    for (const pair of this.pairs) pair.holed = true;
  }

  /** Forwards again; connections that lost bytes meanwhile are torn (their TLS streams are broken): closed. */
  forward(): void {
    this.blackHoled = false;
    for (const pair of [...this.pairs]) if (pair.holed) pair.client.destroy();
  }

  async close(): Promise<void> {
    for (const pair of this.pairs) pair.client.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** The cluster's kubeconfig, pointed at the proxy, with the API server's certificate name kept valid. */
function proxiedKubeconfig(port: number): string {
  const text = fs.readFileSync(KUBECONFIG, "utf8");
  const server = /server: (https:\/\/[^\s]+)/.exec(text)?.[1];
  if (!server) throw new Error(`no server in ${KUBECONFIG}`);
  const file = path.join(os.tmpdir(), `reseat-kdl-${process.pid}.kubeconfig`);
  fs.writeFileSync(file, text.replace(`server: ${server}`, `server: https://127.0.0.1:${port}\n    tls-server-name: kubernetes`), { mode: 0o600 });
  return file;
}

const isDeadline = (result: PromiseSettledResult<unknown>) => result.status === "rejected" && result.reason instanceof KubernetesDeadlineError;

describe("Kubernetes API calls behind a black hole", () => {
  let cluster: Awaited<ReturnType<typeof makeTestNamespace>>;
  let proxy: ApiProxy;
  let kubeconfig: string;
  let watcher: Watcher | undefined;

  beforeAll(async () => {
    useCluster();
    await loadImages(IMAGE);
    cluster = await makeTestNamespace(NAMESPACE);
    const server = new URL(/server: (https:\/\/[^\s]+)/.exec(fs.readFileSync(KUBECONFIG, "utf8"))![1]!);
    proxy = new ApiProxy({ host: server.hostname, port: Number(server.port) });
    await proxy.listen();
    kubeconfig = proxiedKubeconfig(proxy.port);
  });
  afterAll(async () => {
    useCluster();
    proxy?.forward();
    await watcher?.stop();
    await proxy?.close();
    if (kubeconfig) fs.rmSync(kubeconfig, { force: true });
    await cluster?.remove();
  });

  it("calls fail with the deadline error while black-holed; the controller recovers and repairs when the API answers again", async () => {
    // The backends read KUBECONFIG: the proxy's (kubectl and the test's own observers use the cluster's file directly).
    process.env.KUBECONFIG = kubeconfig;
    const backend = new KubernetesBackend({ namespace: NAMESPACE });
    const spec = parseProcessingElement({
      peId: PE,
      image: IMAGE,
      env: { PORT: String(SESSION_PORT), LISTEN_HOST: "0.0.0.0" },
      ports: [{ container: SESSION_PORT }],
      persistentStore: { kind: "none" },
      stop: { graceSeconds: 5 },
      readiness: { httpGet: { port: SESSION_PORT, path: "/healthz" }, timeout: "90s" },
      kubernetes: { namespace: NAMESPACE, storageClassName: cluster.storageClass, size: "16Mi" },
    });
    const desired = { ...executableDesired(spec, IMAGE), owner: `it/kdl/${PE}` };
    await backend.claimVolume({ name: desired.volumeName, driver: cluster.storageClass, peId: PE, owner: desired.owner, size: "16Mi" });
    const first = await reseat(backend, desired, { holder: `test:${process.pid}` });
    expect(first.generation).toBe(1);

    const events: WatchEvent[] = [];
    watcher = await watch({ backend, onEvent: (e) => events.push(e), resyncMs: 2000, reconnectMs: 500, leaseMs: 6000 });
    await pollFor("the controller to watch", 60, async () => (events.some((e) => e.kind === "watching") ? true : undefined));

    proxy.blackHole();
    // A fresh backend (new connections) and the controller's (pooled ones): each call rejects with the deadline error.
    const fresh = new KubernetesBackend({ namespace: NAMESPACE });
    const watchEnd = fresh.watchExecutables(() => undefined).then((stream) => stream.ended);
    const results = await Promise.allSettled([
      fresh.ping(),
      fresh.listExecutables(),
      fresh.waitReady(first.executableName, desired),
      fresh.stop(first.executableName, { graceSeconds: 5 }),
      backend.listExecutables(),
      watchEnd.then((error) => Promise.reject(error)),
    ]);
    console.log(
      results
        .map((r) =>
          r.status === "rejected"
            ? `${(r.reason as Error).name}: ${(r.reason as Error).message} ${String((r.reason as { cause?: unknown }).cause ?? "")}`
            : "fulfilled",
        )
        .join("\n"),
    );
    expect(results.map((r) => (r.status === "rejected" ? (r.reason as Error).name : "fulfilled"))).toEqual(Array(6).fill("KubernetesDeadlineError"));
    expect(results.every(isDeadline)).toBe(true);

    // Meanwhile the PE's pod is deleted (straight at the API server): a failure for the controller to repair.
    await kubectl("delete", "pod", "-n", NAMESPACE, first.executableName, "--wait=true", "--timeout=120s");
    // The controller's open watch hears nothing: its idle deadline declares it dead.
    const disconnected = await pollFor("the controller's watch to be declared dead", 180, async () => events.find((e) => e.kind === "disconnected"));
    expect(disconnected.error).toMatch(/did not answer/);
    expect(events.some((e) => e.kind === "reseated")).toBe(false);

    proxy.forward();
    await pollFor("the controller to reconnect", 120, async () => (events.some((e) => e.kind === "reconnected") ? true : undefined));
    const reseated = await pollFor("the controller to repair the PE", 240, async () => events.find((e) => e.kind === "reseated" && e.peId === PE));
    expect(reseated.generation).toBe(2);
    const pods = await podsOfPe(NAMESPACE, PE);
    expect(pods.map((p) => p.metadata?.name)).toEqual([`reseat-${PE}-g2`]);
    console.log(`controller events: ${events.map((e) => `${e.kind}${e.error ? ` (${e.error})` : ""}`).join("; ")}`);
  });
});
