// The spec field `handover`: "staged" by default and then absent from the desired spec (spec hashes as
// before the field); "standby" reaches the workload as RESEAT_STANDBY=1; anything else is refused naming the
// field, in a PE, a group's template and the Terraform flavour (which has no routine to hand over with).
import { describe, expect, it } from "vitest";
import { RESEAT_ENV, workloadEnv } from "@reseat/state/contract";
import { executableDesired } from "../../../src/schema/desired";
import { parseGroup } from "../../../src/schema/group";
import { SpecError, parseProcessingElement } from "../../../src/schema/processingElement";
import { validateExecutableInputs } from "../../../src/schema/inputs";
import { validateTerraformProcessingElement } from "../../../components/terraform/processingElement";
import { problemsOf } from "./problems";

const minimal = { peId: "orders-0", image: "reseat-session:1" };

describe("handover", () => {
  it('defaults to "staged", which the desired spec leaves out', () => {
    const spec = parseProcessingElement(minimal);
    expect(spec.handover).toBe("staged");
    expect(executableDesired(spec, "sha256:x")).not.toHaveProperty("handover");
    expect(executableDesired(parseProcessingElement({ ...minimal, handover: "staged" }), "sha256:x")).not.toHaveProperty("handover");
  });

  it('"standby" is in the desired spec and starts every executable as a standby (RESEAT_STANDBY=1)', () => {
    const desired = executableDesired(parseProcessingElement({ ...minimal, handover: "standby" }), "sha256:x");
    expect(desired.handover).toBe("standby");
    expect(workloadEnv(desired, 3, undefined)[RESEAT_ENV.standby]).toBe("1");
    expect(workloadEnv(executableDesired(parseProcessingElement(minimal), "sha256:x"), 3, undefined)).not.toHaveProperty(RESEAT_ENV.standby);
  });

  it("refuses another value, naming the field", () => {
    expect(problemsOf({ ...minimal, handover: "bogus" })).toEqual([{ field: "handover", expected: 'expected "standby" or "staged"' }]);
    expect(() => validateExecutableInputs({ peId: "orders-0", handover: "bogus" })).toThrow(/handover: expected "standby" or "staged"/);
  });

  it("a group's template takes it, and refuses a bad one naming the member's field", () => {
    const group = parseGroup({ name: "g", replicas: 2, template: { image: "reseat-session:1", handover: "standby" } });
    expect(group.members.map((m) => m.spec.handover)).toEqual(["standby", "standby"]);
    expect(() => parseGroup({ name: "g", replicas: 1, template: { image: "reseat-session:1", handover: "bogus" } })).toThrow(/handover/);
  });

  it('the Terraform flavour refuses "standby" (it replaces destroy-then-create), naming the field', () => {
    expect(validateTerraformProcessingElement("pe", { image: "reseat-session:1", handover: "staged" }).handover).toBe("staged");
    const error = (() => {
      try {
        validateTerraformProcessingElement("pe", { image: "reseat-session:1", handover: "standby" });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(SpecError);
    expect((error as SpecError).problems).toEqual([{ field: "handover", expected: expect.stringMatching(/^expected "staged" in the Terraform flavour/) }]);
  });
});
