import { describe, expect, it } from "vitest";
import { parseProcessingElement, volumeNameOf } from "../../../src/schema/processingElement";
import { parseDuration } from "../../../src/schema/duration";
import { problemsOf } from "./problems";
import { storeDesired } from "../../../src/schema/desired";
import { storeEnv } from "../../../src/backend/backend";

const minimal = { peId: "orders-0", image: "reseat-demo-workload:v1" };

describe("parseProcessingElement", () => {
  it("refuses the env names reseat reserves, naming the field", () => {
    expect(problemsOf({ ...minimal, env: { RESEAT_PE_ID: "x", PORT: "1", RESEAT_STORE: "{}" } })).toEqual([
      {
        field: "env.RESEAT_PE_ID",
        expected: expect.stringMatching(/^reserved: reseat sets RESEAT_PE_ID for every workload \(.*RESEAT_GENERATION.*\); choose another name$/),
      },
      { field: "env.RESEAT_STORE", expected: expect.stringMatching(/^reserved: reseat sets RESEAT_STORE/) },
    ]);
    // A name that merely starts like them is the user's.
    expect(parseProcessingElement({ ...minimal, env: { RESEAT_MODE: "fast" } }).env).toEqual({ RESEAT_MODE: "fast" });
  });

  it("fills defaults: /state mount, 30s commits, kept volume, SIGTERM with 10s grace", () => {
    const spec = parseProcessingElement(minimal);
    expect(spec.volume).toEqual({ driver: "local", mountPath: "/state", retainOnDestroy: true });
    expect(spec.commitInterval).toBe(30_000);
    expect(spec.stop).toEqual({ signal: "SIGTERM", graceSeconds: 10 });
    expect(spec.network).toBe("bridge");
    expect(volumeNameOf(spec)).toBe("reseat-orders-0-state");
  });

  it("refuses an empty start over unreadable commits unless allowEmptyStart; the store env carries it only when set", () => {
    const spec = parseProcessingElement(minimal);
    expect(spec.persistentStore).toMatchObject({ kind: "directory", allowEmptyStart: false });
    expect(JSON.parse(storeEnv(storeDesired(spec), "/state")!)).toEqual({ kind: "directory", path: "/reseat-store", keep: 5 });
    const allowing = parseProcessingElement({ ...minimal, persistentStore: { kind: "directory", allowEmptyStart: true } });
    expect(JSON.parse(storeEnv(storeDesired(allowing), "/state")!)).toMatchObject({ allowEmptyStart: true });
    expect(problemsOf({ ...minimal, persistentStore: { kind: "directory", allowEmptyStart: 1 } })).toEqual([
      { field: "persistentStore.allowEmptyStart", expected: "expected true or false" },
    ]);
  });

  it("accepts registry hosts, digests and image ids", () => {
    for (const image of ["localhost:5000/team/app:1.2", "node:24-slim", `app@sha256:${"a".repeat(64)}`, `sha256:${"b".repeat(64)}`]) {
      expect(parseProcessingElement({ ...minimal, image }).image).toBe(image);
    }
  });

  it("publishes ports on loopback unless told otherwise", () => {
    expect(parseProcessingElement({ ...minimal, ports: [{ container: 80 }] }).ports).toEqual([{ container: 80, hostIp: "127.0.0.1", protocol: "tcp" }]);
  });

  it("reports every bad field at once, each with its path", () => {
    const problems = problemsOf({ ...minimal, image: "UPPER CASE", commitInterval: "soon", volume: { mountPath: "rel" } });
    expect(problems.map((p) => p.field).sort()).toEqual(["commitInterval", "image", "volume.mountPath"]);
  });

  it("names unknown fields, nested ones with their path", () => {
    expect(problemsOf({ ...minimal, volume: { mountpath: "/x" } })).toEqual([
      { field: "volume.mountpath", expected: expect.stringContaining("unknown field") },
    ]);
  });

  it("says a missing required field is required", () => {
    expect(problemsOf({ peId: "x" })).toEqual([{ field: "image", expected: "required (expected a Docker image reference)" }]);
  });

  it("the error message lists the subject and each field", () => {
    expect(() => parseProcessingElement({ ...minimal, stop: { graceSeconds: 1.5 } }, '"orders-0"')).toThrow(
      /invalid processing element "orders-0":\n {2}- stop\.graceSeconds: expected a whole number of seconds/,
    );
  });
});

describe("parseDuration", () => {
  it.each([
    ["500ms", 500],
    ["30s", 30_000],
    ["1.5s", 1500],
    ["2m", 120_000],
    ["1h", 3_600_000],
    [250, 250],
  ])("%s -> %d ms", (input, ms) => expect(parseDuration(input)).toBe(ms));

  it.each(["-5s", "0s", "5 parsecs", "", -1, 0, 1.5])("rejects %s", (input) => expect(typeof parseDuration(input)).toBe("string"));
});
