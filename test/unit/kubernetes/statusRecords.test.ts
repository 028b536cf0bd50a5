// `reseat status` on Kubernetes for a fleet of N members, engine-free: the real KubernetesBackend against
// a stand-in API server on 127.0.0.1 that serves N members' pods, records and status endpoints and
// counts every request. The lists are the same for N = 10 and N = 100 (before readStatusRecords each
// member's workload status listed every pod: N² pods read); what is per member is one status read
// through the pod proxy and one lease read, STATUS_LANES at a time.
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABELS, desiredLabel, type ExecutableDesired } from "../../../src/backend/backend";
import { KubernetesBackend } from "../../../src/backend/kubernetes/kubernetesBackend";
import { WORKLOAD_CONTAINER, recordName } from "../../../src/backend/kubernetes/objects";
import { STATUS_LANES, gatherStatus } from "../../../src/controller/status";
import { CONTROLLER_RECORD, STATUS_RECORD } from "@reseat/state/contract";

const NAMESPACE = "shop";

function desiredOf(peId: string): ExecutableDesired {
  return {
    peId,
    owner: `proj/stack/${peId}`,
    imageRef: "reseat-session-workload:v1",
    imageId: "reseat-session-workload:v1",
    env: { PORT: "8080" },
    ports: [{ container: 8080, hostIp: "127.0.0.1", protocol: "tcp" }],
    network: "bridge",
    resources: {},
    volumeName: `reseat-${peId}-state`,
    mountPath: "/state",
    stop: { signal: "SIGTERM", graceSeconds: 7 },
    commitIntervalMs: 1000,
    store: { kind: "none" },
    engine: { kind: "kubernetes", namespace: NAMESPACE },
    kubernetes: { status: { port: 8080, path: "/status" } },
  };
}

/** The objects of a fleet's N members, as the API server would report them: a claim, a record and a running pod each. */
function fleetObjects(fleet: string, replicas: number) {
  const members = Array.from({ length: replicas }, (_, ordinal) => desiredOf(`${fleet}-${ordinal}`));
  const pods = members.map((d) => ({
    metadata: {
      name: `reseat-${d.peId}-g1`,
      namespace: NAMESPACE,
      labels: { [LABELS.role]: "executable", [LABELS.peId]: d.peId, [LABELS.generation]: "1" },
      annotations: { [LABELS.volume]: d.volumeName, [LABELS.desired]: desiredLabel(d) },
    },
    spec: { nodeName: "node1", containers: [{ name: WORKLOAD_CONTAINER, image: d.imageRef }] },
    status: {
      phase: "Running",
      containerStatuses: [{ name: WORKLOAD_CONTAINER, ready: true, restartCount: 0, image: d.imageRef, imageID: "", state: { running: {} } }],
    },
  }));
  const records = members.map((d, ordinal) => ({
    metadata: {
      name: recordName(d.volumeName),
      namespace: NAMESPACE,
      labels: { [LABELS.role]: "record", [LABELS.peId]: d.peId },
      annotations: { [LABELS.volume]: d.volumeName },
    },
    // Every third member was repaired once by the controller.
    data:
      ordinal % 3 === 0
        ? {
            "controller.json": CONTROLLER_RECORD.encode({
              restarts: 1,
              consecutiveFailures: 1,
              lastFailureAt: null,
              lastFailure: null,
              lastReseatAt: null,
              state: "ok",
            }),
          }
        : {},
  }));
  const claims = members.map((d) => ({
    metadata: {
      name: d.volumeName,
      namespace: NAMESPACE,
      labels: { [LABELS.role]: "state-volume", [LABELS.peId]: d.peId },
      annotations: { [LABELS.owner]: d.owner },
    },
    spec: { accessModes: ["ReadWriteOnce"] },
  }));
  const statusOf = (peId: string) =>
    STATUS_RECORD.encode({
      peId,
      generation: 1,
      phase: "serving",
      resumedFrom: "empty",
      resumedSeq: 0,
      seq: 7,
      commitIntervalMs: 1000,
      lastCommit: { seq: 5, at: "2020-01-01T00:00:00.000Z", bytes: 10, sha256: "0".repeat(64), generation: 1 },
      lastCommitError: null,
      lastCommitAttemptAt: null,
      restoreFailed: null,
      updatedAt: new Date().toISOString(),
    });
  return { pods, records, claims, statusOf };
}

/** A stand-in API server for one fleet at a time (one status read per member); counts requests by kind and the most in flight at once. */
class StandInApiServer {
  objects = fleetObjects("none", 0);
  requests: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private heldStatusReads: (() => void)[] = [];
  private statusReadsAnswered = 0;
  private server = http.createServer((req, res) => void this.answer(req, res));

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  serve(fleet: string, replicas: number): void {
    this.objects = fleetObjects(fleet, replicas);
    this.requests = [];
    this.maxInFlight = 0;
    this.statusReadsAnswered = 0;
  }

  private async answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    // Let requests made in parallel overlap here.
    await new Promise((resolve) => setImmediate(resolve));
    const url = new URL(req.url ?? "/", "http://stand-in");
    const base = `/api/v1/namespaces/${NAMESPACE}`;
    const json = (status: number, body: unknown) => {
      this.inFlight--;
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    const list = (kind: string, items: unknown[]) => {
      this.requests.push(`list ${kind}`);
      json(200, { apiVersion: "v1", kind: `${kind}List`, metadata: {}, items });
    };
    const proxy = new RegExp(`^${base}/pods/([^/:]+):8080/proxy/status$`).exec(url.pathname);
    if (url.pathname === `${base}/pods`) return list("Pod", this.objects.pods);
    if (url.pathname === `${base}/configmaps`) return list("ConfigMap", this.objects.records);
    if (url.pathname === `${base}/persistentvolumeclaims`) return list("PersistentVolumeClaim", this.objects.claims);
    if (proxy) {
      this.requests.push("proxy status");
      const peId = /^reseat-(.+)-g\d+$/.exec(proxy[1]!)![1]!;
      // Held until STATUS_LANES of them wait at once (fewer at the end): proof that status asks in
      // parallel; more than that in flight shows in maxInFlight.
      this.heldStatusReads.push(() => {
        this.inFlight--;
        res.writeHead(200, { "content-type": "application/json" }).end(this.objects.statusOf(peId));
      });
      const remaining = this.objects.pods.length - this.statusReadsAnswered;
      if (this.heldStatusReads.length >= Math.min(STATUS_LANES, remaining)) {
        this.statusReadsAnswered += this.heldStatusReads.length;
        for (const release of this.heldStatusReads.splice(0)) release();
      }
      return;
    }
    this.requests.push(url.pathname.includes("/leases/") ? "read Lease" : `other ${req.method} ${url.pathname}`);
    json(404, { apiVersion: "v1", kind: "Status", status: "Failure", reason: "NotFound", code: 404, message: "not found" });
  }
}

describe("reseat status on Kubernetes, N fleet members", () => {
  const server = new StandInApiServer();
  const previousKubeconfig = process.env.KUBECONFIG;
  let dir: string;

  beforeAll(async () => {
    const address = await server.start();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-stand-in-"));
    const kubeconfig = {
      apiVersion: "v1",
      kind: "Config",
      // Plain HTTP on 127.0.0.1: the client takes it only with TLS verification off.
      clusters: [{ name: "stand-in", cluster: { server: address, "insecure-skip-tls-verify": true } }],
      users: [{ name: "nobody", user: {} }],
      contexts: [{ name: "stand-in", context: { cluster: "stand-in", user: "nobody" } }],
      "current-context": "stand-in",
    };
    fs.writeFileSync(path.join(dir, "kubeconfig"), JSON.stringify(kubeconfig));
    process.env.KUBECONFIG = path.join(dir, "kubeconfig");
  });
  afterAll(async () => {
    if (previousKubeconfig === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = previousKubeconfig;
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function statusOfFleet(fleet: string, replicas: number) {
    server.serve(fleet, replicas);
    const rows = await gatherStatus(new KubernetesBackend({ namespace: NAMESPACE }));
    const counts: Record<string, number> = {};
    for (const request of server.requests) counts[request] = (counts[request] ?? 0) + 1;
    return { rows, counts, maxInFlight: server.maxInFlight };
  }

  it("N = 10 and N = 100: the same lists; one status and one lease read per member, at most STATUS_LANES in flight", async () => {
    const ten = await statusOfFleet("small", 10);
    const hundred = await statusOfFleet("large", 100);
    // The executables (pods and the records wanting them), the claims, then the bulk read (pods and records): five lists.
    const lists = { "list Pod": 2, "list ConfigMap": 2, "list PersistentVolumeClaim": 1 };
    expect(ten.counts).toEqual({ ...lists, "proxy status": 10, "read Lease": 10 });
    expect(hundred.counts).toEqual({ ...lists, "proxy status": 100, "read Lease": 100 });
    expect(hundred.maxInFlight).toBe(STATUS_LANES);

    expect(hundred.rows).toHaveLength(100);
    const member7 = hundred.rows.find((r) => r.peId === "large-7")!;
    expect(member7).toMatchObject({ group: "large", generation: 1, state: "running", volume: "reseat-large-7-state", restarts: 0, recordErrors: [] });
    expect(member7.lastCommit).toEqual({ seq: 5, at: "2020-01-01T00:00:00.000Z", bytes: 10 });
    // Two writes wait since the last commit: the lag is its age.
    expect(member7.commitLagMs).toBeGreaterThan(Date.parse("2020-01-02T00:00:00.000Z") - Date.parse("2020-01-01T00:00:00.000Z"));
    expect(hundred.rows.find((r) => r.peId === "large-9")!.restarts).toBe(1);
  });
});
