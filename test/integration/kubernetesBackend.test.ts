// The Kubernetes backend's atomic primitives against the real API server of the local cluster: a claim
// has exactly one owner however claims race, a Lease has one holder, the generation only goes up.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTROL_RECORD } from "@reseat/state/contract";
import { MERGE_PATCH } from "../../src/backend/kubernetes/client";
import { KubernetesBackend } from "../../src/backend/kubernetes/kubernetesBackend";
import { recordName } from "../../src/backend/kubernetes/objects";
import { acquireLease } from "../../src/lease/lease";
import { makeTestNamespace, useCluster } from "../support/kubernetesPe";

const NAMESPACE = `reseat-it-kbe-${process.pid}`;

describe("the Kubernetes backend's primitives", () => {
  let cluster: Awaited<ReturnType<typeof makeTestNamespace>>;
  let backend: KubernetesBackend;

  beforeAll(async () => {
    useCluster();
    cluster = await makeTestNamespace(NAMESPACE);
    backend = new KubernetesBackend({ namespace: NAMESPACE });
  });
  afterAll(async () => {
    await cluster?.remove();
  });

  it("of claims racing for one name, exactly one creates it; every racer reads the same owner", async () => {
    const owners = Array.from({ length: 6 }, (_, i) => `proj/stack${i}/pe`);
    const results = await Promise.all(
      owners.map((owner) => backend.claimVolume({ name: "raced", driver: cluster.storageClass, peId: "pe", owner, size: "16Mi" })),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    const winner = results.find((r) => r.created)!.owner;
    expect(new Set(results.map((r) => r.owner))).toEqual(new Set([winner]));
    expect((await backend.inspectVolume("raced"))?.owner).toBe(winner);
  });

  it("of leases racing for one name, exactly one is acquired; a released lease can be taken again", async () => {
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => backend.tryAcquireLease("raced", `holder-${i}`, 5000)));
    const acquired = results.filter((r) => r.acquired);
    expect(acquired).toHaveLength(1);
    const lease = (acquired[0] as { lease: Parameters<KubernetesBackend["releaseLease"]>[0] }).lease;
    for (const r of results) if (!r.acquired) expect(r.current.token).toBe(lease.token);
    expect(await backend.renewLease(lease)).toBe(true);
    expect((await backend.readLease("raced"))?.renewals).toBe(1);
    await backend.releaseLease(lease);
    const again = await backend.tryAcquireLease("raced", "later", 5000);
    expect(again.acquired).toBe(true);
    // The old holding is gone: it neither holds nor renews, and its release leaves the new one alone.
    expect(await backend.holdsLease(lease)).toBe(false);
    expect(await backend.renewLease(lease)).toBe(false);
    await backend.releaseLease(lease);
    expect((await backend.readLease("raced"))?.holder).toBe("later");
  });

  it("a holder that stops renewing is taken over after one lease, measured on the taker's clock", async () => {
    const first = await backend.tryAcquireLease("stale", "crashed-holder", 1500);
    expect(first.acquired).toBe(true);
    const taken = await acquireLease(backend, "stale", "taker", { leaseMs: 1500, waitMs: 20_000 });
    expect(taken.record.holder).toBe("taker");
    await taken.release();
  });

  it("the generation annotation only goes up: a stale bump is refused", async () => {
    await backend.claimVolume({ name: "gen", driver: cluster.storageClass, peId: "pe", owner: "o", size: "16Mi" });
    expect(await backend.readGeneration("gen")).toBeUndefined();
    await backend.recordGeneration({ peId: "pe", generation: 1, volume: "gen", updatedAt: new Date().toISOString() });
    await backend.recordGeneration({ peId: "pe", generation: 2, volume: "gen", updatedAt: new Date().toISOString() });
    await expect(backend.recordGeneration({ peId: "pe", generation: 2, volume: "gen", updatedAt: "" })).rejects.toThrow(/already at generation 2/);
    expect((await backend.readGeneration("gen"))?.generation).toBe(2);
  });

  it("reseat's records live in API objects, never in the claim: control in the record ConfigMap (0.4.0's key), the password in a Secret", async () => {
    await backend.writeControl("gen", { commitIntervalMs: 2500 });
    expect(await backend.readControl("gen")).toEqual({ commitIntervalMs: 2500 });
    const record = await backend.clients.core.readNamespacedConfigMap({ name: recordName("gen"), namespace: NAMESPACE });
    expect(CONTROL_RECORD.decode(record.data!["control.json"]!)).toEqual({ commitIntervalMs: 2500 });
    // What 0.4.0 wrote there (no version) still reads.
    await backend.clients.core.patchNamespacedConfigMap(
      { name: recordName("gen"), namespace: NAMESPACE, body: { data: { "control.json": '{"commitIntervalMs":1500}' } } },
      MERGE_PATCH,
    );
    expect(await backend.readControl("gen")).toEqual({ commitIntervalMs: 1500 });
    await backend.writeStoreSecret("gen", "pw1");
    await backend.writeStoreSecret("gen", "pw2");
    const secret = await backend.clients.core.readNamespacedSecret({ name: "gen-store-password", namespace: NAMESPACE });
    expect(Buffer.from(secret.data!["store-password"]!, "base64").toString()).toBe("pw2");
  });
});
