// Secret env values (ExecutableDesired.secretEnv) on the fake engine, which records executables as
// Docker does: the label carries the spec with those values blanked, the executable's own environment
// has them, and whatever re-creates an executable from its record (the controller, a revert) gets the
// real values back. Plus the pure pieces: the pod manifest, the plan, the fleet's members.
import { describe, expect, it } from "vitest";
import { SECRET_ENV_MARKER, desiredFromLabel, desiredLabel } from "../../../src/backend/backend";
import { FakeBackend } from "../../../src/backend/fake/fakeBackend";
import { envSecretName, podManifest, secretEnvKey } from "../../../src/backend/kubernetes/objects";
import { WatchEvent, watch } from "../../../src/controller/watch";
import { planExecutable, specHash } from "../../../src/plan/executablePlan";
import { planFleetMembers } from "../../../src/plan/fleetPlan";
import { ReplacementRevertedError, reseat } from "../../../src/replacement/reseat";
import { desiredFor, engineWithVolume, until } from "./fixtures";

const TOKEN = "tok-do-not-leak-0123";

function withSecret(peId: string, overrides: Record<string, unknown> = {}) {
  return { ...desiredFor(peId, { env: { PORT: "8080", API_TOKEN: TOKEN }, ...overrides }), secretEnv: ["API_TOKEN"] };
}

function onlyExecutable(backend: FakeBackend, peId: string) {
  const all = [...backend.executables.values()].filter((e) => e.desired.peId === peId);
  expect(all).toHaveLength(1);
  return all[0]!;
}

describe("the record of an executable (label, annotation)", () => {
  it("blanks the secret env values and the store password, keeps the list and every other value", () => {
    const desired = {
      ...withSecret("pe-a"),
      store: { kind: "postgres" as const, host: "db", port: 5432, database: "d", user: "u", table: "t", keep: 3, password: "pw-secret" },
    };
    const label = desiredLabel(desired);
    expect(label).not.toContain(TOKEN);
    expect(label).not.toContain("pw-secret");
    const read = desiredFromLabel(label)!;
    expect(read.env).toEqual({ PORT: "8080", API_TOKEN: SECRET_ENV_MARKER });
    expect(read.secretEnv).toEqual(["API_TOKEN"]);
  });

  it("without secretEnv (every executable made before it), is what it always was", () => {
    const desired = desiredFor("pe-a", { env: { PORT: "8080" } });
    expect(JSON.parse(desiredLabel(desired))).toEqual(JSON.parse(JSON.stringify(desired)));
  });
});

describe("secret env values on the fake engine (as on Docker)", () => {
  it("the executable runs with the value, its label holds none, desiredOf gives it back (same spec hash)", async () => {
    const desired = withSecret("pe-a");
    const backend = await engineWithVolume(desired);
    const result = await reseat(backend, desired, { holder: "test" });
    const e = backend.executables.get(result.executableId)!;
    expect(e.desired.env.API_TOKEN).toBe(TOKEN);
    expect(e.label).not.toContain(TOKEN);
    const back = (await backend.desiredOf(result.executableId))!;
    expect(back.env.API_TOKEN).toBe(TOKEN);
    expect(specHash(back)).toBe(specHash(desired));
  });

  it("the controller re-creates a crashed executable with the real value", async () => {
    const desired = withSecret("pe-a", { failureBackoff: { initial: "50ms", max: "400ms", resetAfter: "10s" } });
    const backend = await engineWithVolume(desired);
    await reseat(backend, desired, { holder: "pulumi" });
    const events: WatchEvent[] = [];
    const watcher = await watch({ backend, onEvent: (e) => events.push(e), resyncMs: 50, reconnectMs: 10, leaseMs: 200 });
    try {
      backend.crash(backend.running("pe-a")[0]!.id);
      await until(() => events.some((e) => e.kind === "reseated"), 5000, "a reseat");
    } finally {
      await watcher.stop();
    }
    const again = onlyExecutable(backend, "pe-a");
    expect(again.generation).toBe(2);
    expect(again.desired.env.API_TOKEN).toBe(TOKEN);
    expect(again.label).not.toContain(TOKEN);
  });

  it("a failed replacement reverts to the previous spec with its real value (not the new one's)", async () => {
    const v1 = withSecret("pe-a");
    const backend = await engineWithVolume(v1);
    await reseat(backend, v1, { holder: "test" });
    const v2 = { ...withSecret("pe-a", { image: "reseat-crash:1" }), env: { PORT: "8080", API_TOKEN: "rotated-token" } };
    backend.faults.crashingImages.add("reseat-crash:1");
    await expect(reseat(backend, v2, { holder: "test" })).rejects.toBeInstanceOf(ReplacementRevertedError);
    const reverted = onlyExecutable(backend, "pe-a");
    expect(reverted.generation).toBe(3);
    expect(reverted.desired.imageRef).toBe(v1.imageRef);
    expect(reverted.desired.env.API_TOKEN).toBe(TOKEN);
    expect(reverted.specHash).toBe(specHash(v1));
    expect(reverted.label).not.toContain(TOKEN);
  });

  it("prepare refuses a spec whose secret value could not be read back (the marker never reaches a workload)", async () => {
    const desired = withSecret("pe-a");
    const backend = await engineWithVolume(desired);
    const blanked = desiredFromLabel(desiredLabel(desired))!;
    await expect(backend.prepare(blanked, { name: "reseat-pe-a-g1", generation: 1, specHash: specHash(blanked) })).rejects.toThrow(
      /env\.API_TOKEN of PE "pe-a": the secret value could not be read back from the engine for reseat-pe-a-g1/,
    );
    expect(backend.executables.size).toBe(0);
  });
});

describe("the plan", () => {
  it("secretEnv is not part of the spec hash, but a change of it replaces (the labels must change)", () => {
    const plain = desiredFor("pe-a", { env: { PORT: "8080", API_TOKEN: TOKEN } });
    const secret = { ...plain, secretEnv: ["API_TOKEN"] };
    expect(specHash(secret)).toBe(specHash(plain));
    expect(planExecutable(plain, secret).replaces).toEqual(["secretEnv"]);
    expect(planExecutable(secret, secret).changes).toBe(false);
    expect(planExecutable(plain, { ...plain }).changes).toBe(false);
  });
});

describe("the pod of a PE with a secret env value (Kubernetes)", () => {
  const desired = { ...withSecret("orders-0"), engine: { kind: "kubernetes" as const, namespace: "shop" } };
  const pod = podManifest(desired, { name: "reseat-orders-0-g2", generation: 2, specHash: "abc123" }, undefined);
  const env = pod.spec!.containers[0]!.env!;

  it("references the value in the env Secret, under its spec hash; nothing in the pod holds it", () => {
    expect(env.find((e) => e.name === "API_TOKEN")).toEqual({
      name: "API_TOKEN",
      valueFrom: { secretKeyRef: { name: envSecretName(desired.volumeName), key: secretEnvKey("abc123", "API_TOKEN") } },
    });
    expect(env.find((e) => e.name === "PORT")).toEqual({ name: "PORT", value: "8080" });
    expect(JSON.stringify(pod)).not.toContain(TOKEN);
  });
});

describe("a fleet's members", () => {
  it("carry the template's secret env names (the ones their env has)", () => {
    const fleet = {
      name: "web",
      replicas: 2,
      template: { image: "reseat-session:1", env: { PORT: "{{ordinal + 8000}}", API_TOKEN: TOKEN }, persistentStore: { kind: "none" } },
      rollout: { maxUnavailable: 1, partition: 0 },
      project: "p",
      stack: "s",
      engine: { kind: "docker" as const },
      imageIds: { "reseat-session:1": "sha256:1" },
    };
    const { members } = planFleetMembers({ ...fleet, secretEnv: ["API_TOKEN", "ABSENT"] });
    expect(members.map((m) => m.desired.secretEnv)).toEqual([["API_TOKEN"], ["API_TOKEN"]]);
    expect(planFleetMembers(fleet).members.every((m) => !("secretEnv" in m.desired))).toBe(true);
  });
});
