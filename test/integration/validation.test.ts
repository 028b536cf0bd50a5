// Invalid specs fail at preview with the field named, and nothing is created (real CLI, real engine).
import { afterAll, describe, expect, it } from "vitest";
import { invalidSpecs } from "../support/invalidSpecs";
import { cleanup, containersOf, demoSpec, makeProject, reseatCli, volumeExists } from "../support/harness";

const PE = `it-valid-${process.pid}`;
const base = demoSpec(PE, 18999);

const invalid = invalidSpecs(PE);

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
