// The groups stack: processing-element groups and fleets declared in stack config (keys
// `reseat:groups` and `reseat:fleets`, each a list of {name, replicas, template, rollout}). Run it with
// `reseat up --program dist/stacks/groups.js`. Every group and fleet is validated before any resource is
// declared, so an invalid spec anywhere fails preview and creates nothing.
//
// Progress messages ("replacing member orders-4 (1 of 5)") compare each member with the last
// deployment; the program reads that from this stack's own outputs through a StackReference.
import * as pulumi from "@pulumi/pulumi";
import { ProcessingElementFleet, ProcessingElementGroup, validateProcessingElementFleet, validateProcessingElementGroup } from "../components";
import { SpecError } from "../src/schema/processingElement";
import { parseGroup } from "../src/schema/group";
import type { PreviousGroupOutputs } from "../components/processingElementGroup";

async function program(): Promise<Record<string, unknown>> {
  const config = new pulumi.Config("reseat");
  const declared = config.getObject<unknown>("groups");
  const fleets = config.getObject<unknown>("fleets");
  if (declared === undefined && fleets === undefined) {
    throw new Error(
      "reseat: invalid stack config:\n  - groups: expected a list of group specs ({name, replicas, template, rollout}), or fleets: the same for fleets",
    );
  }
  const messages: string[] = [];
  const groupList = listOf("groups", declared ?? [], validateProcessingElementGroup, messages);
  const fleetList = listOf("fleets", fleets ?? [], validateProcessingElementFleet, messages);
  // A group and a fleet of one name would make the same members ("<name>-<ordinal>").
  const groupNames = new Set(groupList.map((g) => (g as { name?: unknown }).name));
  fleetList.forEach((fleet, index) => {
    const name = (fleet as { name?: unknown }).name;
    if (typeof name === "string" && groupNames.has(name))
      messages.push(
        `reseat: fleet "${name}":\n  - name: expected a name no group uses: fleets[${index}] and a group are both "${name}" (their members would be the same PEs)`,
      );
  });
  if (messages.length) throw new Error(messages.join("\n"));

  // Groups' progress lines compare with the last deployment, read from this stack's own outputs. A
  // StackReference keeps a copy of all of them in state: only declared when a group needs it.
  const previous = groupList.length
    ? (new pulumi.StackReference(`${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`).getOutput("groups") as pulumi.Output<
        Record<string, PreviousGroupOutputs> | undefined
      >)
    : pulumi.output(undefined);

  const groups = groupList.map((group) => {
    const { name, ...args } = group as { name: string };
    return new ProcessingElementGroup(name, args as never, { previous: previous.apply((all) => all?.[name]) });
  });
  const fleetComponents = fleetList.map((fleet) => {
    const { name, ...args } = fleet as { name: string };
    return new ProcessingElementFleet(name, args as never);
  });
  return {
    fleets: Object.fromEntries(
      fleetComponents.map((fleet) => [
        fleet.spec.name,
        {
          replicas: fleet.spec.replicas,
          maxUnavailable: fleet.spec.rollout.maxUnavailable,
          partition: fleet.spec.rollout.partition,
          updatedReplicas: fleet.updatedReplicas,
          members: fleet.members,
        },
      ]),
    ),
    groups: Object.fromEntries(
      groups.map((group) => [
        group.spec.name,
        {
          replicas: group.spec.replicas,
          maxUnavailable: group.spec.rollout.maxUnavailable,
          partition: group.spec.rollout.partition,
          updatedReplicas: group.updatedReplicas,
          members: group.memberOutputs,
        },
      ]),
    ),
  };
}

/**
 * Validates one config list (every entry, all problems at once, into `messages`); names must be unique
 * within the list.
 */
function listOf(key: string, declared: unknown, validate: (name: string, spec: unknown) => unknown, messages: string[]): unknown[] {
  if (!Array.isArray(declared)) {
    messages.push(`reseat: invalid stack config:\n  - ${key}: expected a list of specs ({name, replicas, template, rollout})`);
    return [];
  }
  const names = new Map<string, number>();
  const kind = key === "fleets" ? "fleet" : "group";
  declared.forEach((entry, index) => {
    const name = entry && typeof entry === "object" && typeof (entry as { name?: unknown }).name === "string" ? (entry as { name: string }).name : undefined;
    const first = name === undefined ? undefined : names.get(name);
    if (name !== undefined && first === undefined) names.set(name, index);
    try {
      if (first !== undefined)
        throw new SpecError(`${kind} "${name}"`, [
          { field: "name", expected: `expected a unique ${kind} name: ${key}[${first}] and ${key}[${index}] are both "${name}"` },
        ]);
      if (name === undefined) parseGroup(entry, `${key}[${index}]`);
      else validate(name, entry);
    } catch (error) {
      messages.push((error as Error).message);
    }
  });
  return declared;
}

// The module itself is the program (module.exports), as `pulumi up` wants it: an `export default`
// would be run by the reseat CLI but exported by the Node.js language host as an output named "default".
export = program;
