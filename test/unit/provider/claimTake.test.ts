// Issue 23, item 5: a PE's Kubernetes claim is taken by reseat, atomically, before @pulumi/kubernetes
// applies it, so that of two stacks racing for one claim the loser gets reseat's error naming the volume
// and its owner. Judged on the fake engine (its claimVolume is create-or-report-the-holder, as the
// Kubernetes backend's create -> AlreadyExists -> read is).
import { describe, expect, it } from "vitest";
import { FakeBackend } from "../../../src/backend/fake/fakeBackend";
import { takeClaimOn } from "../../../src/provider/runtime";
import type { ClaimFields } from "../../../src/plan/claimPlan";

const claim = (stack: string, peId: string, role: ClaimFields["role"] = "state-volume"): ClaimFields => ({
  peId,
  role,
  name: role === "state-volume" ? "orders-state" : "orders-state-store",
  namespace: "ns",
  storageClassName: "local",
  size: "1Gi",
  owner: `shop/${stack}/${peId}`,
  engine: { kind: "kubernetes", namespace: "ns" },
});

describe("taking a PE's claim at up", () => {
  it("the first taker creates it; the second, checked before the first took it, is refused naming the volume and its owner", async () => {
    const engine = new FakeBackend();
    // Both stacks' checks saw no claim (the race): the take itself decides.
    await expect(takeClaimOn(engine, claim("a", "orders-a"))).resolves.toMatchObject({ owner: "shop/a/orders-a" });
    await expect(takeClaimOn(engine, claim("b", "orders-b"))).rejects.toThrow(
      'state volume "orders-state" belongs to shop/a/orders-a; refusing to bind it to shop/b/orders-b',
    );
    expect((await engine.inspectVolume("orders-state"))?.owner).toBe("shop/a/orders-a");
  });

  it("the same owner adopts its claim (kept by an earlier destroy); another stack's PE of the same peId is refused", async () => {
    const engine = new FakeBackend();
    await takeClaimOn(engine, claim("a", "orders"));
    await expect(takeClaimOn(engine, claim("a", "orders"))).resolves.toMatchObject({ owner: "shop/a/orders" });
    await expect(takeClaimOn(engine, claim("b", "orders"))).rejects.toThrow("belongs to shop/a/orders; refusing to bind it to shop/b/orders");
  });

  it("the store claim is taken through the engine's store path when it has one, refused the same way", async () => {
    const engine = new FakeBackend();
    const made: string[] = [];
    const withStore = Object.assign(engine, {
      claimStoreVolume: async (c: Parameters<FakeBackend["claimVolume"]>[0]) => (made.push(c.name), engine.claimVolume(c)),
    });
    await takeClaimOn(withStore, claim("a", "orders-a", "store-volume"));
    await expect(takeClaimOn(withStore, claim("b", "orders-b", "store-volume"))).rejects.toThrow(
      'state volume "orders-state-store" belongs to shop/a/orders-a',
    );
    expect(made).toEqual(["orders-state-store", "orders-state-store"]);
  });
});
