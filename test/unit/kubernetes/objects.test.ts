// The Kubernetes objects reseat makes, and how it reads pods back (pure functions; the cluster tests
// are in test/integration/kubernetes*.test.ts).
import { describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import { ExecutableDesired, LABELS } from "../../../src/backend/backend";
import { START_GATE, nodeOfVolume, observePod, podManifest, podState } from "../../../src/backend/kubernetes/objects";
import { ClaimChangeRefused, ClaimFields, planClaim } from "../../../src/plan/claimPlan";

const desired: ExecutableDesired = {
  peId: "orders-0",
  owner: "reseat/k8s/orders-0",
  imageRef: "reseat-session-workload:v1",
  imageId: "reseat-session-workload:v1",
  env: { PORT: "8080" },
  ports: [{ container: 8080, hostIp: "127.0.0.1", protocol: "tcp" }],
  network: "bridge",
  resources: { memoryMiB: 128, cpus: 0.5 },
  volumeName: "reseat-orders-0-state",
  mountPath: "/state",
  stop: { signal: "SIGTERM", graceSeconds: 7 },
  readiness: { httpGet: { port: 8080, path: "/healthz" }, timeout: 30_000 },
  commitIntervalMs: 1000,
  store: { kind: "postgres", host: "db", port: 5432, database: "d", user: "u", table: "t", keep: 5, password: "s3cret" },
  engine: { kind: "kubernetes", namespace: "shop" },
  kubernetes: { nodeSelector: { disktype: "ssd" } },
};

describe("the pod of a generation", () => {
  const pod = podManifest(desired, { name: "reseat-orders-0-g3", generation: 3, specHash: "abc" }, "node2");
  const container = pod.spec!.containers[0]!;
  const env = Object.fromEntries(container.env!.map((e) => [e.name, e.value]));

  it("is created gated (prepared, not started), never restarted by the kubelet, stopped within the spec's grace", () => {
    expect(pod.spec!.schedulingGates).toEqual([{ name: START_GATE }]);
    expect(pod.spec!.restartPolicy).toBe("Never");
    expect(pod.spec!.terminationGracePeriodSeconds).toBe(7);
  });

  it("is required on the node holding the claim, beside the spec's node selector", () => {
    expect(pod.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms[0]!.matchExpressions).toEqual([
      { key: "kubernetes.io/hostname", operator: "In", values: ["node2"] },
    ]);
    expect(pod.spec!.nodeSelector).toEqual({ disktype: "ssd" });
    expect(podManifest(desired, { name: "p", generation: 1, specHash: "x" }, undefined).spec!.affinity).toBeUndefined();
  });

  it("mounts the kept claim, the control file from the record and the password from a Secret; the generation is its fencing token", () => {
    expect(pod.spec!.volumes!.find((v) => v.name === "state")!.persistentVolumeClaim!.claimName).toBe("reseat-orders-0-state");
    expect(container.volumeMounts!.map((m) => m.mountPath)).toEqual(["/state", "/etc/reseat/control", "/etc/reseat/secrets"]);
    expect(env.RESEAT_GENERATION).toBe("3");
    expect(env.RESEAT_CONTROL_FILE).toBe("/etc/reseat/control/control.json");
    expect(env.RESEAT_CLAIM_GENERATION).toBe("1");
    expect(JSON.parse(env.RESEAT_STORE!)).toMatchObject({ kind: "postgres", passwordFile: "/etc/reseat/secrets/store-password" });
    // The password itself appears nowhere in the pod.
    expect(JSON.stringify(pod)).not.toContain("s3cret");
  });

  it("readiness becomes a readinessProbe; resources become limits; identity goes to labels and annotations", () => {
    expect(container.readinessProbe!.httpGet).toEqual({ port: 8080, path: "/healthz" });
    expect(container.resources!.limits).toEqual({ memory: "128Mi", cpu: "500m" });
    expect(pod.metadata!.labels).toMatchObject({ [LABELS.peId]: "orders-0", [LABELS.generation]: "3", [LABELS.role]: "executable" });
    expect(pod.metadata!.annotations![LABELS.owner]).toBe("reseat/k8s/orders-0");
  });

  it("the spec's user is the pod's securityContext (runAsUser, runAsGroup, fsGroup: its claims become the group's); none without one", () => {
    const asUser = podManifest({ ...desired, user: { uid: 2345, gid: 2346 } }, { name: "reseat-orders-0-g4", generation: 4, specHash: "def" }, "node2");
    expect(asUser.spec!.securityContext).toEqual({ runAsUser: 2345, runAsGroup: 2346, fsGroup: 2346, runAsNonRoot: true });
    expect(pod.spec!.securityContext).toBeUndefined();
  });

  it("a directory store is its own claim at /reseat-store", () => {
    const dir = podManifest(
      { ...desired, store: { kind: "directory", volume: "reseat-orders-0-state-store", keep: 5 } },
      { name: "p", generation: 1, specHash: "x" },
      undefined,
    );
    expect(dir.spec!.volumes!.find((v) => v.name === "store")!.persistentVolumeClaim!.claimName).toBe("reseat-orders-0-state-store");
  });
});

describe("reading pods back", () => {
  const base = (status: V1Pod["status"], extra: Partial<V1Pod> = {}): V1Pod => ({
    metadata: { name: "reseat-orders-0-g2", labels: { [LABELS.peId]: "orders-0", [LABELS.generation]: "2" }, annotations: { [LABELS.volume]: "v" } },
    spec: { containers: [], nodeName: "node1" },
    status,
    ...extra,
  });
  const running = {
    phase: "Running",
    containerStatuses: [{ name: "workload", state: { running: { startedAt: new Date(0) } }, image: "", imageID: "", ready: true, restartCount: 0 }],
  };

  it("running, created (gated), pending, terminating, ended and unknown", () => {
    expect(podState(base(running as V1Pod["status"]))).toEqual({ state: "running", running: true });
    expect(podState({ ...base({ phase: "Pending" }), spec: { containers: [], schedulingGates: [{ name: START_GATE }] } })).toEqual({
      state: "created",
      running: false,
    });
    expect(podState(base({ phase: "Pending" }))).toEqual({ state: "pending", running: false });
    expect(podState(base(running as V1Pod["status"], { metadata: { name: "x", deletionTimestamp: new Date() } }))).toEqual({
      state: "terminating",
      running: true,
    });
    expect(podState(base({ phase: "Failed" }))).toEqual({ state: "failed", running: false });
    // A node that stopped reporting may still run the pod: it counts as running (reseat waits).
    expect(podState(base({ phase: "Unknown" }))).toEqual({ state: "unknown", running: true });
  });

  it("as an observed executable: generation, volume and node", () => {
    expect(observePod(base(running as V1Pod["status"]))).toMatchObject({
      id: "reseat-orders-0-g2",
      peId: "orders-0",
      generation: 2,
      volumeName: "v",
      running: true,
      host: "node1",
    });
  });

  it("the claim's node comes from the bound volume's required node affinity", () => {
    expect(
      nodeOfVolume({
        spec: {
          nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: ["node2"] }] }] } },
        },
      }),
    ).toBe("node2");
    expect(nodeOfVolume({ spec: {} })).toBeUndefined();
    expect(nodeOfVolume(undefined)).toBeUndefined();
  });
});

describe("a claim is never replaced", () => {
  const claim: ClaimFields = {
    peId: "orders-0",
    role: "state-volume",
    name: "reseat-orders-0-state",
    namespace: "shop",
    storageClassName: "fast",
    size: "1Gi",
    owner: "p/s/orders-0",
    engine: { kind: "kubernetes", namespace: "shop" },
  };

  it("the same claim is no change", () => expect(planClaim(claim, { ...claim })).toEqual({ changes: false }));

  it("a new class, size, namespace or name is refused, naming the spec's fields", () => {
    expect(() => planClaim(claim, { ...claim, storageClassName: "slow" })).toThrow(ClaimChangeRefused);
    expect(() => planClaim(claim, { ...claim, size: "2Gi", storageClassName: "slow" })).toThrow(/kubernetes\.storageClassName and kubernetes\.size/);
    expect(() => planClaim(claim, { ...claim, namespace: "other", engine: { kind: "kubernetes", namespace: "other" } })).toThrow(/kubernetes\.namespace/);
    expect(() => planClaim(claim, { ...claim, name: "x" })).toThrow(/volume\.name: "reseat-orders-0-state" -> "x"/);
    expect(() => planClaim({ ...claim, role: "store-volume" }, { ...claim, role: "store-volume", size: "5Gi" })).toThrow(/kubernetes\.store\.size/);
  });
});
