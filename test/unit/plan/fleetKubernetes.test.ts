// A fleet on Kubernetes, planned without a cluster: its members' claims (made by the fleet through the
// backend), its one engine, and what it refuses at preview, each naming the field.
import { describe, expect, it } from "vitest";
import { FleetChecked, parseFleet, planFleetMembers } from "../../../src/plan/fleetPlan";
import { SpecError } from "../../../src/schema/processingElement";
import { podManifest } from "../../../src/backend/kubernetes/objects";

const kubernetes = { namespace: "shop", storageClassName: "fast", size: "2Gi", store: { storageClassName: "slow", size: "5Gi" } };
const template = { image: "app:v1", env: { PORT: "8080" }, ports: [{ container: 8080 }], kubernetes };

function fleet(templateOverrides: Record<string, unknown> = {}, replicas = 3): FleetChecked {
  const t = { ...template, ...templateOverrides };
  return {
    name: "orders",
    replicas,
    template: t,
    rollout: { maxUnavailable: 2, partition: 0 },
    project: "proj",
    stack: "dev",
    engine: { kind: "kubernetes", namespace: "shop" },
    imageIds: { [t.image as string]: t.image as string },
  };
}

function problemsOf(run: () => unknown): { field: string; expected: string }[] {
  try {
    run();
  } catch (error) {
    if (error instanceof SpecError) return error.problems;
    throw error;
  }
  return [];
}

describe("a fleet on Kubernetes", () => {
  it("runs on the template's namespace (one engine for the fleet)", () => {
    expect(parseFleet(fleet()).engine).toEqual({ kind: "kubernetes", namespace: "shop" });
    expect(parseFleet(fleet({ kubernetes: { ...kubernetes, context: "prod" } })).engine).toEqual({ kind: "kubernetes", namespace: "shop", context: "prod" });
  });

  it("gives each member a state claim (storageClassName, size) and a directory store's claim, owned by its PE", () => {
    const { members, rollout } = planFleetMembers(fleet());
    expect(rollout.chains).toEqual([[2, 0], [1]]);
    expect(members.map((m) => [m.volume, m.storeVolume])).toEqual(
      [0, 1, 2].map((o) => [
        { name: `reseat-orders-${o}-state`, driver: "fast", size: "2Gi", peId: `orders-${o}`, owner: `proj/dev/orders-${o}` },
        { name: `reseat-orders-${o}-state-store`, driver: "slow", size: "5Gi", peId: `orders-${o}`, owner: `proj/dev/orders-${o}` },
      ]),
    );
    // The pod mounts exactly the claims the fleet makes.
    expect(members[1]!.desired.store).toMatchObject({ kind: "directory", volume: "reseat-orders-1-state-store" });
    expect(members[1]!.desired.volumeName).toBe("reseat-orders-1-state");
  });

  it("asks for the cluster's default class when the template names none; no store claim without a directory store", () => {
    const { members } = planFleetMembers(fleet({ kubernetes: { namespace: "shop" }, persistentStore: { kind: "none" } }, 2));
    expect(members[0]!.volume).toEqual({ name: "reseat-orders-0-state", driver: "", size: "1Gi", peId: "orders-0", owner: "proj/dev/orders-0" });
    expect(members[0]!.storeVolume).toBeUndefined();
  });

  it("keeps a Docker fleet's volumes as they were (the template's driver, no store claim)", () => {
    const { kubernetes: _k, ports: _p, ...docker } = template;
    const { members } = planFleetMembers({ ...fleet(), template: { ...docker, network: "host" }, engine: { kind: "docker" } });
    expect(members[0]!.volume).toEqual({ name: "reseat-orders-0-state", driver: "local", peId: "orders-0", owner: "proj/dev/orders-0" });
    expect(members[0]!.storeVolume).toBeUndefined();
  });

  it("refuses, naming the field: a placeholder in the namespace or context, a PostgreSQL store, Docker-only fields", () => {
    expect(problemsOf(() => parseFleet(fleet({ kubernetes: { ...kubernetes, namespace: "shop-{{ordinal}}" } })))).toEqual([
      { field: "template.kubernetes.namespace", expected: "expected one engine for every member of a fleet (no placeholder in kubernetes.namespace)" },
    ]);
    expect(problemsOf(() => parseFleet(fleet({ kubernetes: { ...kubernetes, context: "c{{ordinal}}" } }))).map((p) => p.field)).toEqual([
      "template.kubernetes.context",
    ]);
    const postgres = { kind: "postgres", host: "db", database: "d", user: "u", password: "p" };
    expect(problemsOf(() => parseFleet(fleet({ persistentStore: postgres }))).map((p) => p.field)).toEqual(["template.persistentStore.kind"]);
    expect(problemsOf(() => parseFleet(fleet({ volume: { driver: "local" } }))).map((p) => p.field)).toEqual(["template.volume.driver"]);
    expect(problemsOf(() => parseFleet(fleet({ kubernetes: { ...kubernetes, size: "lots" } }))).map((p) => p.field)).toEqual(["template.kubernetes.size"]);
  });
});

describe("a member's first pod", () => {
  const { members } = planFleetMembers(fleet());
  const desired = members[0]!.desired;

  it("prefers the node with the fewest reseat pods (soft: the claim's node is not known yet)", () => {
    const pod = podManifest(desired, { name: "reseat-orders-0-g1", generation: 1, specHash: "h" }, undefined);
    expect(pod.spec!.affinity).toBeUndefined();
    expect(pod.spec!.topologySpreadConstraints).toEqual([
      {
        maxSkew: 1,
        topologyKey: "kubernetes.io/hostname",
        whenUnsatisfiable: "ScheduleAnyway",
        labelSelector: { matchLabels: { "io.reseat.role": "executable" } },
      },
    ]);
  });

  it("and every later pod is required on its claim's node, nothing else", () => {
    const pod = podManifest(desired, { name: "reseat-orders-0-g2", generation: 2, specHash: "h" }, "node2");
    expect(pod.spec!.topologySpreadConstraints).toBeUndefined();
    expect(pod.spec!.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([
      { matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: ["node2"] }] },
    ]);
  });
});
