import { describe, expect, it } from "vitest";
import type { ExecutableDesired } from "../../../src/backend/backend";
import { planExecutable, specHash } from "../../../src/plan/executablePlan";
import { planVolume, VolumeChangeRefused } from "../../../src/plan/volumePlan";

const desired: ExecutableDesired = {
  peId: "pe",
  imageRef: "app:v1",
  imageId: "sha256:1",
  env: { A: "1", B: "2" },
  ports: [],
  network: "bridge",
  resources: {},
  volumeName: "reseat-pe-state",
  mountPath: "/state",
  stop: { signal: "SIGTERM", graceSeconds: 10 },
  commitIntervalMs: 30_000,
  store: { kind: "none" },
};

describe("planExecutable", () => {
  it("no change, no plan", () => {
    expect(planExecutable(desired, { ...desired })).toEqual({ changes: false, replaces: [], inPlace: [] });
  });

  it.each([
    ["imageId", { imageId: "sha256:2" }],
    ["env", { env: { A: "1", B: "3" } }],
    ["command", { command: ["node", "x.js"] }],
    ["ports", { ports: [{ container: 80, hostIp: "127.0.0.1", protocol: "tcp" as const }] }],
    ["resources", { resources: { memoryMiB: 64 } }],
    ["volumeName", { volumeName: "other" }],
    ["mountPath", { mountPath: "/data" }],
  ])("a change of %s needs a new executable", (field, change) => {
    const plan = planExecutable(desired, { ...desired, ...change });
    expect(plan.replaces).toEqual([field]);
  });

  it.each([
    ["commitIntervalMs", { commitIntervalMs: 5000 }],
    ["stop", { stop: { signal: "SIGTERM", graceSeconds: 30 } }],
    ["imageRef", { imageRef: "app:latest" }],
  ])("a change of %s is applied in place", (field, change) => {
    const plan = planExecutable(desired, { ...desired, ...change });
    expect(plan).toEqual({ changes: true, replaces: [], inPlace: [field] });
  });

  it("a retag that resolves to the same image id needs no new executable", () => {
    expect(planExecutable(desired, { ...desired, imageRef: "app:v1-again" }).replaces).toEqual([]);
  });

  it("key order does not count as a change, and the spec hash agrees", () => {
    const reordered = { ...desired, env: { B: "2", A: "1" } };
    expect(planExecutable(desired, reordered).changes).toBe(false);
    expect(specHash(reordered)).toBe(specHash(desired));
    expect(specHash({ ...desired, imageId: "sha256:2" })).not.toBe(specHash(desired));
    expect(specHash({ ...desired, commitIntervalMs: 1 })).toBe(specHash(desired));
  });
});

describe("planVolume", () => {
  const volume = { peId: "pe", name: "reseat-pe-state", driver: "local" };
  it("the same volume is no change", () => expect(planVolume(volume, { ...volume })).toEqual({ changes: false }));
  it("a new name or driver is refused, naming the fields", () => {
    expect(() => planVolume(volume, { ...volume, driver: "nfs" })).toThrow(VolumeChangeRefused);
    expect(() => planVolume(volume, { ...volume, name: "x", driver: "nfs" })).toThrow(/volume\.name and volume\.driver/);
  });
});
