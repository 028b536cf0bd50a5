// Resource options that make Pulumi replace something reach what is replaced (each PE's Executable,
// a fleet's Fleet), never the component. Engine-free: Pulumi's mocks stand in for the engine, and a
// transformation on the component records the options each resource is registered with.
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { ProcessingElement, ProcessingElementGroup, ProcessingElementFleet } from "../../../components";
import { splitReplacementOptions } from "../../../components/processingElement";
import { Executable } from "../../../src/provider/executable";
import { Fleet } from "../../../src/provider/fleet";
import { forgetDeclaredPes } from "../../../src/schema/uniqueness";

beforeAll(async () => {
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => ({ id: `${args.name}-id`, state: args.inputs }),
      call: (args) => args.inputs,
    },
    "project",
    "stack",
    true,
  );
});

interface Registered {
  type: string;
  name: string;
  opts: pulumi.ResourceOptions;
}

/** A transformation that records every resource it sees (the component itself and its children). */
function recorder(): { seen: Registered[]; transformation: pulumi.ResourceTransformation } {
  const seen: Registered[] = [];
  return { seen, transformation: (args) => (seen.push({ type: args.type, name: args.name, opts: args.opts }), undefined) };
}

const spec = { image: "nginx:1.27", persistentStore: { kind: "none" as const } };

describe("splitReplacementOptions", () => {
  it("takes replaceOnChanges, replacementTrigger and replaceWith off the component's options", () => {
    class Other extends pulumi.CustomResource {}
    const other = new Other("test:index:Other", "other", {});
    const { own, replacement } = splitReplacementOptions({ protect: true, replaceOnChanges: ["env"], replacementTrigger: "v2", replaceWith: [other] });
    expect(own).toEqual({ protect: true });
    expect(replacement.replaceOnChanges).toEqual(["env"]);
    expect(replacement.replacementTrigger).toBe("v2");
    expect(replacement.replaceWith).toEqual([other]);
  });

  it("leaves options without them alone", () => {
    expect(splitReplacementOptions({ protect: true })).toEqual({ own: { protect: true }, replacement: {} });
    expect(splitReplacementOptions(undefined)).toEqual({ own: {}, replacement: {} });
  });
});

describe("replacement options on components", () => {
  it("a PE gives them to its Executable, not to itself", () => {
    forgetDeclaredPes();
    const { seen, transformation } = recorder();
    const pe = new ProcessingElement("ro-a", spec, {
      transformations: [transformation],
      replaceOnChanges: ["env", "commitIntervalMs"],
      replacementTrigger: "t1",
    });
    const component = seen.find((r) => r.type === "reseat:index:ProcessingElement")!;
    expect(component.opts.replaceOnChanges).toBeUndefined();
    expect(component.opts.replacementTrigger).toBeUndefined();
    const executable = seen.find((r) => r.name === "ro-a-executable")!;
    expect(executable.opts.replaceOnChanges).toEqual(["env", "commitIntervalMs"]);
    expect(executable.opts.replacementTrigger).toBe("t1");
    expect(pe.executable).toBeInstanceOf(Executable);
    // The volume is never replaced by these options.
    expect(seen.find((r) => r.name === "ro-a-volume")!.opts.replaceOnChanges).toBeUndefined();
  });

  it("replaceWith another PE means with that PE's Executable", () => {
    forgetDeclaredPes();
    const a = new ProcessingElement("ro-b", spec);
    const { seen, transformation } = recorder();
    new ProcessingElement("ro-c", spec, { transformations: [transformation], replaceWith: [a] });
    expect(seen.find((r) => r.name === "ro-c-executable")!.opts.replaceWith).toEqual([a.executable]);
    expect(seen.find((r) => r.type === "reseat:index:ProcessingElement")!.opts.replaceWith).toBeUndefined();
  });

  it("a group gives them to every member's Executable", () => {
    forgetDeclaredPes();
    const { seen, transformation } = recorder();
    new ProcessingElementGroup("ro-g", { replicas: 2, template: spec }, { transformations: [transformation], replacementTrigger: "t2" });
    const executables = seen.filter((r) => r.name.endsWith("-executable"));
    expect(executables.map((r) => r.name).sort()).toEqual(["ro-g-0-executable", "ro-g-1-executable"]);
    for (const executable of executables) expect(executable.opts.replacementTrigger).toBe("t2");
    for (const component of seen.filter((r) => !r.name.endsWith("-executable") && !r.name.endsWith("-volume")))
      expect(component.opts.replacementTrigger).toBeUndefined();
  });

  it("a fleet gives them to its Fleet resource", () => {
    const { seen, transformation } = recorder();
    const fleet = new ProcessingElementFleet("ro-f", { replicas: 1, template: spec }, { transformations: [transformation], replaceOnChanges: ["template"] });
    expect(fleet.fleet).toBeInstanceOf(Fleet);
    expect(seen.find((r) => r.name === "ro-f-fleet")!.opts.replaceOnChanges).toEqual(["template"]);
    expect(seen.find((r) => r.type === "reseat:index:ProcessingElementFleet")!.opts.replaceOnChanges).toBeUndefined();
  });
});
