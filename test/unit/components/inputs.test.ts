// The components with spec fields given as Outputs, engine-free: Pulumi's mocks stand in for the engine,
// and a transformation records what each resource is registered with (its props, still Outputs).
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { ProcessingElement, ProcessingElementGroup } from "../../../components";
import { executableFields } from "../../../src/schema/desired";
import { parseProcessingElement } from "../../../src/schema/processingElement";
import { forgetDeclaredPes } from "../../../src/schema/uniqueness";
import { rejection } from "../../support/specError";

beforeAll(async () => {
  await pulumi.runtime.setMocks(
    { newResource: (args) => ({ id: `${args.name}-id`, state: args.inputs }), call: (args) => args.inputs },
    "project",
    "stack",
    false,
  );
});

interface Registered {
  type: string;
  name: string;
  props: Record<string, unknown>;
}

function recorder(): { seen: Registered[]; transformation: pulumi.ResourceTransformation } {
  const seen: Registered[] = [];
  return { seen, transformation: (args) => (seen.push({ type: args.type, name: args.name, props: args.props as Record<string, unknown> }), undefined) };
}

function valueOf<T>(input: unknown): Promise<T> {
  return new Promise((resolve) => pulumi.output(input as pulumi.Input<T>).apply((value) => resolve(value as T)));
}

async function isSecret(input: unknown): Promise<boolean> {
  // Output.isSecret is internal to the SDK (a Promise<boolean>): what a resource's input records.
  return pulumi.Output.isInstance(input) ? (input as unknown as { isSecret: Promise<boolean> }).isSecret : false;
}

const plain = { image: "reseat-demo-workload:v1", env: { A: "1" }, commitInterval: "2s", persistentStore: { kind: "none" as const } };

describe("ProcessingElement with plain fields", () => {
  it("registers its Executable with plain values, exactly executableFields of the spec (existing stacks see no change)", () => {
    forgetDeclaredPes();
    const { seen, transformation } = recorder();
    const pe = new ProcessingElement("in-plain", plain, { transformations: [transformation] });
    const props = seen.find((r) => r.name === "in-plain-executable")!.props;
    const expected = executableFields(parseProcessingElement({ ...plain, peId: "in-plain" })) as Record<string, unknown>;
    for (const [name, value] of Object.entries(expected)) {
      if (name === "volumeName") continue; // the StateVolume's output
      expect(pulumi.Output.isInstance(props[name]), name).toBe(false);
      expect(props[name], name).toEqual(value);
    }
    expect(props.owner).toBe("project/stack/in-plain");
    expect(props.store).toEqual({ kind: "none" });
    expect(pe.spec?.peId).toBe("in-plain");
  });
});

describe("ProcessingElement with Outputs", () => {
  it("an Output image and a secret env value: imageRef waits for the image, env is secret, the rest stays plain", async () => {
    forgetDeclaredPes();
    const { seen, transformation } = recorder();
    const pe = new ProcessingElement(
      "in-out",
      { ...plain, image: pulumi.output("registry.example.com/app:v2"), env: { A: "1", TOKEN: pulumi.secret("s3cret") } },
      { transformations: [transformation] },
    );
    expect(pe.spec).toBeUndefined();
    const props = seen.find((r) => r.name === "in-out-executable")!.props;
    expect(await valueOf(props.imageRef)).toBe("registry.example.com/app:v2");
    expect(await isSecret(props.imageRef)).toBe(false);
    expect(await valueOf(props.env)).toEqual({ A: "1", TOKEN: "s3cret" });
    expect(await isSecret(props.env)).toBe(true);
    expect(props.commitIntervalMs).toBe(2000);
    expect(props.peId).toBe("in-out");
    const volume = seen.find((r) => r.name === "in-out-volume")!.props;
    expect(volume.name).toBe("reseat-in-out-state");
  });

  it("a Promise and an Output in nested places: ports, volume.name, the peId", async () => {
    forgetDeclaredPes();
    const { seen, transformation } = recorder();
    new ProcessingElement(
      "in-nested",
      {
        ...plain,
        peId: pulumi.output("nested-pe"),
        ports: [{ container: Promise.resolve(8080), host: 18080 }],
        volume: { name: pulumi.output("nested-data") },
      },
      { transformations: [transformation] },
    );
    const props = seen.find((r) => r.name === "in-nested-executable")!.props;
    expect(await valueOf(props.ports)).toEqual([{ container: 8080, host: 18080, hostIp: "127.0.0.1", protocol: "tcp" }]);
    expect(await valueOf(props.peId)).toBe("nested-pe");
    expect(await valueOf(props.owner)).toBe("project/stack/nested-pe");
    const volume = seen.find((r) => r.name === "in-nested-volume")!.props;
    expect(await valueOf(volume.name)).toBe("nested-data");
  });

  it("a postgres password given as a plain string is a secret in the store input", async () => {
    forgetDeclaredPes();
    const { seen, transformation } = recorder();
    new ProcessingElement(
      "in-pg",
      { image: pulumi.output("app:v1"), persistentStore: { kind: "postgres", database: "d", user: "u", password: "pw" } },
      { transformations: [transformation] },
    );
    const props = seen.find((r) => r.name === "in-pg-executable")!.props;
    expect(await isSecret(props.store)).toBe(true);
    expect(await valueOf(props.store)).toMatchObject({ kind: "postgres", password: "pw", database: "d" });
  });

  it("known fields are still validated at construction, as one SpecError that Pulumi prints as a RunError", () => {
    forgetDeclaredPes();
    const error = rejection(() => new ProcessingElement("in-bad", { image: pulumi.output("app:v1"), env: { A: 5 as never }, commitInterval: "0s" }));
    expect(error.problems.map((p) => p.field).sort()).toEqual(["commitInterval", "env.A"]);
    expect(pulumi.RunError.isInstance(error)).toBe(true);
  });

  it("an Output where a value must be known names the field", () => {
    forgetDeclaredPes();
    const error = rejection(() => new ProcessingElement("in-k8s", { image: "app:v1", persistentStore: { kind: pulumi.output("none") as never } }));
    expect(error.problems).toEqual([{ field: "persistentStore.kind", expected: expect.stringContaining("known when the program runs") }]);
  });

  it("a collision with another PE is found now when the fields it is judged on are known", () => {
    forgetDeclaredPes();
    new ProcessingElement("in-one", { image: pulumi.output("app:v1"), volume: { name: "shared" } });
    const error = rejection(() => new ProcessingElement("in-two", { image: pulumi.output("app:v1"), volume: { name: "shared" } }));
    expect(error.problems).toEqual([{ field: '"in-two".volume.name', expected: expect.stringContaining("already the state volume") }]);
  });
});

describe("ProcessingElementGroup with Outputs", () => {
  it("substitutes each member's placeholders in template Outputs once they resolve", async () => {
    forgetDeclaredPes();
    const { seen, transformation } = recorder();
    new ProcessingElementGroup(
      "in-g",
      {
        replicas: 2,
        template: { image: pulumi.output("app:v1"), env: { SHARD: pulumi.output("shard-{{ordinal}}"), PLAIN: "{{peId}}" }, persistentStore: { kind: "none" } },
      },
      { transformations: [transformation] },
    );
    const member1 = seen.find((r) => r.name === "in-g-1-executable")!.props;
    expect(await valueOf(member1.env)).toEqual({ SHARD: "shard-1", PLAIN: "in-g-1" });
    expect(await valueOf(member1.imageRef)).toBe("app:v1");
  });
});
