// The `reseat` provider plugin's provider: the same runtime the dynamic provider serves to Node
// programs (src/provider/runtime.ts `providers`: one implementation of check/diff/create/read/update/
// delete), dispatched by type token, plus `construct` for the components, so that a program in any
// Pulumi language declares PEs, groups and fleets (docs/languages.md).
import * as pulumi from "@pulumi/pulumi";
import type * as provider from "@pulumi/pulumi/provider";
import { providers, ProviderKind } from "../provider/runtime";
import { PACKAGE_NAME } from "../provider/reseatResource";
import { ProcessingElement, PROCESSING_ELEMENT_TYPE } from "../../components/processingElement";
import { ProcessingElementGroup, PROCESSING_ELEMENT_GROUP_TYPE } from "../../components/processingElementGroup";
import { ProcessingElementFleet, PROCESSING_ELEMENT_FLEET_TYPE } from "../../components/processingElementFleet";
import { markSecrets, revealSecrets } from "./secretValues";
import { KNOWN_AT_CONSTRUCTION } from "../schema/inputs";

type Props = Record<string, unknown>;

/** `urn:pulumi:<stack>::<project>::<parent types$>type::<name>` → the resource's own type token. */
export function typeOfUrn(urn: string): string {
  const qualified = urn.split("::")[2] ?? "";
  return qualified.split("$").pop() ?? "";
}

function kindOf(urn: string): ProviderKind {
  const type = typeOfUrn(urn);
  const [pkg, module, kind] = type.split(":");
  if (pkg === PACKAGE_NAME && module === "index" && kind && kind in providers) return kind as ProviderKind;
  throw new Error(
    `reseat: no resource type "${type}" in this package (${Object.keys(providers)
      .map((k) => `${PACKAGE_NAME}:index:${k}`)
      .join(", ")})`,
  );
}

/**
 * The components' inputs as a program in another language sent them: each top-level value plain, or
 * an Output (a secret, or one carrying dependencies). A component needs some sections as plain
 * objects (they decide which resources are declared: KNOWN_AT_CONSTRUCTION); those are awaited here,
 * and a secret one keeps its string leaves secret, but for those that must be known as they are.
 */
async function componentArgs(inputs: pulumi.Inputs, plainSections: readonly string[]): Promise<Props> {
  const args: Props = { ...inputs };
  for (const section of plainSections) {
    const value = args[section];
    if (!pulumi.Output.isInstance(value)) continue;
    // Output's promise is how its resolved value is read outside an apply (construct runs once per up).
    const internal = value as unknown as { promise(): Promise<unknown>; isSecret: Promise<boolean>; isKnown: Promise<boolean> };
    if (!(await internal.isKnown)) continue; // left to the component, which names the field
    const resolved = await internal.promise();
    args[section] = (await internal.isSecret) ? secretLeaves(resolved, [section]) : resolved;
  }
  return args;
}

const mustBeKnown = (path: string[]) => KNOWN_AT_CONSTRUCTION.some((known) => known.path.join(".") === path.join("."));

function secretLeaves(value: unknown, path: string[]): unknown {
  if (typeof value === "string") return mustBeKnown(path) ? value : pulumi.secret(value);
  if (Array.isArray(value)) return value.map((item, index) => secretLeaves(item, [...path, String(index)]));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, secretLeaves(v, [...path, k])]));
  return value;
}

/** The PE's sections that must be plain objects: the top-level paths of KNOWN_AT_CONSTRUCTION. */
const PE_SECTIONS = KNOWN_AT_CONSTRUCTION.filter((known) => known.path.length === 1).map((known) => known.path[0]!);

async function construct(name: string, type: string, inputs: pulumi.Inputs, options: pulumi.ComponentResourceOptions): Promise<provider.ConstructResult> {
  switch (type) {
    case PROCESSING_ELEMENT_TYPE: {
      const pe = new ProcessingElement(name, (await componentArgs(inputs, PE_SECTIONS)) as never, options);
      return { urn: pe.urn, state: { ...pe.summary } };
    }
    case PROCESSING_ELEMENT_GROUP_TYPE: {
      const group = new ProcessingElementGroup(name, (await componentArgs(inputs, ["replicas", "rollout"])) as never, options);
      return { urn: group.urn, state: { memberOutputs: group.memberOutputs, updatedReplicas: group.updatedReplicas } };
    }
    case PROCESSING_ELEMENT_FLEET_TYPE: {
      const fleet = new ProcessingElementFleet(name, (await componentArgs(inputs, ["replicas", "rollout"])) as never, options);
      return { urn: fleet.urn, state: { members: fleet.members, updatedReplicas: fleet.updatedReplicas } };
    }
    default:
      throw new Error(
        `reseat: no component "${type}" in this package (${PROCESSING_ELEMENT_TYPE}, ${PROCESSING_ELEMENT_GROUP_TYPE}, ${PROCESSING_ELEMENT_FLEET_TYPE})`,
      );
  }
}

/** The plugin's provider; its schema is made when the engine asks for it (most starts only create, read, …). */
export function reseatProvider(version: string, schema: () => string): provider.Provider {
  return {
    version,
    getSchema: async () => schema(),
    async check(urn, olds, news) {
      const { plain, secretKeys } = revealSecrets(news);
      const { inputs } = await providers[kindOf(urn)].check!(revealSecrets(olds).plain, plain);
      return { inputs: markSecrets(inputs as unknown as Props, secretKeys) };
    },
    async diff(id, urn, olds, news) {
      return providers[kindOf(urn)].diff!(id, revealSecrets(olds).plain, revealSecrets(news).plain);
    },
    async create(urn, inputs) {
      const { plain, secretKeys } = revealSecrets(inputs);
      const { id, outs } = await providers[kindOf(urn)].create(plain);
      return { id, outs: markSecrets(outs as unknown as Props, secretKeys) };
    },
    async read(id, urn, props) {
      const { plain, secretKeys } = revealSecrets(props);
      const read = providers[kindOf(urn)] as { read?: (id: string, props: Props) => Promise<{ id?: string; props?: Props }> };
      if (!read.read) return { id, props };
      const result = await read.read(id, plain);
      return { id: result.id, props: markSecrets(result.props, secretKeys) };
    },
    async update(id, urn, olds, news) {
      const { plain, secretKeys } = revealSecrets(news);
      const update = providers[kindOf(urn)].update!;
      const { outs } = await update(id, revealSecrets(olds).plain, plain);
      return { outs: markSecrets(outs as unknown as Props, secretKeys) };
    },
    async delete(id, urn, props) {
      const remove = (providers[kindOf(urn)] as { delete?: (id: string, props: Props) => Promise<void> }).delete;
      if (remove) await remove(id, revealSecrets(props).plain);
    },
    construct,
  };
}
