// ProcessingElementFleet: N processing elements from one template, like ProcessingElementGroup, but
// kept in ONE Pulumi resource that rolls its members itself — for hundreds to a thousand members,
// where a group's per-member resources make Pulumi's checkpoint and step hand-offs the cost
// (docs/scale.md). Same spec, same rollout rules (highest ordinal first, maxUnavailable members at
// once, partition, the first failure stops the rollout and the failed member is reverted); each member
// keeps its own state volume (kept on destroy and on scale-down): on a Docker engine, or with
// `template.kubernetes` on the cluster the kubeconfig reaches — there each member is a claim (made by the
// fleet through the backend, no per-member Pulumi resource) and one pod per generation on its claim's node.
import * as pulumi from "@pulumi/pulumi";
import { Fleet } from "../src/provider/fleet";
import type * as FleetRuntime from "../src/provider/fleetRuntime";
import { parseFleet, FleetMemberState } from "../src/plan/fleetPlan";
import { GroupInputs, GroupSpec, parseGroupInputs, withGroupFieldsChecked } from "../src/schema/group";
import { SpecError } from "../src/schema/processingElement";
import { declareFleetInProgram } from "../src/schema/uniqueness";
import { containsDeferred } from "../src/schema/inputs";
import type { ProcessingElementGroupArgs } from "./processingElementGroup";
import { secretEnvOf, splitReplacementOptions } from "./processingElement";

export const PROCESSING_ELEMENT_FLEET_TYPE = "reseat:index:ProcessingElementFleet";

export type ProcessingElementFleetArgs = ProcessingElementGroupArgs;

/** Validates a fleet spec the way the component does; throws SpecError naming every bad field. */
export function validateProcessingElementFleet(name: string, args: unknown): GroupSpec {
  const raw = (args && typeof args === "object" ? args : {}) as Partial<ProcessingElementFleetArgs>;
  // The known fields are picked out: a misspelled one beside them is refused, not dropped.
  return withGroupFieldsChecked(args, `fleet "${name}"`, () =>
    parseFleet({ name, replicas: raw.replicas as number, template: raw.template as Record<string, unknown>, rollout: (raw.rollout ?? {}) as never }),
  );
}

export class ProcessingElementFleet extends pulumi.ComponentResource {
  /** The fleet as declared (members' specs are there when no template field waited for an Output). */
  readonly spec: GroupInputs;
  readonly fleet: Fleet;
  /** Each member as it runs, in ordinal order (its commit status included): the stack output. */
  readonly members: pulumi.Output<FleetMemberState[]>;
  /** Members running the current template. */
  readonly updatedReplicas: pulumi.Output<number>;

  constructor(name: string, args: ProcessingElementFleetArgs, opts: pulumi.ComponentResourceOptions = {}) {
    // A template whose fields are all known is validated whole now (as the provider will); one with
    // Outputs, as far as it is known now, and whole once they resolve, before the Fleet registers. Its
    // placeholders are the provider's to substitute, per member, in Outputs too.
    const raw = (args && typeof args === "object" ? args : {}) as Partial<ProcessingElementFleetArgs>;
    const deferred = containsDeferred(raw.template);
    const spec: GroupInputs = deferred
      ? withGroupFieldsChecked(args, `fleet "${name}"`, () =>
          parseGroupInputs({ name, replicas: raw.replicas, template: raw.template, rollout: raw.rollout ?? {} }, `fleet "${name}"`, (value) => value),
        )
      : validateProcessingElementFleet(name, args);
    // Its members are the program's PEs too: a ProcessingElement "<name>-1" beside it is refused (same
    // peId, same state volume), now for the members known now, else once the template resolves.
    const knownMembers = spec.members.filter((m): m is typeof m & { spec: NonNullable<typeof m.spec> } => m.spec !== undefined);
    const duplicates = declareFleetInProgram(name, knownMembers);
    if (duplicates.length) throw new SpecError(`fleet "${name}"`, duplicates);
    // replaceOnChanges, replacementTrigger, replaceWith: the Fleet resource takes them.
    const { own, replacement } = splitReplacementOptions(opts);
    super(PROCESSING_ELEMENT_FLEET_TYPE, name, {}, own);
    this.spec = spec;
    const secretEnv = secretEnvOf((raw.template as { env?: unknown } | undefined)?.env);
    const fields = {
      name: spec.name,
      replicas: spec.replicas,
      // One input: secret as a whole when a value in it is (and unknown during a preview with it).
      template: deferred ? pulumi.output(spec.template as pulumi.Input<Record<string, unknown>>) : spec.template,
      rollout: { maxUnavailable: spec.rollout.maxUnavailableInput, partition: spec.rollout.partition },
      project: pulumi.getProject(),
      stack: pulumi.getStack(),
      // Which env values are secret: the members' records on the engine blank them (absent when none is).
      ...(secretEnv ? { secretEnv } : {}),
    };
    const resolvedFields = pulumi.output(fields);
    const validated = deferred
      ? resolvedFields.apply((resolved) => {
          const declaredNow = new Set(knownMembers.map((m) => m.ordinal));
          const later = declareFleetInProgram(
            name,
            parseFleet(resolved).members.filter((m) => !declaredNow.has(m.ordinal)),
          );
          if (later.length) throw new SpecError(`fleet "${name}"`, later);
          return true;
        })
      : undefined;
    this.fleet = new Fleet(
      `${name}-fleet`,
      fields,
      // A rollout of a large fleet takes as long as its members' replacements, one after another.
      {
        ...replacement,
        parent: this,
        customTimeouts: { create: "24h", update: "24h", delete: "24h" },
        ...(validated ? { dependsOn: validated.apply(() => []) } : {}),
      },
    );
    this.members = this.fleet.members;
    this.updatedReplicas = this.members.apply((members) => members.filter((m) => m.updated).length);
    // One line per member that changes, judged from what runs now: preview lists them (the Fleet's
    // own diff names only the template). Not being able to list them is no reason to stop an up.
    // Waits for the template's Outputs, if any (none are listed during a preview that cannot know them).
    const planned = resolvedFields.apply((resolved) =>
      // Loaded on first use: the engine clients are not every program's business.
      Promise.resolve()
        .then(() => (require("../src/provider/fleetRuntime") as typeof FleetRuntime).previewFleet(resolved))
        .then(
          (lines) => {
            for (const line of lines) pulumi.log.info(line.message, this);
            return lines.filter((line) => line.change !== "held").length;
          },
          (error: Error) => {
            pulumi.log.warn(`could not list the members' changes: ${error.message}`, this);
            return null;
          },
        ),
    );
    // The members are the Fleet's outputs already (no second copy in the checkpoint).
    this.registerOutputs({ updatedReplicas: this.updatedReplicas, plannedChanges: planned });
  }
}
