// Invalid specs fail at preview with the field named, and nothing is created (real CLI, real engine).
import { afterAll, describe, expect, it } from "vitest";
import { invalidSpecs } from "../support/invalidSpecs";
import { cleanup, containersOf, demoSpec, makeProject, reseatCli, volumeExists } from "../support/harness";

const PE = `it-valid-${process.pid}`;
const base = demoSpec(PE, 18999);

const invalid = invalidSpecs(PE);

describe("invalid specs", () => {
  afterAll(async () => {
    await cleanup([PE, `${PE}-a`, `${PE}-b`]);
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

describe("collisions between PEs of one program", () => {
  const cases: { name: string; specs: Record<string, unknown>[]; field: string; expected: RegExp }[] = [
    {
      name: "two PEs naming one state volume",
      specs: [demoSpec(`${PE}-a`, 18991, { volume: { name: `${PE}-shared` } }), demoSpec(`${PE}-b`, 18992, { volume: { name: `${PE}-shared` } })],
      field: "processingElements[1].volume.name",
      expected: /already the state volume of processingElements\[0\] \(one writer per volume\)/,
    },
    {
      name: "one peId twice",
      specs: [demoSpec(`${PE}-a`, 18991), demoSpec(`${PE}-a`, 18992, { volume: { name: `${PE}-other` } })],
      field: "processingElements[1].peId",
      expected: /unique in the program/,
    },
    {
      name: "one host port published by two PEs",
      specs: [
        demoSpec(`${PE}-a`, 18991, { network: "bridge", ports: [{ container: 8080, host: 18990 }] }),
        demoSpec(`${PE}-b`, 18992, { network: "bridge", ports: [{ container: 8080, host: 18990 }] }),
      ],
      field: "processingElements[1].ports.0.host",
      expected: /already published by processingElements\[0\]\.ports\.0\.host/,
    },
  ];
  for (const testCase of cases) {
    it(`${testCase.name}: preview and up fail naming ${testCase.field}; nothing is created`, async () => {
      const project = makeProject("collision", testCase.specs);
      const preview = await reseatCli(project, "preview");
      expect(preview.code).not.toBe(0);
      expect(preview.doc.error).toContain(`- ${testCase.field}:`);
      expect(preview.doc.error).toMatch(testCase.expected);
      const up = await reseatCli(project, "up");
      expect(up.code).not.toBe(0);
      expect(up.doc.error).toContain(`- ${testCase.field}:`);
      for (const peId of [`${PE}-a`, `${PE}-b`]) expect(await containersOf(peId)).toHaveLength(0);
      expect(await volumeExists(`${PE}-shared`)).toBe(false);
      expect(await volumeExists(`reseat-${PE}-a-state`)).toBe(false);
    });
  }
});
