// Invalid specs fail at preview with the field named, and nothing is created (real CLI, real engine).
import { afterAll, describe, expect, it } from "vitest";
import { cleanup, containersOf, demoSpec, makeProject, reseatCli, volumeExists } from "../support/harness";

const PE = `it-valid-${process.pid}`;
const base = demoSpec(PE, 18999);

const invalid: { name: string; spec: Record<string, unknown>; field: string; expected: RegExp }[] = [
  { name: "bad image reference", spec: { ...base, image: "Not A Valid:Image!!" }, field: "image", expected: /Docker image reference/ },
  { name: "negative commit interval", spec: { ...base, commitInterval: "-5s" }, field: "commitInterval", expected: /positive duration/ },
  { name: "relative mount path", spec: { ...base, volume: { mountPath: "state" } }, field: "volume.mountPath", expected: /absolute path/ },
  { name: "unknown field", spec: { ...base, imagee: "x" }, field: "imagee", expected: /unknown field/ },
  { name: "bad PE id", spec: { ...base, peId: "Bad_Id" }, field: "peId", expected: /DNS label/ },
  { name: "port out of range", spec: { ...base, ports: [{ container: 70000 }] }, field: "ports.0.container", expected: /port from 1 to 65535/ },
  { name: "bad env name", spec: { ...base, env: { "1BAD": "x" } }, field: "env.1BAD", expected: /environment variable names/ },
  { name: "memory below Docker's minimum", spec: { ...base, resources: { memoryMiB: 1 } }, field: "resources.memoryMiB", expected: /at least 6 MiB/ },
  { name: "unknown network mode", spec: { ...base, network: "overlay" }, field: "network", expected: /"bridge", "host" or "none"/ },
  { name: "negative stop grace", spec: { ...base, stop: { graceSeconds: -1 } }, field: "stop.graceSeconds", expected: /0 or more seconds/ },
  { name: "readiness with two probes", spec: { ...base, readiness: { httpGet: { port: 1 }, logLine: "x" } }, field: "readiness", expected: /exactly one of httpGet or logLine/ },
  { name: "invalid log-line regex", spec: { ...base, readiness: { logLine: "(" } }, field: "readiness.logLine", expected: /valid regular expression/ },
  { name: "missing image", spec: { peId: PE }, field: "image", expected: /required|expected/ },
  { name: "mount path with ..", spec: { ...base, volume: { mountPath: "/state/../etc" } }, field: "volume.mountPath", expected: /without "\.\." segments/ },
];

describe("invalid specs", () => {
  afterAll(async () => {
    await cleanup([PE]);
  });

  for (const testCase of invalid) {
    it(`${testCase.name}: preview fails naming ${testCase.field}`, async () => {
      const project = makeProject("validation", [testCase.spec]);
      const result = await reseatCli(project, "preview");
      expect(result.code).not.toBe(0);
      expect(result.doc.ok).toBe(false);
      expect(result.doc.error).toContain(`- ${testCase.field}:`);
      expect(result.doc.error).toMatch(testCase.expected);
    });
  }

  it("an invalid PE next to a valid one: up fails and creates nothing at all", async () => {
    const project = makeProject("validation-up", [base, { ...base, peId: `${PE}-b`, commitInterval: "0s" }]);
    const result = await reseatCli(project, "up");
    expect(result.code).not.toBe(0);
    expect(result.doc.error).toContain("- commitInterval:");
    expect(await containersOf(PE)).toHaveLength(0);
    expect(await volumeExists(`reseat-${PE}-state`)).toBe(false);
    const outputs = await reseatCli(project, "outputs");
    expect(outputs.doc.outputs ?? {}).toEqual({});
  });
});
