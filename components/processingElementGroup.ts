// ProcessingElementGroup: N processing elements from one template, rolled out like a StatefulSet.
//
// - Members are ProcessingElements named `<group>-<ordinal>` (also their peIds), each with its own
//   kept state volume. Scaling adds or removes only the members beyond the smaller size; a removed
//   member's volume is kept (the PE's retainOnDestroy), so scaling back up resumes its state.
// - Rollout order: highest ordinal first. Member o's Executable dependsOn member (o + maxUnavailable)'s
//   Executable, so Pulumi (which replaces independent resources in parallel) runs maxUnavailable
//   chains, and touches a member only once the member before it on its chain is ready: the
//   provider's create returns only when the new executable is ready.
// - partition: members with ordinal < partition ignore changes to their executable's spec
//   (Pulumi ignoreChanges), so they keep exactly what they were deployed with; members >= partition
//   take the template. A member that does not exist yet is created from the template.
// - A failure stops the rollout: members later in the order are never registered (they wait for the
//   failed one), so they keep their old spec; members before it stay replaced.
import * as pulumi from "@pulumi/pulumi";
import { Executable } from "../src/provider/executable";
import { EXECUTABLE_INPUT_SOURCES, executableFields, storeDesired } from "../src/schema/desired";
import { ProcessingElementSpec, SpecError, parseProcessingElement } from "../src/schema/processingElement";
import { GroupInputs, GroupSpec, PlaceholderValues, Templated, parseGroup, parseGroupInputs, substitute } from "../src/schema/group";
import { MemberFingerprint, RolloutPlan, describesMember, fingerprint, planRollout, progressLines } from "../src/plan/rollout";
import { ProcessingElement, ProcessingElementArgs, ProcessingElementOutputs, splitReplacementOptions } from "./processingElement";

export const PROCESSING_ELEMENT_GROUP_TYPE = "reseat:index:ProcessingElementGroup";

/** A group's template: a PE spec without peId (fields may be Outputs), whose strings may carry placeholders. */
export type GroupTemplateArgs = Templated<Omit<ProcessingElementArgs, "peId">>;

export interface ProcessingElementGroupArgs {
  /** Known when the program runs (it decides how many members are declared). */
  replicas: number;
  /**
   * A PE spec without peId; strings may use {{ordinal}}, {{ordinal + N}}, {{peId}}, {{group}} — also
   * in Outputs, substituted when they resolve. Fields may be Outputs as in a ProcessingElement.
   */
  template: GroupTemplateArgs;
  /** Known when the program runs (it decides the members' dependencies). */
  rollout?: {
    /** Members replaced at once, at most (number, or "NN%" of replicas rounded down; at least 1). Default 1. */
    maxUnavailable?: number | string;
    /** Only ordinals >= partition take template changes. Default 0 (all). */
    partition?: number;
  };
}

/** One member as the group reports it. */
export interface GroupMemberOutputs extends ProcessingElementOutputs {
  ordinal: number;
  imageRef: string;
  /** Hash of everything the member's executable runs with (see README). */
  revision: string;
  replaceRevision: string;
  /** True when the member runs the current template (false for members held back by partition). */
  updated: boolean;
}

/** A group's outputs from the last deployment; the group reads `members[].{ordinal, revision, replaceRevision, imageRef}`. */
export interface PreviousGroupOutputs {
  members?: Partial<GroupMemberOutputs>[];
}

export interface ProcessingElementGroupOptions extends pulumi.ComponentResourceOptions {
  /**
   * The group's outputs from the last deployment of this stack (e.g. through a StackReference to the
   * stack itself, as stacks/groups.ts does). Only progress messages use it ("replacing member
   * orders-4 (1 of 3)"); without it they say "rolling member …".
   */
  previous?: pulumi.Input<PreviousGroupOutputs | undefined>;
}

/** Validates a group spec the way the component does; throws SpecError naming every bad field. */
export function validateProcessingElementGroup(name: string, args: unknown): GroupSpec {
  const withName = args && typeof args === "object" && !("name" in args) ? { ...args, name } : args;
  return parseGroup(withName, `group "${name}"`);
}

/** Any value (an Output, a Promise, a plain object holding some) as an Output of its resolved value. */
function outputOf(value: unknown): pulumi.Output<unknown> {
  return pulumi.output(value as pulumi.Input<object>) as unknown as pulumi.Output<unknown>;
}

/**
 * A template value that resolves later, for member `values.peId`: an Output of it with the member's
 * placeholders substituted (a bad placeholder fails the member's validation, naming the field).
 */
function substituteWhenResolved(value: unknown, field: string[], values: PlaceholderValues): pulumi.Output<unknown> {
  return outputOf(value).apply((resolved) => {
    const substituted = substitute(resolved, values, field);
    if (substituted.problems.length)
      throw new SpecError(
        `"${values.peId}"`,
        substituted.problems.map((problem) => ({ ...problem, field: `template.${problem.field}` })),
      );
    return substituted.value;
  });
}

export class ProcessingElementGroup extends pulumi.ComponentResource {
  /** The group as declared; a member's `spec` is there when none of its fields waited for an Output. */
  readonly spec: GroupInputs;
  readonly plan: RolloutPlan;
  /** Indexed by ordinal. */
  readonly members: ProcessingElement[];
  readonly memberOutputs: pulumi.Output<GroupMemberOutputs[]>;
  /** Members running the current template. */
  readonly updatedReplicas: pulumi.Output<number>;

  constructor(name: string, args: ProcessingElementGroupArgs, opts: ProcessingElementGroupOptions = {}) {
    const withName = args && typeof args === "object" && !("name" in args) ? { ...args, name } : args;
    const spec = parseGroupInputs(withName, `group "${name}"`, substituteWhenResolved);
    const { previous, ...componentOpts } = opts;
    // replaceOnChanges, replacementTrigger, replaceWith: every member's Executable takes them.
    const { own, replacement } = splitReplacementOptions(componentOpts);
    super(PROCESSING_ELEMENT_GROUP_TYPE, name, {}, own);
    this.spec = spec;
    const plan = planRollout({ group: spec.name, replicas: spec.replicas, maxUnavailable: spec.rollout.maxUnavailable, partition: spec.rollout.partition });
    this.plan = plan;
    // What each member should run, as a fingerprint: now when its spec is known, else once its Outputs
    // resolve (secret with them: a revision hashes env values too).
    const desired = spec.members.map((member) => (member.spec ? pulumi.output(fingerprint(desiredFields(member.spec))) : resolvedFingerprint(member.input)));
    // The Executable inputs that describe what a member runs: a held member (ordinal < partition)
    // keeps them from its last deployment; a member's revision is computed from them.
    const first = spec.members[0];
    const specFields = !first
      ? []
      : Object.keys(first.spec ? desiredFields(first.spec) : { ...EXECUTABLE_INPUT_SOURCES, store: undefined }).filter(describesMember);

    // Progress: one line per changing member, logged when its turn comes (its predecessor is ready).
    const startedAt = Date.now();
    const lines = pulumi.all([pulumi.output(previous), pulumi.all(desired)]).apply(([prev, desired]) => {
      const previousFingerprints = prev?.members
        ? new Map<number, MemberFingerprint>(
            prev.members
              .filter(isFingerprinted)
              .map((m) => [m.ordinal, { revision: m.revision, replaceRevision: m.replaceRevision, ...(m.imageRef ? { image: m.imageRef } : {}) }]),
          )
        : undefined;
      const removed = (prev?.members ?? []).map((m) => m.ordinal).filter((o): o is number => typeof o === "number" && o >= spec.replicas);
      if (removed.length) {
        pulumi.log.info(
          `removing member${removed.length > 1 ? "s" : ""} ${removed.map((o) => `${spec.name}-${o}`).join(", ")} (scale to ${spec.replicas}); their state volumes are kept`,
          this,
        );
      }
      // A plain record (an Output unwraps Maps into empty objects).
      return Object.fromEntries(progressLines(plan, desired, previousFingerprints, spec.rollout.partition).map((line) => [String(line.ordinal), line]));
    });

    const members: ProcessingElement[] = [];
    const executables = new Map<number, Executable>();
    for (const ordinal of plan.order) {
      const step = plan.members[ordinal]!;
      const member = spec.members[ordinal]!;
      const predecessor = step.after !== undefined ? executables.get(step.after) : undefined;
      const held = step.track === "held";
      const pe = new ProcessingElement(member.name, member.input as never, {
        ...replacement,
        parent: this,
        // Options for the member's Executable only (children inherit transformations): the chain
        // edge, and for held members, their deployed spec.
        transformations: [
          (child) => {
            if (!(child.resource instanceof Executable)) return undefined;
            const extra: pulumi.CustomResourceOptions = {};
            if (predecessor) extra.dependsOn = [predecessor];
            // (secretEnv too: which of its env values are secret goes with the env a held member keeps.)
            if (held) extra.ignoreChanges = [...specFields, "secretEnv"];
            return { props: child.props, opts: pulumi.mergeOptions(child.opts, extra) };
          },
        ],
      });
      members[ordinal] = pe;
      executables.set(ordinal, pe.executable);

      const turn = predecessor ? predecessor.urn : pulumi.output("");
      pulumi.all([turn, lines]).apply(([, byOrdinal]) => {
        const line = byOrdinal[String(ordinal)];
        if (line) pulumi.log.info(line.message, this);
      });
      if (!pulumi.runtime.isDryRun()) {
        pulumi.all([pe.replacedAt, pe.generation, lines]).apply(([replacedAt, generation, byOrdinal]) => {
          const line = byOrdinal[String(ordinal)];
          if (line && line.change !== "held" && Date.parse(replacedAt) >= startedAt) {
            pulumi.log.info(`member ${member.name} ready: generation ${generation}`, this);
          }
        });
      }
    }
    this.members = members;

    const outputs = spec.members.map((member) => memberOutputs(member.ordinal, members[member.ordinal]!, desired[member.ordinal]!, specFields));
    this.memberOutputs = pulumi.all(outputs) as pulumi.Output<GroupMemberOutputs[]>;
    this.updatedReplicas = this.memberOutputs.apply((list) => list.filter((m) => m.updated).length);
    // Only the count: the members' outputs are their Executables', and the stack exports them (see
    // processingElement.ts: no third copy per member in the checkpoint).
    this.registerOutputs({ updatedReplicas: this.updatedReplicas });
  }
}

function isFingerprinted(m: Partial<GroupMemberOutputs>): m is Partial<GroupMemberOutputs> & { ordinal: number; revision: string; replaceRevision: string } {
  return typeof m.ordinal === "number" && typeof m.revision === "string" && typeof m.replaceRevision === "string";
}

/** The member's desired executable fields (store without any password), as its outputs will echo them. */
function desiredFields(spec: ProcessingElementSpec): Record<string, unknown> {
  const store = spec.persistentStore;
  const storeFields =
    store.kind === "postgres"
      ? { kind: "postgres", host: store.host, port: store.port, database: store.database, user: store.user, table: store.table, keep: store.keep }
      : storeDesired(spec);
  return { ...executableFields(spec), store: storeFields };
}

/** A member's fingerprint once its template values resolve (nothing when they are invalid: the member's PE reports that). */
function resolvedFingerprint(input: unknown): pulumi.Output<MemberFingerprint> {
  return outputOf(input).apply((resolved) => {
    try {
      return fingerprint(desiredFields(parseProcessingElement(resolved)));
    } catch {
      return { revision: "", replaceRevision: "" };
    }
  });
}

function memberOutputs(
  ordinal: number,
  pe: ProcessingElement,
  desired: pulumi.Output<MemberFingerprint>,
  specFields: string[],
): pulumi.Output<GroupMemberOutputs> {
  // The Executable echoes its inputs in its outputs: what the member really runs (held members included).
  const echoed = pe.executable as unknown as Record<string, pulumi.Output<unknown>>;
  const fields = pulumi.unsecret(pulumi.all(specFields.map((field) => echoed[field] ?? pulumi.output(undefined))));
  const running = fields.apply((values) => fingerprint(Object.fromEntries(specFields.map((field, i) => [field, values[i]]))));
  return pulumi.output({ ...pe.summary, current: running, desired }).apply(({ current, desired, ...observed }): GroupMemberOutputs => ({
    ordinal,
    ...observed,
    imageRef: current.image ?? "",
    revision: current.revision,
    replaceRevision: current.replaceRevision,
    updated: current.revision === desired.revision,
  }));
}
