import { describe, expect, it } from "vitest";
import type { EngineIdentity } from "../../../src/backend/backend";
import { assertSameEngine, EngineMismatchError, recordOutdated } from "../../../src/plan/engineRecord";

const here: EngineIdentity = { kind: "docker", id: "ABCD@/var/lib/docker", address: "unix:///var/run/docker.sock", name: "vm" };
const other: EngineIdentity = { kind: "docker", id: "ABCD@/tmp/second/data", address: "unix:///tmp/second/docker.sock", name: "vm" };

describe("assertSameEngine", () => {
  it("accepts the recorded engine, however it is reached", () => {
    expect(() => assertSameEngine('processing element "pe"', here, { ...here, address: "tcp://127.0.0.1:2375" })).not.toThrow();
  });

  it("accepts a resource with no engine recorded (state of an older release)", () => {
    expect(() => assertSameEngine('processing element "pe"', undefined, here)).not.toThrow();
  });

  it("refuses another engine, naming both and what to do", () => {
    let error: unknown;
    try {
      assertSameEngine('processing element "pe"', here, other);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(EngineMismatchError);
    const message = (error as Error).message;
    expect(message).toContain('processing element "pe" lives on docker engine ABCD@/var/lib/docker');
    expect(message).toContain("this run talks to docker engine ABCD@/tmp/second/data");
    expect(message).toContain("DOCKER_HOST=unix:///var/run/docker.sock");
  });
});

describe("recordOutdated", () => {
  const provider = "exports.handler = …require('reseat/provider/runtime')…";
  it("is empty when the stored provider and engine are current", () => {
    expect(recordOutdated({ __provider: provider, engineIdentity: here }, { __provider: provider, engineIdentity: here })).toEqual([]);
  });

  it("names a stored provider that is not the registered one (an absolute runtime path of an older release)", () => {
    const legacy = 'with({ RUNTIME_MODULE: "/runner-1/app/node_modules/reseat/dist/src/provider/runtime.js" })';
    expect(recordOutdated({ __provider: legacy, engineIdentity: here }, { __provider: provider, engineIdentity: here })).toEqual(["__provider"]);
  });

  it("names an engine not yet recorded, or reached at a new address", () => {
    expect(recordOutdated({ __provider: provider }, { __provider: provider, engineIdentity: here })).toEqual(["engineIdentity"]);
    expect(
      recordOutdated({ __provider: provider, engineIdentity: here }, { __provider: provider, engineIdentity: { ...here, address: "tcp://127.0.0.1:2375" } }),
    ).toEqual(["engineIdentity"]);
  });
});
