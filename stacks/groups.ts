// The groups stack: processing-element groups declared in stack config (key `reseat:groups`, a list
// of group specs). Run it with `reseat up --program dist/stacks/groups.js`. Every group is validated
// before any resource is declared, so an invalid spec anywhere fails preview and creates nothing.
//
// Progress messages ("replacing member orders-4 (1 of 5)") compare each member with the last
// deployment; the program reads that from this stack's own outputs through a StackReference.
import * as pulumi from "@pulumi/pulumi";
import { ProcessingElementGroup, validateProcessingElementGroup } from "../components";
import { SpecError } from "../src/spec/processingElement";
import { parseGroup } from "../src/spec/group";
import type { PreviousGroupOutputs } from "../components/processingElementGroup";

async function program(): Promise<Record<string, unknown>> {
  const config = new pulumi.Config("reseat");
  const declared = config.requireObject<unknown>("groups");
  if (!Array.isArray(declared)) {
    throw new Error("reseat: invalid stack config:\n  - groups: expected a list of group specs ({name, replicas, template, rollout})");
  }
  // Validate everything first, and report every group's problems at once.
  const messages: string[] = [];
  const names = new Map<string, number>();
  declared.forEach((group, index) => {
    const name = group && typeof group === "object" && typeof (group as { name?: unknown }).name === "string" ? (group as { name: string }).name : undefined;
    const first = name === undefined ? undefined : names.get(name);
    if (name !== undefined && first === undefined) names.set(name, index);
    try {
      if (first !== undefined) throw new SpecError(`group "${name}"`, [{ field: "name", expected: `expected a unique group name: groups[${first}] and groups[${index}] are both "${name}"` }]);
      if (name === undefined) parseGroup(group, `groups[${index}]`);
      else validateProcessingElementGroup(name, group);
    } catch (error) {
      messages.push((error as Error).message);
    }
  });
  if (messages.length) throw new Error(messages.join("\n"));

  const self = new pulumi.StackReference(`${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`);
  const previous = self.getOutput("groups") as pulumi.Output<Record<string, PreviousGroupOutputs> | undefined>;

  const groups = declared.map((group) => {
    const { name, ...args } = group as { name: string };
    return new ProcessingElementGroup(name, args as never, { previous: previous.apply((all) => all?.[name]) });
  });
  return {
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

// The module itself is the program (module.exports), as `pulumi up` wants it: an `export default`
// would be run by the reseat CLI but exported by the Node.js language host as an output named "default".
export = program;
