// The kubernetes section of a PE spec: defaults, field-named errors, and the fields only one engine understands.
import { describe, expect, it } from "vitest";
import { parseProcessingElement } from "../../../src/schema/processingElement";
import { problemsOf } from "../schema/problems";
import { engineTarget, executableDesired, storeClaimNameOf } from "../../../src/schema/desired";
import { parseGroup } from "../../../src/schema/group";

const k8sPe = { peId: "orders-0", image: "reseat-session-workload:v1", kubernetes: { namespace: "shop" } };

describe("the kubernetes section", () => {
  it("defaults: namespace default, 1Gi claim of the cluster's default class; the engine target records namespace and context only", () => {
    const spec = parseProcessingElement({ peId: "a", image: "x:1", kubernetes: {} });
    expect(spec.kubernetes).toEqual({ namespace: "default", size: "1Gi" });
    expect(engineTarget(spec)).toEqual({ kind: "kubernetes", namespace: "default" });
    const withContext = parseProcessingElement({ ...k8sPe, kubernetes: { namespace: "shop", context: "prod" } });
    expect(engineTarget(withContext)).toEqual({ kind: "kubernetes", namespace: "shop", context: "prod" });
  });

  it("the executable carries the pod's settings and a per-PE directory store claim", () => {
    const spec = parseProcessingElement({ ...k8sPe, kubernetes: { namespace: "shop", nodeSelector: { disktype: "ssd" }, status: { port: 8080 } } });
    const desired = executableDesired(spec, "reseat-session-workload:v1");
    expect(desired.kubernetes).toEqual({ nodeSelector: { disktype: "ssd" }, status: { port: 8080, path: "/status" } });
    expect(desired.store).toEqual({ kind: "directory", volume: "reseat-orders-0-state-store", keep: 5 });
    expect(storeClaimNameOf(spec)).toBe("reseat-orders-0-state-store");
  });

  it("bad Kubernetes fields are named with what was expected", () => {
    const problems = problemsOf({
      ...k8sPe,
      kubernetes: { namespace: "Shop_1", size: "lots", storageClassName: "Fast SSD", nodeSelector: { "bad key!": "v" }, status: { port: 0 }, extra: 1 },
    });
    const byField = Object.fromEntries(problems.map((p) => [p.field, p.expected]));
    expect(byField["kubernetes.namespace"]).toMatch(/namespace name/);
    expect(byField["kubernetes.size"]).toMatch(/storage size such as/);
    expect(byField["kubernetes.storageClassName"]).toMatch(/StorageClass name/);
    expect(byField["kubernetes.nodeSelector.bad key!"]).toMatch(/label keys/);
    expect(byField["kubernetes.status.port"]).toMatch(/port from 1 to 65535/);
    expect(byField["kubernetes.extra"]).toMatch(/unknown field/);
  });

  it("refuses Docker-only fields under kubernetes, each by name", () => {
    const problems = problemsOf({
      ...k8sPe,
      docker: { host: "tcp://h:2375" },
      network: "host",
      ports: [{ container: 8080, host: 18080, hostIp: "127.0.0.1" }],
      readiness: { logLine: "ready" },
      volume: { driver: "local", name: "Upper_Case" },
      stop: { signal: "SIGINT" },
      persistentStore: { kind: "directory", hostPath: "/srv/commits" },
    });
    expect(problems.map((p) => p.field).sort()).toEqual(
      [
        "docker",
        "network",
        "persistentStore.hostPath",
        "ports.0.host",
        "ports.0.hostIp",
        "readiness.logLine",
        "stop.signal",
        "volume.driver",
        "volume.name",
      ].sort(),
    );
    expect(problems.find((p) => p.field === "network")!.expected).toMatch(/Docker-only field, not allowed with kubernetes/);
    expect(problems.find((p) => p.field === "stop.signal")!.expected).toMatch(/always stops a pod with SIGTERM/);
  });

  it("what Kubernetes understands of the shared fields is accepted", () => {
    const spec = parseProcessingElement({
      ...k8sPe,
      ports: [{ container: 8080 }],
      readiness: { httpGet: { port: 8080, path: "/healthz" } },
      stop: { signal: "SIGTERM", graceSeconds: 5 },
      volume: { name: "orders-state", mountPath: "/data" },
      persistentStore: { kind: "none" },
    });
    expect(spec.volume.name).toBe("orders-state");
  });

  it("Docker PEs are unchanged: no kubernetes field in what they run", () => {
    const spec = parseProcessingElement({ peId: "a", image: "x:1", network: "host" });
    expect(executableDesired(spec, "sha256:1").kubernetes).toBeUndefined();
    expect(engineTarget(spec)).toEqual({ kind: "docker" });
  });

  it("groups check each member the same way", () => {
    expect(() => parseGroup({ name: "web", replicas: 2, template: { image: "x:1", kubernetes: { namespace: "shop" }, network: "host" } })).toThrow(
      /network: a Docker-only field/,
    );
    const group = parseGroup({ name: "web", replicas: 2, template: { image: "x:1", kubernetes: { namespace: "shop" } } });
    expect(group.members.map((m) => engineTarget(m.spec))).toEqual([
      { kind: "kubernetes", namespace: "shop" },
      { kind: "kubernetes", namespace: "shop" },
    ]);
  });
});
