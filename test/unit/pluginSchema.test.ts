// The `reseat` package's Pulumi schema (src/plugin/schema.ts): derived from the zod spec, every field
// described, secrets marked, every type reference resolving. (Generating SDKs from it with the Pulumi
// codegen is checked outside the unit tests: it needs the Pulumi toolchain.)
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { packageSchema, token } from "../../src/plugin/schema";
import { processingElementSchema } from "../../src/schema/processingElement";
import { groupSchema } from "../../src/schema/group";
import { SECRET_VALUE_FIELDS } from "../../src/schema/inputs";

interface Property {
  type?: string;
  $ref?: string;
  items?: Property;
  additionalProperties?: Property;
  oneOf?: Property[];
  description?: string;
  secret?: boolean;
}
interface ObjectType {
  type: string;
  properties?: Record<string, Property>;
  required?: string[];
  enum?: { value: string }[];
}
interface Resource {
  isComponent?: boolean;
  description?: string;
  inputProperties: Record<string, Property>;
  requiredInputs?: string[];
  properties: Record<string, Property>;
  required?: string[];
}

const schema = packageSchema("1.2.3") as {
  name: string;
  version: string;
  license: string;
  types: Record<string, ObjectType>;
  resources: Record<string, Resource>;
  language: Record<string, unknown>;
};
const resource = (name: string) => schema.resources[token(name)]!;

/** The object type a property refers to (through an array's items too), if any. */
function typeOf(property: Property): ObjectType | undefined {
  const target = property.$ref ?? property.items?.$ref;
  if (!target?.startsWith("#/types/")) return undefined;
  return schema.types[target.slice("#/types/".length)];
}

/** The property at `path` below a resource's inputs (array items as "0"), following type references. */
function propertyAt(properties: Record<string, Property>, path: readonly string[]): Property | undefined {
  let current: Property | undefined = properties[path[0]!];
  for (const key of path.slice(1)) {
    if (key === "0") continue; // the array's items: typeOf follows them
    current = current && typeOf(current)?.properties?.[key];
  }
  return current;
}

/** Every field path of a JSON Schema (objects, array items, every variant of a union). */
function fieldPaths(node: Record<string, unknown>, at: string[] = []): string[][] {
  const paths: string[][] = [];
  const properties = node.properties as Record<string, Record<string, unknown>> | undefined;
  for (const [key, child] of Object.entries(properties ?? {})) {
    paths.push([...at, key]);
    paths.push(...fieldPaths(child, [...at, key]));
  }
  if (node.items) paths.push(...fieldPaths(node.items as Record<string, unknown>, [...at, "0"]));
  for (const variant of [...((node.oneOf as Record<string, unknown>[]) ?? []), ...((node.anyOf as Record<string, unknown>[]) ?? [])]) {
    paths.push(...fieldPaths(variant, at));
  }
  return paths;
}

describe("the reseat package schema", () => {
  it("is plain JSON naming the package, its components and the resources they declare", () => {
    expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
    expect(schema).toMatchObject({ name: "reseat", version: "1.2.3", license: "Apache-2.0" });
    // Generated SDKs carry the package's version (else the codegen writes 0.0.0).
    expect(schema.language).toMatchObject({ nodejs: { respectSchemaVersion: true }, python: { respectSchemaVersion: true, pyproject: { enabled: true } } });
    for (const name of ["ProcessingElement", "ProcessingElementGroup", "ProcessingElementFleet"]) expect(resource(name).isComponent).toBe(true);
    for (const name of ["StateVolume", "Executable", "Fleet", "ClaimCheck"]) {
      expect(resource(name).isComponent).toBeUndefined();
      expect(Object.keys(resource(name).inputProperties).length).toBeGreaterThan(0);
    }
    expect(Object.keys(schema.resources).sort()).toHaveLength(7);
  });

  it("takes every field of the PE spec, at every depth, with the zod schema's description", () => {
    const inputs = resource("ProcessingElement").inputProperties;
    expect(Object.keys(inputs).sort()).toEqual(Object.keys(processingElementSchema.shape).sort());
    for (const [key, field] of Object.entries(processingElementSchema.shape)) {
      // The zod text itself (a default the text does not state is added after it).
      expect(field.description, key).toBeTruthy();
      expect(inputs[key]!.description!.startsWith(field.description!.replace(/\.$/, "")), key).toBe(true);
    }
    const json = z.toJSONSchema(processingElementSchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
    const paths = fieldPaths(json).filter((path) => path.at(-1) !== "0");
    expect(paths.length).toBeGreaterThan(60);
    for (const path of paths) {
      const property = propertyAt(inputs, path);
      expect(property, path.join(".")).toBeDefined();
      expect(property!.description?.trim(), path.join(".")).toBeTruthy();
    }
    expect(resource("ProcessingElement").requiredInputs).toEqual(["image"]);
  });

  it("describes every property of every type and resource", () => {
    const undescribed: string[] = [];
    for (const [name, type] of Object.entries(schema.types)) {
      for (const [key, property] of Object.entries(type.properties ?? {})) if (!property.description?.trim()) undescribed.push(`${name}.${key}`);
    }
    for (const [name, spec] of Object.entries(schema.resources)) {
      for (const [key, property] of Object.entries({ ...spec.inputProperties, ...spec.properties })) {
        if (!property.description?.trim()) undescribed.push(`${name}.${key}`);
      }
    }
    expect(undescribed).toEqual([]);
  });

  it("marks the secret values secret, in a PE and in a group's or fleet's template", () => {
    expect(SECRET_VALUE_FIELDS.length).toBe(4);
    for (const path of SECRET_VALUE_FIELDS) {
      expect(propertyAt(resource("ProcessingElement").inputProperties, path), path.join(".")).toMatchObject({ type: "string", secret: true });
      for (const group of ["ProcessingElementGroup", "ProcessingElementFleet"]) {
        expect(propertyAt(resource(group).inputProperties, ["template", ...path]), `${group} template.${path.join(".")}`).toMatchObject({ secret: true });
      }
    }
    for (const name of ["StateVolume", "Executable"]) expect(resource(name).inputProperties.engineCredentials).toMatchObject({ secret: true });
    // Nothing else is: a config key naming a secret is not one.
    expect(propertyAt(resource("ProcessingElement").inputProperties, ["persistentStore", "passwordSecret"])?.secret).toBeUndefined();
  });

  it("resolves every type reference, and states no defaults (an SDK would send them as if written)", () => {
    const text = JSON.stringify(schema);
    const refs = [...text.matchAll(/"\$ref":"([^"]+)"/g)].map((match) => match[1]!);
    expect(refs.length).toBeGreaterThan(20);
    for (const target of refs) {
      if (target === "pulumi.json#/Any") continue;
      expect(target.startsWith("#/types/reseat:index:"), target).toBe(true);
      expect(schema.types[target.slice("#/types/".length)], target).toBeDefined();
    }
    expect(text).not.toMatch(/"default":/);
  });

  it("gives durations, maps, enums and the persistent store's kinds the shapes the SDKs take", () => {
    const inputs = resource("ProcessingElement").inputProperties;
    expect(inputs.commitInterval).toMatchObject({ oneOf: [{ type: "string" }, { type: "number" }] });
    expect(inputs.env).toMatchObject({ type: "object", additionalProperties: { type: "string" } });
    expect(propertyAt(inputs, ["kubernetes", "nodeSelector"])).toMatchObject({ type: "object", additionalProperties: { type: "string" } });
    expect(schema.types[token("Network")]).toMatchObject({ type: "string", enum: [{ value: "bridge" }, { value: "host" }, { value: "none" }] });
    const store = typeOf(inputs.persistentStore!)!;
    expect(store.required).toBeUndefined();
    expect(Object.keys(store.properties!)).toEqual(expect.arrayContaining(["kind", "volume", "hostPath", "database", "user", "password", "keep"]));
    expect(typeOf(store.properties!.kind!)?.enum).toEqual([{ value: "directory" }, { value: "postgres" }, { value: "none" }]);
    expect(store.properties!.database!.description).toMatch(/kind "postgres"/);
  });

  it("takes a group's and a fleet's replicas, template (placeholders in number fields) and rollout", () => {
    for (const name of ["ProcessingElementGroup", "ProcessingElementFleet"]) {
      const group = resource(name);
      expect(Object.keys(group.inputProperties).sort()).toEqual(["replicas", "rollout", "template"]);
      expect(group.requiredInputs).toEqual(["replicas", "template"]);
      expect(group.inputProperties.replicas).toMatchObject({ type: "integer", description: groupSchema.shape.replicas.description });
      expect(group.inputProperties.rollout!.description).toBe(groupSchema.shape.rollout.description);
      const template = typeOf(group.inputProperties.template!)!;
      expect(Object.keys(template.properties!).sort()).toEqual(
        Object.keys(processingElementSchema.shape)
          .filter((key) => key !== "peId")
          .sort(),
      );
      expect(propertyAt(group.inputProperties, ["template", "ports", "0", "container"])).toMatchObject({ oneOf: [{ type: "integer" }, { type: "string" }] });
      expect(propertyAt(group.inputProperties, ["rollout", "maxUnavailable"])).toMatchObject({ oneOf: [{ type: "integer" }, { type: "string" }] });
    }
    // A PE's own ports take numbers only.
    expect(propertyAt(resource("ProcessingElement").inputProperties, ["ports", "0", "container"])).toMatchObject({ type: "integer" });
  });

  it("reports the outputs the components expose", () => {
    expect(Object.keys(resource("ProcessingElement").properties).sort()).toEqual(
      [
        "peId",
        "generation",
        "executableId",
        "executableName",
        "volumeName",
        "host",
        "imageId",
        "commitIntervalMs",
        "replacedAt",
        "readyAt",
        "lastCommit",
        "commitLagMs",
        "resumedFrom",
        "resumedSeq",
        "lastCommitError",
        "reverted",
        "failedSpecHash",
      ].sort(),
    );
    expect(typeOf(resource("ProcessingElement").properties.lastCommit!)?.properties).toMatchObject({
      seq: { type: "integer" },
      at: { type: "string" },
      bytes: { type: "integer" },
    });
    const group = resource("ProcessingElementGroup").properties;
    expect(Object.keys(group).sort()).toEqual(["memberOutputs", "updatedReplicas"]);
    expect(typeOf(group.memberOutputs!)?.properties).toHaveProperty("ordinal");
    const fleet = resource("ProcessingElementFleet").properties;
    expect(Object.keys(fleet).sort()).toEqual(["members", "updatedReplicas"]);
    expect(typeOf(fleet.members!)?.properties).toHaveProperty("specHash");
  });
});

describe("the spec docs and the schema's descriptions come from one spec", () => {
  it("every top-level field of the zod spec is in docs/spec.md's field table (kubernetes: docs/kubernetes.md), and nothing else is", async () => {
    const { readFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const docs = readFileSync(join(__dirname, "..", "..", "docs", "spec.md"), "utf8");
    const table = docs.slice(docs.indexOf("| field | default | meaning |"), docs.indexOf("What changes do:"));
    const documented = new Set([...table.matchAll(/^\| ([^|]+) \|/gm)].flatMap((row) => [...row[1]!.matchAll(/`([A-Za-z]+)[.`]/g)].map((m) => m[1]!)));
    documented.delete("field");
    const fields = Object.keys(processingElementSchema.shape).filter((field) => field !== "kubernetes");
    expect([...documented].sort()).toEqual(fields.sort());
    expect(readFileSync(join(__dirname, "..", "..", "docs", "kubernetes.md"), "utf8")).toContain("kubernetes.");
  });
});
