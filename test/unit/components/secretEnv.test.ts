// Which env values are secret, as the components tell the Executable (its `secretEnv` input) and the
// Fleet: engine-free, Pulumi's mocks stand in for the engine and a transformation records the props.
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { ProcessingElement, ProcessingElementFleet, ProcessingElementGroup } from "../../../components";
import { forgetDeclaredPes } from "../../../src/schema/uniqueness";

beforeAll(async () => {
  // A Fleet's members are its provider's outputs: none here.
  const state = (args: pulumi.runtime.MockResourceArgs) => (args.type.endsWith(":Fleet") ? { ...args.inputs, members: [] } : args.inputs);
  await pulumi.runtime.setMocks(
    { newResource: (args) => ({ id: `${args.name}-id`, state: state(args) }), call: (args) => args.inputs },
    "project",
    "stack",
    false,
  );
});

function recorder(): { seen: Map<string, Record<string, unknown>>; transformation: pulumi.ResourceTransformation } {
  const seen = new Map<string, Record<string, unknown>>();
  return { seen, transformation: (args) => (seen.set(args.name, args.props as Record<string, unknown>), undefined) };
}

function valueOf<T>(input: unknown): Promise<T> {
  return new Promise((resolve) => pulumi.output(input as pulumi.Input<T>).apply((value) => resolve(value as T)));
}

function isSecret(input: unknown): Promise<boolean> {
  return pulumi.Output.isInstance(input) ? pulumi.isSecret(input) : Promise.resolve(false);
}

const base = { image: "reseat-demo-workload:v1", persistentStore: { kind: "none" as const } };

function executableProps(name: string, env: unknown): Record<string, unknown> {
  forgetDeclaredPes();
  const { seen, transformation } = recorder();
  new ProcessingElement(name, { ...base, env: env as never }, { transformations: [transformation] });
  return seen.get(`${name}-executable`)!;
}

describe("ProcessingElement: secretEnv", () => {
  it("is no input at all for a plain env (an existing stack's inputs stay as they were)", () => {
    expect("secretEnv" in executableProps("se-plain", { A: "1" })).toBe(false);
    expect("secretEnv" in executableProps("se-none", undefined)).toBe(false);
  });

  it("resolves to undefined when env Outputs hold no secret (no input recorded)", async () => {
    const props = executableProps("se-out", { A: pulumi.output("1"), B: Promise.resolve("2") });
    expect(await valueOf(props.secretEnv)).toBeUndefined();
  });

  it("names each env value that is a secret Output, sorted, and is itself no secret", async () => {
    const props = executableProps("se-some", { Z_TOKEN: pulumi.secret("z"), PORT: "8080", A_KEY: pulumi.secret("a"), UP: pulumi.output("u") });
    expect(await valueOf(props.secretEnv)).toEqual(["A_KEY", "Z_TOKEN"]);
    expect(await isSecret(props.secretEnv)).toBe(false);
    expect(await isSecret(props.env)).toBe(true);
  });

  it("names every env value when the env object itself is a secret", async () => {
    const props = executableProps("se-whole", pulumi.secret({ B: "2", A: "1" }));
    expect(await valueOf(props.secretEnv)).toEqual(["A", "B"]);
    expect(await isSecret(props.secretEnv)).toBe(false);
  });

  it("a group's members get it through their ProcessingElement (placeholders substituted in the secret)", async () => {
    forgetDeclaredPes();
    const { seen, transformation } = recorder();
    new ProcessingElementGroup(
      "se-group",
      { replicas: 2, template: { ...base, env: { PORT: "{{ordinal + 9000}}", TOKEN: pulumi.secret("t-{{ordinal}}") } } },
      { transformations: [transformation] },
    );
    for (const ordinal of [0, 1]) {
      const props = seen.get(`se-group-${ordinal}-executable`)!;
      expect(await valueOf(props.secretEnv)).toEqual(["TOKEN"]);
      expect(await valueOf(props.env)).toEqual({ PORT: String(9000 + ordinal), TOKEN: `t-${ordinal}` });
      expect(await isSecret(props.env)).toBe(true);
    }
  });

  it("a fleet gives the template's secret env names to its Fleet resource (none: no input)", async () => {
    const { seen, transformation } = recorder();
    new ProcessingElementFleet(
      "se-fleet",
      { replicas: 2, template: { ...base, env: { PORT: "{{ordinal + 9100}}", TOKEN: pulumi.secret("t") } } },
      { transformations: [transformation] },
    );
    expect(await valueOf(seen.get("se-fleet-fleet")!.secretEnv)).toEqual(["TOKEN"]);
    new ProcessingElementFleet("se-fleet-plain", { replicas: 1, template: { ...base, env: { PORT: "9200" } } }, { transformations: [transformation] });
    expect("secretEnv" in seen.get("se-fleet-plain-fleet")!).toBe(false);
  });
});
