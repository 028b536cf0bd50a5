// The `reseat` package's Pulumi schema (https://www.pulumi.com/docs/iac/extend/packages/schema/): what
// `pulumi package add` generates the Python, YAML, … SDKs from. The components' inputs are derived
// from the zod schemas every flavour validates against (src/schema/), descriptions included, so that
// the SDKs can never drift from the spec: a field added there appears here, with its `.describe` text.
//
// Shape decisions (kept to what the Python and YAML codegen handle well):
// - one object type per nested zod object, named by its path (`kubernetes.status` → KubernetesStatus);
// - the persistent store's discriminated union is one object type, every field optional, `kind` an
//   enum (each field says which kinds take it): the union stays zod's to check, with its messages;
// - durations (string | number) and group placeholders in number fields are `oneOf` primitives;
// - enums are enum types; records are maps of strings; secret-bearing fields are `secret: true`;
// - no schema `default`s: an SDK would send them as if the user had written them (some fields are
//   refused when present, e.g. `network` with `kubernetes`); descriptions state the defaults instead.
import { z } from "zod";
import { processingElementSchema } from "../schema/processingElement";
import { NUMERIC_FIELDS, groupSchema } from "../schema/group";
import { SECRET_VALUE_FIELDS } from "../schema/inputs";
import type { ProcessingElementOutputs } from "../../components/processingElement";
import type { GroupMemberOutputs } from "../../components/processingElementGroup";
import type { FleetMemberState } from "../plan/fleetPlan";
import type { StateVolumeArgs } from "../provider/stateVolume";
import type { ExecutableArgs } from "../provider/executable";
import type { FleetArgs } from "../provider/fleet";
import type { ClaimCheckArgs } from "../provider/claimCheck";
import type { ExecutableObservation } from "../provider/runtime";
import { PACKAGE_NAME } from "../provider/reseatResource";

/** A property (or item, or map value) of the Pulumi schema. */
export interface PropertySpec {
  type?: "string" | "integer" | "number" | "boolean" | "array" | "object";
  $ref?: string;
  items?: PropertySpec;
  additionalProperties?: PropertySpec;
  oneOf?: PropertySpec[];
  description?: string;
  secret?: boolean;
}

interface ObjectTypeSpec {
  type: "object";
  description?: string;
  properties: Record<string, PropertySpec>;
  required?: string[];
}

interface EnumTypeSpec {
  type: "string";
  description?: string;
  enum: { value: string }[];
}

type TypeSpec = ObjectTypeSpec | EnumTypeSpec;

/** The subset of JSON Schema that z.toJSONSchema writes for reseat's zod schemas. */
interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
}

export const token = (name: string) => `${PACKAGE_NAME}:index:${name}`;
const ref = (name: string): PropertySpec => ({ $ref: `#/types/${token(name)}` });
const ANY: PropertySpec = { $ref: "pulumi.json#/Any" };

const pascal = (key: string) => key.charAt(0).toUpperCase() + key.slice(1);
/** Item types of arrays of objects, named as one item (the rest are named `<Array>Item`). */
const ITEM_NAMES: Record<string, string> = { Ports: "PortMapping" };

/** The zod schema as JSON Schema: what a user writes (io "input"), custom values (secrets) as any. */
function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  return z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchema;
}

/** The description a property gets: the zod one, with a scalar default stated when it does not say it. */
function describe(node: JsonSchema): string | undefined {
  const text = node.description?.trim();
  const scalarDefault = ["string", "number", "boolean"].includes(typeof node.default);
  if (text && scalarDefault && !/\bDefault\b/.test(text)) return `${text.replace(/\.?$/, ".")} Default: ${JSON.stringify(node.default)}.`;
  return text;
}

interface Place {
  /** The field's path in a PE spec (array items as "0"): secrets and placeholder fields are found by it. */
  path: string[];
  /** The name a type declared here gets. */
  name: string;
  /** In a group's template: a number field may be a "{{ordinal + N}}" placeholder. */
  templated: boolean;
}

/**
 * Turns the JSON Schema of reseat's zod schemas into Pulumi schema types. Equal types declared twice
 * (the PE's and a template's) are one; a template's type that differs (a number field that takes a
 * placeholder) is declared again as `Template<Name>`.
 */
class TypeCollector {
  readonly types: Record<string, TypeSpec> = {};

  declare(name: string, spec: TypeSpec, templated: boolean): string {
    for (const candidate of templated ? [name, `Template${name}`] : [name]) {
      const existing = this.types[token(candidate)];
      if (!existing) {
        this.types[token(candidate)] = spec;
        return candidate;
      }
      if (JSON.stringify(existing) === JSON.stringify(spec)) return candidate;
    }
    throw new Error(`reseat: two different schema types named ${name}`);
  }

  property(node: JsonSchema, at: Place): PropertySpec {
    const description = describe(node);
    return { ...this.typeOf(node, at), ...(description ? { description } : {}) };
  }

  /** A property's type (without its description). */
  typeOf(node: JsonSchema, at: Place): PropertySpec {
    if (SECRET_VALUE_FIELDS.some((field) => field.join(".") === at.path.join("."))) return { type: "string", secret: true };
    const variants = node.oneOf ?? node.anyOf;
    if (variants) {
      if (variants.every((variant) => variant.properties)) return ref(this.union(variants, at));
      return { oneOf: variants.map((variant) => this.typeOf(variant, at)) };
    }
    if (Array.isArray(node.type)) return { oneOf: node.type.map((type) => this.typeOf({ type }, at)) };
    if (node.enum) {
      const name = this.declare(at.name, { type: "string", enum: node.enum.map((value) => ({ value: String(value) })) }, at.templated);
      return ref(name);
    }
    switch (node.type) {
      case "object":
        if (node.properties) return ref(this.object(node, at));
        return {
          type: "object",
          additionalProperties: node.additionalProperties && node.additionalProperties !== true ? this.typeOf(node.additionalProperties, at) : ANY,
        };
      case "array": {
        const itemName = ITEM_NAMES[at.name] ?? `${at.name}Item`;
        return { type: "array", items: node.items ? this.typeOf(node.items, { ...at, path: [...at.path, "0"], name: itemName }) : ANY };
      }
      case "integer":
      case "number": {
        const type: PropertySpec = { type: node.type };
        const placeholder = at.templated && NUMERIC_FIELDS.some((pattern) => pattern.test(at.path.join(".")));
        return placeholder ? { oneOf: [type, { type: "string" }] } : type;
      }
      case "string":
      case "boolean":
        return { type: node.type };
      default:
        return ANY; // a value zod cannot express in JSON Schema (a custom check)
    }
  }

  /** The properties of an object, each type named after this one (root: after the field alone). */
  properties(node: JsonSchema, at: Place, omit: string[] = []): { properties: Record<string, PropertySpec>; required: string[] } {
    const properties: Record<string, PropertySpec> = {};
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      if (omit.includes(key)) continue;
      properties[key] = this.property(child, { ...at, path: [...at.path, key], name: `${at.path.length ? at.name : ""}${pascal(key)}` });
    }
    return { properties, required: (node.required ?? []).filter((key) => !omit.includes(key)) };
  }

  object(node: JsonSchema, at: Place, omit: string[] = []): string {
    const { properties, required } = this.properties(node, at, omit);
    const description = node.description?.trim();
    return this.declare(
      at.name,
      { type: "object", ...(description ? { description } : {}), properties, ...(required.length ? { required } : {}) },
      at.templated,
    );
  }

  /**
   * A discriminated union (the persistent store) as one object type: every variant's fields, all
   * optional, each saying which kinds take it; the discriminator an enum naming what each kind means.
   */
  union(variants: JsonSchema[], at: Place): string {
    const discriminator = Object.keys(variants[0]!.properties!).find((key) => variants.every((variant) => variant.properties![key]?.const !== undefined));
    if (!discriminator) throw new Error(`reseat: the union at ${at.path.join(".")} has no discriminator`);
    const kindOf = (variant: JsonSchema) => String(variant.properties![discriminator]!.const);
    const fields = new Map<string, { node: JsonSchema; kinds: string[] }>();
    for (const variant of variants) {
      for (const [key, child] of Object.entries(variant.properties!)) {
        if (key === discriminator) continue;
        const entry = fields.get(key) ?? { node: child, kinds: [] };
        entry.kinds.push(kindOf(variant));
        fields.set(key, entry);
      }
    }
    const kindName = `${at.name}${pascal(discriminator)}`;
    const kinds = this.declare(kindName, { type: "string", enum: variants.map((variant) => ({ value: kindOf(variant) })) }, at.templated);
    const properties: Record<string, PropertySpec> = {
      [discriminator]: {
        ...ref(kinds),
        description: `Which kind: ${variants.map((variant) => `"${kindOf(variant)}" (${variant.description?.trim() ?? kindOf(variant)})`).join(", ")}.`,
      },
    };
    for (const [key, { node, kinds: takenBy }] of fields) {
      const property = this.property(node, { ...at, path: [...at.path, key], name: `${at.name}${pascal(key)}` });
      const which = takenBy.length < variants.length ? ` (kind ${takenBy.map((kind) => `"${kind}"`).join(" or ")})` : "";
      properties[key] = { ...property, description: `${property.description ?? key}${which}` };
    }
    return this.declare(at.name, { type: "object", properties }, at.templated);
  }
}

const str = (description: string): PropertySpec => ({ type: "string", description });
const int = (description: string): PropertySpec => ({ type: "integer", description });
const bool = (description: string): PropertySpec => ({ type: "boolean", description });
const any = (description: string): PropertySpec => ({ ...ANY, description });

/** A processing element's outputs (docs/spec.md's outputs table), as the components report them. */
const PE_OUTPUTS: { [K in keyof ProcessingElementOutputs]-?: PropertySpec } = {
  peId: str("The PE's identity, unchanged across replacements."),
  generation: int("+1 for each new executable; durable in the volume."),
  executableId: str("The current executable (container or pod)."),
  executableName: str('The current executable\'s name ("reseat-<peId>-g<generation>").'),
  volumeName: str("The kept state volume."),
  host: str("The engine host the executable runs on (always the volume's host)."),
  imageId: str("The resolved image."),
  commitIntervalMs: int("The commit interval in force, in milliseconds."),
  replacedAt: str("When this generation was created."),
  readyAt: str("When this generation was seen ready."),
  lastCommit: { ...ref("LastCommit"), description: "The newest commit in the persistent store ({seq, at, bytes}), or null." },
  commitLagMs: int("How long acknowledged writes have waited to reach the store: 0 when the last commit holds every write."),
  resumedFrom: str('How the current executable started: "local" (the kept volume), "persistent" (the newest valid commit) or "empty".'),
  resumedSeq: int("The write sequence the current executable resumed at."),
  lastCommitError: str("Why the last commit failed, or null."),
  reverted: bool("The last replacement failed and the previous spec serves again."),
  failedSpecHash: str("The spec hash whose replacement failed, or null."),
};

const LAST_COMMIT: ObjectTypeSpec = {
  type: "object",
  description: "A commit in the persistent store.",
  properties: { seq: int("The write sequence it holds."), at: str("When it was made."), bytes: int("Its size in bytes.") },
  required: ["seq", "at", "bytes"],
};

/** A group member's outputs: its PE's, and where it stands in the rollout. */
const GROUP_MEMBER_OUTPUTS: { [K in keyof GroupMemberOutputs]-?: PropertySpec } = {
  ...PE_OUTPUTS,
  ordinal: int("The member's ordinal (its peId is <group>-<ordinal>)."),
  imageRef: str("The image reference the member runs."),
  revision: str("A hash of everything the member's executable runs with."),
  replaceRevision: str("A hash of the fields whose change replaces the member's executable."),
  updated: bool("True when the member runs the current template (false for members held back by partition)."),
};

/** A fleet member as the fleet observes it. */
const FLEET_MEMBER: { [K in keyof FleetMemberState]-?: PropertySpec } = {
  peId: PE_OUTPUTS.peId,
  ordinal: GROUP_MEMBER_OUTPUTS.ordinal,
  executableId: PE_OUTPUTS.executableId,
  generation: PE_OUTPUTS.generation,
  host: PE_OUTPUTS.host,
  imageRef: GROUP_MEMBER_OUTPUTS.imageRef,
  specHash: str("The spec hash its executable runs."),
  replacedAt: PE_OUTPUTS.replacedAt,
  readyAt: PE_OUTPUTS.readyAt,
  reverted: PE_OUTPUTS.reverted,
  failedSpecHash: PE_OUTPUTS.failedSpecHash,
  updated: GROUP_MEMBER_OUTPUTS.updated,
  lastCommit: PE_OUTPUTS.lastCommit,
  commitLagMs: PE_OUTPUTS.commitLagMs,
  resumedFrom: PE_OUTPUTS.resumedFrom,
  resumedSeq: PE_OUTPUTS.resumedSeq,
  lastCommitError: PE_OUTPUTS.lastCommitError,
};

/** The outputs that are never null (the rest are null until known, or when there is nothing to say). */
const NEVER_NULL = [
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
  "reverted",
];
const requiredOf = (properties: Record<string, PropertySpec>, extra: string[] = []) =>
  Object.keys(properties).filter((key) => NEVER_NULL.includes(key) || extra.includes(key));

// The resources the components declare. No program declares them itself: their properties are typed
// loosely (nested values as Any), enough for the engine to carry them.
const ENGINE_CREDENTIALS: PropertySpec = { ...ANY, secret: true, description: "Secrets to reach the engine and the image's registry." };
const ENGINE = any("The engine the PE lives on (Docker host or Kubernetes namespace and context).");
const ENGINE_IDENTITY = any("The engine the resource was created on, compared on every operation.");
const REPLACE_ON_CHANGES: PropertySpec = { type: "array", items: { type: "string" }, description: "The resource's replaceOnChanges option, seen by its diff." };

const STATE_VOLUME_INPUTS: { [K in keyof StateVolumeArgs]-?: PropertySpec } = {
  peId: str("The PE the volume belongs to."),
  name: str("The volume's name."),
  driver: str("The volume driver."),
  owner: str('The one owner the volume is claimed for: "<project>/<stack>/<peId>".'),
  engine: ENGINE,
  engineCredentials: ENGINE_CREDENTIALS,
};

const EXECUTABLE_INPUTS: { [K in keyof ExecutableArgs]-?: PropertySpec } = {
  peId: str("The PE."),
  owner: STATE_VOLUME_INPUTS.owner,
  imageRef: str("The image reference."),
  command: { type: "array", items: { type: "string" }, description: "The command and its arguments." },
  env: { type: "object", additionalProperties: { type: "string" }, description: "The workload's environment." },
  ports: { type: "array", items: ANY, description: "Published ports." },
  network: str("The container's network."),
  resources: any("Resource limits."),
  volumeName: str("The state volume."),
  mountPath: str("Where the state volume is mounted."),
  stop: any("How the executable is stopped."),
  readiness: any("When the executable counts as ready."),
  commitIntervalMs: int("The commit interval, in milliseconds."),
  store: any("Where the workload commits its state."),
  failureBackoff: any("How re-creation is paced after repeated failures."),
  onFailedReplacement: str("What a failed replacement does."),
  handover: str("How a replacement hands the volume over."),
  engine: ENGINE,
  kubernetes: any("Pod-level settings on Kubernetes."),
  user: any("The workload's user and group."),
  declaredBy: str("The token of the resource this executable serves."),
  secretEnv: { type: "array", items: { type: "string" }, description: "Env names whose values are secrets." },
  engineCredentials: ENGINE_CREDENTIALS,
};

const EXECUTABLE_OBSERVED: { [K in keyof ExecutableObservation | "imageId" | "engineIdentity"]-?: PropertySpec } = {
  ...PE_OUTPUTS,
  commitStatusAt: str("When the commit status was read."),
  engineIdentity: ENGINE_IDENTITY,
};

const FLEET_INPUTS: { [K in keyof FleetArgs]-?: PropertySpec } = {
  name: str("The fleet's name: members are <name>-<ordinal>."),
  replicas: int("How many members."),
  template: any("A PE spec without peId (placeholders allowed)."),
  rollout: any("How a changed template rolls out."),
  project: str("The Pulumi project (members' volumes are claimed for <project>/<stack>/<peId>)."),
  stack: str("The Pulumi stack."),
  secretEnv: EXECUTABLE_INPUTS.secretEnv,
};

const CLAIM_CHECK_INPUTS: { [K in keyof ClaimCheckArgs]-?: PropertySpec } = {
  peId: str("The PE the claim belongs to."),
  role: str('"state-volume" or "store-volume".'),
  name: str("The claim's name."),
  namespace: str("The claim's namespace."),
  storageClassName: str("The claim's StorageClass."),
  size: str("The claim's requested size."),
  owner: STATE_VOLUME_INPUTS.owner,
  engine: ENGINE,
};

function customResource(description: string, inputs: Record<string, PropertySpec>, observed: Record<string, PropertySpec> = {}) {
  return { description, inputProperties: inputs, properties: { ...inputs, ...observed } };
}

/** The `reseat` package's schema at `version`. */
export function packageSchema(version: string): Record<string, unknown> {
  const collector = new TypeCollector();
  collector.types[token("LastCommit")] = LAST_COMMIT;

  const pe = jsonSchemaOf(processingElementSchema);
  const peInputs = collector.properties(pe, { path: [], name: "", templated: false });

  const group = jsonSchemaOf(groupSchema);
  const groupFields = collector.properties(group, { path: [], name: "", templated: false }, ["name", "template"]);
  const templateName = collector.object(pe, { path: [], name: "ProcessingElementTemplate", templated: true }, ["peId"]);
  const templateDescription = describe(group.properties!.template!);
  const groupInputs = {
    ...groupFields.properties,
    template: { ...ref(templateName), ...(templateDescription ? { description: templateDescription } : {}) },
  };
  const groupRequired = ["replicas", "template"];
  const updatedReplicas = int("How many members run the current template.");

  collector.types[token("GroupMemberOutput")] = {
    type: "object",
    description: "One member of a group.",
    properties: GROUP_MEMBER_OUTPUTS,
    required: requiredOf(GROUP_MEMBER_OUTPUTS, ["ordinal", "imageRef", "revision", "replaceRevision", "updated"]),
  };
  collector.types[token("FleetMember")] = {
    type: "object",
    description: "One member of a fleet.",
    properties: FLEET_MEMBER,
    required: requiredOf(FLEET_MEMBER, ["ordinal", "imageRef", "specHash", "updated"]),
  };

  return {
    name: PACKAGE_NAME,
    version,
    displayName: "reseat",
    description: "Processing elements: containers with a kept state volume, committed to a persistent store, replaced without losing their state.",
    keywords: ["category/infrastructure", "kind/component", "docker", "kubernetes"],
    license: "Apache-2.0",
    language: {
      nodejs: { dependencies: { "@pulumi/pulumi": "^3.0.0" }, respectSchemaVersion: true },
      // The SDK's version is the package's; the codegen writes the pulumi SDK it needs (>= 3.269: exists_resource).
      python: { respectSchemaVersion: true, pyproject: { enabled: true } },
    },
    config: {},
    provider: { description: "The reseat provider: serves the components and the resources they declare." },
    types: collector.types,
    resources: {
      [token("ProcessingElement")]: {
        isComponent: true,
        description: "A processing element: a container with a kept state volume, replaced without losing its state.",
        inputProperties: peInputs.properties,
        requiredInputs: peInputs.required.filter((key) => key !== "peId"),
        properties: PE_OUTPUTS,
        required: requiredOf(PE_OUTPUTS),
      },
      [token("ProcessingElementGroup")]: {
        isComponent: true,
        description: "N processing elements from one template, one resource each, rolled out in order with at most maxUnavailable replaced at once.",
        inputProperties: groupInputs,
        requiredInputs: groupRequired,
        properties: {
          memberOutputs: { type: "array", items: ref("GroupMemberOutput"), description: "Each member's outputs, in ordinal order." },
          updatedReplicas,
        },
        required: ["memberOutputs", "updatedReplicas"],
      },
      [token("ProcessingElementFleet")]: {
        isComponent: true,
        description: "N processing elements from one template in one Pulumi resource, rolled out by reseat itself.",
        inputProperties: groupInputs,
        requiredInputs: groupRequired,
        properties: {
          members: { type: "array", items: ref("FleetMember"), description: "Each member as it runs, in ordinal order." },
          updatedReplicas,
        },
        required: ["members", "updatedReplicas"],
      },
      [token("StateVolume")]: customResource("A PE's state volume (declared by ProcessingElement).", STATE_VOLUME_INPUTS, {
        createdAt: str("When the volume was created."),
        adopted: bool("The volume existed and was adopted."),
        engineIdentity: ENGINE_IDENTITY,
      }),
      [token("Executable")]: customResource(
        "One executable generation of a PE (declared by ProcessingElement).",
        { ...EXECUTABLE_INPUTS, replaceOnChanges: REPLACE_ON_CHANGES },
        EXECUTABLE_OBSERVED,
      ),
      [token("Fleet")]: customResource(
        "A fleet's members in one resource (declared by ProcessingElementFleet).",
        { ...FLEET_INPUTS, replaceOnChanges: REPLACE_ON_CHANGES },
        {
          engine: ENGINE,
          imageIds: { type: "object", additionalProperties: { type: "string" }, description: "Each image reference resolved once." },
          members: { type: "array", items: ref("FleetMember"), description: "Each member as it runs, in ordinal order." },
          declaredBy: EXECUTABLE_INPUTS.declaredBy,
          engineIdentity: ENGINE_IDENTITY,
        },
      ),
      [token("ClaimCheck")]: customResource("Guards a PE's PersistentVolumeClaim on Kubernetes (declared by ProcessingElement).", CLAIM_CHECK_INPUTS),
    },
  };
}
