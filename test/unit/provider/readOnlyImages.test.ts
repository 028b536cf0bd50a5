// Image identity without pulling (issue 19, item 4): check — which `pulumi preview` runs — resolves an
// image read-only, and leaves an image the engine lacks to `up` with a stand-in id that differs from
// every image id; `up` pulls in create/update, before anything is stopped, and records the real id, so
// that the next preview is clean. Against the in-memory fake (the integration test,
// test/integration/readOnlyPreview.test.ts, watches a real engine's events).
import { describe, expect, it } from "vitest";
import type { ExecutableDesired } from "../../../src/backend/backend";
import { FakeBackend, fakeImageId } from "../../../src/backend/fake/fakeBackend";
import { planExecutable } from "../../../src/plan/executablePlan";
import { checkedImageId, isUnknown, resolvedAtUp, UNKNOWN } from "../../../src/plan/imageIdentity";
import { checkImageId, imageIdForUp } from "../../../src/provider/images";

const SUBJECT = 'processing element "pe"';

function desired(imageRef: string, imageId: string): ExecutableDesired {
  return {
    peId: "pe",
    imageRef,
    imageId,
    env: {},
    ports: [],
    network: "bridge",
    resources: {},
    volumeName: "reseat-pe-state",
    mountPath: "/state",
    stop: { signal: "SIGTERM", graceSeconds: 10 },
    commitIntervalMs: 30_000,
    store: { kind: "none" },
  };
}

/** The engine calls that change something (the fake records every call). */
function writes(engine: FakeBackend): string[] {
  return engine.calls.filter(
    (call) =>
      !/^(identity|ping|resolveImage|listExecutables|inspectExecutable|desiredOf|inspectVolume|readGeneration|readControl|readRevert|readWorkloadStatus|readControllerRecord|readStoreGeneration|readLease)\b/.test(
        call,
      ),
  );
}

describe("the image id check records", () => {
  it("is the image id when the engine has the image", () => {
    expect(checkedImageId({ kind: "resolved", imageId: "sha256:abc" })).toBe("sha256:abc");
  });

  it("is a stand-in naming the registry's digest, or why there is none, when the engine lacks it", () => {
    const digest = `sha256:${"d".repeat(64)}`;
    expect(checkedImageId({ kind: "registry", digest })).toBe(`resolved at up (not on the engine; registry manifest ${digest})`);
    expect(checkedImageId({ kind: "unresolved", reason: "the registry did not name its manifest: manifest unknown (404)" })).toBe(
      "resolved at up (not on the engine; the registry did not name its manifest: manifest unknown (404))",
    );
  });

  it("a stand-in (or an unknown) is resolved at up; an image id is not", () => {
    expect(resolvedAtUp(checkedImageId({ kind: "registry", digest: "sha256:1" }))).toBe(true);
    expect(resolvedAtUp(UNKNOWN)).toBe(true);
    expect(resolvedAtUp("sha256:abc")).toBe(false);
    expect(resolvedAtUp("reseat-session-workload:v1")).toBe(false); // Kubernetes: the reference is the id
  });
});

describe("check: read-only", () => {
  it("an image on the engine: its id, and no pull", async () => {
    const engine = new FakeBackend();
    expect(await checkImageId(engine, "app:v1")).toBe(fakeImageId("app:v1"));
    expect(engine.pulled).toEqual([]);
    expect(writes(engine)).toEqual([]);
  });

  it("an image the engine lacks: a stand-in with the registry's digest; nothing pulled", async () => {
    const engine = new FakeBackend();
    engine.absentImages.add("registry.test/app:v2");
    engine.registryDigests.set("registry.test/app:v2", "sha256:feed");
    expect(await checkImageId(engine, "registry.test/app:v2")).toBe("resolved at up (not on the engine; registry manifest sha256:feed)");
    expect(engine.pulled).toEqual([]);
    expect(writes(engine)).toEqual([]);
  });

  it("an image nobody has: a stand-in saying why, never an error", async () => {
    const engine = new FakeBackend();
    engine.absentImages.add("app:nowhere");
    expect(await checkImageId(engine, "app:nowhere")).toMatch(
      /^resolved at up \(not on the engine; the registry did not name its manifest: manifest unknown\)$/,
    );
    expect(writes(engine)).toEqual([]);
  });

  it("an image reference unknown until up (an Output in preview) is not looked up: the id is unknown too", async () => {
    const engine = new FakeBackend();
    const id = await checkImageId(engine, UNKNOWN);
    expect(isUnknown(id)).toBe(true);
    expect(engine.calls).toEqual([]);
  });
});

describe("up: create pulls what check left to it, and records the real id", () => {
  it("preview shows the replacement; up pulls; the next preview is clean", async () => {
    const engine = new FakeBackend();
    const recorded = desired("app:v1", await checkImageId(engine, "app:v1")); // what runs, as state records it
    engine.absentImages.add("app:v2");
    engine.registryDigests.set("app:v2", "sha256:beef");

    // preview (and the up's own check): replace, with the id left to up; nothing pulled
    const checked = desired("app:v2", await checkImageId(engine, "app:v2"));
    expect(planExecutable(recorded, checked).replaces).toEqual(["imageId"]);
    expect(engine.pulled).toEqual([]);

    // create: the pull, then the real id in state (a registry digest is not an image id)
    const created = { ...checked, imageId: await imageIdForUp(engine, checked.imageRef, checked.imageId, SUBJECT) };
    expect(engine.pulled).toEqual(["app:v2"]);
    expect(created.imageId).toBe(fakeImageId("app:v2"));

    // the next preview: the image is on the engine now, its id equals the recorded one
    const next = desired("app:v2", await checkImageId(engine, "app:v2"));
    expect(planExecutable(created, next)).toEqual({ changes: false, replaces: [], inPlace: [] });
    expect(engine.pulled).toEqual(["app:v2"]);
  });

  it("an id check resolved is used as it is: no pull", async () => {
    const engine = new FakeBackend();
    expect(await imageIdForUp(engine, "app:v1", "sha256:known", SUBJECT)).toBe("sha256:known");
    expect(engine.calls).toEqual([]);
  });

  it("a pull that fails fails the step naming the field and the image; nothing was stopped or created", async () => {
    const engine = new FakeBackend();
    engine.absentImages.add("app:nowhere");
    const error = await imageIdForUp(engine, "app:nowhere", await checkImageId(engine, "app:nowhere"), SUBJECT).catch((e: Error) => e.message);
    expect(error).toMatch(
      /^reseat: processing element "pe": image: image "app:nowhere" is not on the engine .*could not be pulled.*; nothing was stopped or created$/,
    );
    expect(writes(engine)).toEqual(["ensureImage app:nowhere"]);
  });

  it("a fleet names its template's field", async () => {
    const engine = new FakeBackend();
    engine.absentImages.add("app:nowhere");
    const error = await imageIdForUp(engine, "app:nowhere", "resolved at up (not on the engine; …)", 'fleet "f"', "template.image").catch(
      (e: Error) => e.message,
    );
    expect(error).toMatch(/^reseat: fleet "f": template\.image: image "app:nowhere"/);
  });
});
