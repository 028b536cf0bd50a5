// Invalid specs are rejected by the Terraform flavour at synth, with the same SpecError lines as the
// Pulumi flavour. The cases are those of test/integration/validation.test.ts (kept in step by hand).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Testing } from "cdktf";
import { describe, expect, it } from "vitest";
import { invalidSpecs } from "../../support/invalidSpecs";
import { ProcessingElement, ReseatTerraformStack } from "../../../components/terraform";
import { parseProcessingElement } from "../../../src/schema/processingElement";
import { synthesize } from "../../../stacks/terraform/main";
import { demoSpec } from "../../support/harness";
import { rejection } from "../../support/specError";

const PE = "ut-tf-valid";
const base = demoSpec(PE, 18999);

const invalid = invalidSpecs(PE);

/** The Pulumi flavour's message for the same spec (its component validates with parseProcessingElement, subject "<name>"). */
function pulumiMessage(name: string, spec: unknown): string {
  return rejection(() => parseProcessingElement(spec, `"${name}"`)).message;
}

describe("Terraform flavour: invalid specs", () => {
  for (const testCase of invalid) {
    it(`${testCase.name}: synth fails naming ${testCase.field}, with the Pulumi flavour's message`, () => {
      const name = String(testCase.spec.peId);
      const error = rejection(() => new ReseatTerraformStack(Testing.app(), "t", { processingElements: [testCase.spec], statePath: "/tmp/x.tfstate" }));
      expect(error.message).toContain(`- ${testCase.field}:`);
      expect(error.message).toMatch(testCase.expected);
      expect(error.message).toBe(pulumiMessage(name, testCase.spec));
      // The construct on its own, too (subject: its id).
      const alone = rejection(
        () =>
          new ProcessingElement(new ReseatTerraformStack(Testing.app(), "u", { processingElements: [], statePath: "/tmp/x.tfstate" }), name, {
            spec: testCase.spec as never,
          }),
      );
      expect(alone.message).toBe(error.message);
    });
  }

  it("an invalid PE next to a valid one: synth fails and writes nothing", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-tf-valid-"));
    try {
      const config = { processingElements: [base, { ...base, peId: `${PE}-b`, commitInterval: "0s" }] };
      const error = rejection(() => synthesize({ stack: "v", config, outdir: dir, statePath: path.join(dir, "v.tfstate") }));
      expect(error.message).toContain("- commitInterval:");
      expect(fs.existsSync(path.join(dir, "stacks", "v", "cdk.tf.json"))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a stack config without a list of specs is refused in the Pulumi stack's words", () => {
    expect(() => synthesize({ stack: "v", config: { processingElements: "demo" }, outdir: os.tmpdir() })).toThrow(
      "reseat: invalid stack config:\n  - processingElements: expected a list of processing element specs",
    );
  });

  it("persistentStore postgres is refused (its password file is written by the Pulumi provider only)", () => {
    const spec = { ...base, persistentStore: { kind: "postgres", database: "reseat", user: "reseat", passwordSecret: "pg" } };
    const error = rejection(() => new ReseatTerraformStack(Testing.app(), "t", { processingElements: [spec], statePath: "/tmp/x.tfstate" }));
    expect(error.problems).toEqual([{ field: "persistentStore.kind", expected: expect.stringContaining('"directory" or "none"') }]);
  });

  it("peId defaults to the construct id, as in the Pulumi component", () => {
    const stack = new ReseatTerraformStack(Testing.app(), "t", { processingElements: [], statePath: "/tmp/x.tfstate" });
    const { peId: _drop, ...withoutId } = base;
    const pe = new ProcessingElement(stack, "orders", { spec: withoutId as never });
    expect(pe.spec.peId).toBe("orders");
  });
});
