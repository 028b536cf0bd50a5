// The Kubernetes side of the standby hand-over, engine-free: which pods on a claim count, where a standby goes,
// the claims and specs refused for it, and the pod's env and readinessProbe (the cluster tests are in
// test/integration/kubernetesStandby.test.ts).
import { describe, expect, it } from "vitest";
import type { V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import { ExecutableDesired, LABELS, desiredLabel } from "../../../src/backend/backend";
import { SERVING_CONDITION, awaitsServingMark, podManifest, podState } from "../../../src/backend/kubernetes/objects";
import { assertClaimAdmitsStandby, nodeOfRunningPod, runningPodsOnClaim, statusEndpointOf, statusProxyPath } from "../../../src/backend/kubernetes/standby";
import { problemsOf } from "../schema/problems";

const desired: ExecutableDesired = {
  peId: "orders-0",
  owner: "reseat/k8s/orders-0",
  imageRef: "reseat-session-workload:v1",
  imageId: "reseat-session-workload:v1",
  env: { PORT: "8080" },
  ports: [{ container: 8080, hostIp: "127.0.0.1", protocol: "tcp" }],
  network: "bridge",
  resources: {},
  volumeName: "reseat-orders-0-state",
  mountPath: "/state",
  stop: { signal: "SIGTERM", graceSeconds: 7 },
  readiness: { httpGet: { port: 8080, path: "/healthz" }, timeout: 30_000 },
  commitIntervalMs: 1000,
  store: { kind: "none" },
  handover: "standby",
  engine: { kind: "kubernetes", namespace: "shop" },
  kubernetes: { status: { port: 8080, path: "/status" } },
};

/** A pod of generation `generation` as the API server reports it: running, terminating, or ended. */
function pod(generation: number, how: "running" | "terminating" | "exited" | "gated", node = "node1", volumeName = desired.volumeName): V1Pod {
  return {
    metadata: {
      name: `reseat-orders-0-g${generation}`,
      labels: { [LABELS.generation]: String(generation), [LABELS.peId]: "orders-0" },
      annotations: { [LABELS.volume]: volumeName, [LABELS.desired]: desiredLabel(desired) },
      ...(how === "terminating" ? { deletionTimestamp: new Date() } : {}),
    },
    spec: {
      nodeName: how === "gated" ? undefined : node,
      ...(how === "gated" ? { schedulingGates: [{ name: "reseat.io/start" }] } : {}),
      containers: [],
      volumes: [{ name: "state", persistentVolumeClaim: { claimName: volumeName } }],
    },
    status: {
      phase: how === "exited" ? "Failed" : how === "gated" ? "Pending" : "Running",
      containerStatuses:
        how === "gated"
          ? []
          : [
              {
                name: "workload",
                image: "",
                imageID: "",
                ready: false,
                restartCount: 0,
                state: how === "exited" ? { terminated: { exitCode: 1 } } : { running: { startedAt: new Date() } },
              },
            ],
    },
  };
}

describe("the pods on a claim during a standby hand-over", () => {
  it("the running pods on the claim, newest generation first: a terminating, an ended, a gated pod and another claim's pod do not count", () => {
    const pods = [pod(3, "running"), pod(5, "terminating"), pod(4, "running"), pod(6, "exited"), pod(7, "gated"), pod(8, "running", "node1", "other-state")];
    expect(runningPodsOnClaim(pods, desired.volumeName).map((p) => p.metadata!.name)).toEqual(["reseat-orders-0-g4", "reseat-orders-0-g3"]);
  });

  it("a pod whose container waits for what waiting will not bring (a bad image) cannot start: not running, not pending", () => {
    const bad = pod(3, "running");
    bad.status = {
      phase: "Pending",
      containerStatuses: [{ name: "workload", image: "", imageID: "", ready: false, restartCount: 0, state: { waiting: { reason: "ImagePullBackOff" } } }],
    };
    expect(podState(bad)).toEqual({ state: "cannot-start", running: false });
    bad.status.containerStatuses![0]!.state = { waiting: { reason: "ContainerCreating" } };
    expect(podState(bad)).toEqual({ state: "pending", running: false });
  });

  it("a standby goes to the node of the pod running on the claim when the claim names none", () => {
    expect(nodeOfRunningPod([pod(2, "exited", "node1"), pod(3, "running", "node2")], desired.volumeName)).toBe("node2");
    expect(nodeOfRunningPod([pod(2, "exited", "node1")], desired.volumeName)).toBeUndefined();
  });

  it("the status endpoint is the one the pod was created with, read through the API server's pod proxy", () => {
    expect(statusEndpointOf(pod(3, "running"))).toEqual({ port: 8080, path: "/status" });
    expect(statusProxyPath("shop", "reseat-orders-0-g3", { port: 8080, path: "/status" })).toBe(
      "/api/v1/namespaces/shop/pods/reseat-orders-0-g3:8080/proxy/status",
    );
  });
});

describe("claims and specs refused for a standby", () => {
  const claim = (accessModes: string[]): V1PersistentVolumeClaim => ({ metadata: { name: desired.volumeName }, spec: { accessModes } });

  it("a ReadWriteOncePod claim is refused for handover standby, naming handover; ReadWriteOnce and a staged hand-over pass", () => {
    expect(() => assertClaimAdmitsStandby(claim(["ReadWriteOncePod"]), desired)).toThrow(/handover "standby" of PE "orders-0".*ReadWriteOncePod/);
    expect(() => assertClaimAdmitsStandby(claim(["ReadWriteOnce"]), desired)).not.toThrow();
    expect(() => assertClaimAdmitsStandby(claim(["ReadWriteOncePod"]), { ...desired, handover: undefined })).not.toThrow();
  });

  it('handover "standby" on kubernetes needs kubernetes.status, named; staged and Docker do not', () => {
    const spec = { peId: "orders-0", image: "reseat-session-workload:v1", handover: "standby", kubernetes: { namespace: "shop" } };
    expect(problemsOf(spec).map((p) => p.field)).toEqual(["kubernetes.status"]);
    expect(() => problemsOf({ ...spec, kubernetes: { namespace: "shop", status: { port: 8080 } } })).toThrow(/expected the spec to be rejected/);
    expect(() => problemsOf({ ...spec, handover: "staged" })).toThrow(/expected the spec to be rejected/);
    expect(() => problemsOf({ peId: "orders-0", image: "reseat-session-workload:v1", handover: "standby" })).toThrow(/expected the spec to be rejected/);
  });

  it("the standby pod starts parked (RESEAT_STANDBY=1) behind a readiness gate that only reseat opens, once it saw the pod serve", () => {
    const manifest = podManifest(desired, { name: "reseat-orders-0-g3", generation: 3, specHash: "abc" }, "node1");
    const container = manifest.spec!.containers[0]!;
    expect(container.env).toEqual(expect.arrayContaining([{ name: "RESEAT_STANDBY", value: "1" }]));
    expect(manifest.spec!.readinessGates).toEqual([{ conditionType: SERVING_CONDITION }]);
    // The spec's readiness stays the kubelet's readinessProbe (Ready needs both).
    expect(container.readinessProbe?.httpGet).toEqual({ port: 8080, path: "/healthz" });
    expect(awaitsServingMark(manifest)).toBe(true);
    manifest.status = { conditions: [{ type: SERVING_CONDITION, status: "True" }] };
    expect(awaitsServingMark(manifest)).toBe(false);
    // A staged hand-over's pod has no gate: Ready is the readinessProbe's alone, as before.
    const staged = podManifest({ ...desired, handover: undefined }, { name: "reseat-orders-0-g3", generation: 3, specHash: "abc" }, "node1");
    expect(staged.spec!.readinessGates).toBeUndefined();
    expect(awaitsServingMark(staged)).toBe(false);
  });
});
