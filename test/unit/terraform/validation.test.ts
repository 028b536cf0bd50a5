// Invalid specs are rejected by the Terraform flavour at synth, with the same SpecError lines as the
// Pulumi flavour. The cases are those of test/integration/validation.test.ts (kept in step by hand).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Testing } from "cdktf";
import { describe, expect, it } from "vitest";
import { ProcessingElement, ReseatTerraformStack } from "../../../components/terraform";
import { SpecError, parseProcessingElement } from "../../../src/spec/processingElement";
import { synthesize } from "../../../stacks/terraform/main";
import { demoSpec } from "../../support/harness";

const PE = "ut-tf-valid";
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

function rejection(work: () => unknown): SpecError {
  try {
    work();
  } catch (error) {
    if (error instanceof SpecError) return error;
    throw error;
  }
  throw new Error("expected a SpecError");
}

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
      const alone = rejection(() => new ProcessingElement(new ReseatTerraformStack(Testing.app(), "u", { processingElements: [], statePath: "/tmp/x.tfstate" }), name, { spec: testCase.spec as never }));
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
