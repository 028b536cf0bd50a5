// Pure planning for a fleet: N processing elements from one template, kept in ONE Pulumi resource
// that rolls its members itself (src/replacement/fleetRollout.ts). No Pulumi, no engine calls.
//
// Why a fleet beside ProcessingElementGroup (docs/scale.md has the numbers): a group's members are
// Pulumi resources, three per member, and Pulumi keeps ~5 KB of its own record per member (URNs,
// stack traces, property dependencies, timestamps) and rewrites the whole checkpoint after every step,
// and hands each member to the next through the program. A fleet's state is its template (once) plus
// a short observation per member, and a rollout is one provider call.
import type { EngineTarget, ExecutableDesired, VolumeClaim } from "@reseat/state/contract";
import { GroupMember, GroupSpec, parseGroup } from "../schema/group";
import { SpecError } from "../schema/processingElement";
import { executableDesired, engineTarget, storeClaimNameOf, volumeOwner } from "../schema/desired";
import { volumeNameOf } from "../schema/processingElement";
import { planRollout, RolloutPlan } from "./rollout";
import { specHash } from "./executablePlan";
import type { CommitOutputs } from "./commitStatus";

/** What a fleet resource is given: the group spec as written, and whose members these are. */
export interface FleetFields {
  name: string;
  replicas: number;
  /** A PE spec without peId; strings may use {{ordinal}}, {{ordinal + N}}, {{peId}}, {{group}}. */
  template: Record<string, unknown>;
  rollout: { maxUnavailable: number | string; partition: number };
  /** Pulumi project and stack: a member's volume is claimed for "<project>/<stack>/<peId>". */
  project: string;
  stack: string;
  /** The template's env names whose values are Pulumi secrets (ExecutableDesired.secretEnv); absent when none is. */
  secretEnv?: string[];
}

/** What reseat adds in check: the engine reached, and each image reference resolved once. */
export interface FleetChecked extends FleetFields {
  engine: EngineTarget;
  imageIds: Record<string, string>;
}

/** One member as the fleet observes it (its stack output): what runs, and its commit status. */
export interface FleetMemberState extends Omit<CommitOutputs, "commitStatusAt"> {
  peId: string;
  ordinal: number;
  executableId: string;
  generation: number;
  host: string;
  imageRef: string;
  /** The spec hash its executable runs (the executable's label). */
  specHash: string;
  replacedAt: string;
  readyAt: string;
  reverted: boolean;
  failedSpecHash: string | null;
  /** True when it runs the current template (false for members held back by partition). */
  updated: boolean;
}

/** One member, ready for the rollout routine. */
export interface FleetMemberPlan {
  ordinal: number;
  peId: string;
  desired: ExecutableDesired;
  volume: VolumeClaim;
  /** Kubernetes, directory store: the member's store claim (one per PE beside its state claim), claimed like the volume. */
  storeVolume?: VolumeClaim;
  /** Ordinal < partition: keeps what it runs; created from the template only when it has nothing. */
  held: boolean;
  /** The settings the workload reads from its control file changed: rewrite it even when kept. */
  controlChanged: boolean;
}

const UNSUPPORTED_IN_FLEETS: { field: string; why: string; present: (spec: GroupMember["spec"]) => boolean }[] = [
  {
    field: "template.persistentStore.kind",
    why: 'expected "none" or "directory" in a fleet (a PostgreSQL store needs a password secret per member: use ProcessingElementGroup)',
    present: (s) => s.persistentStore.kind === "postgres",
  },
  {
    field: "template.docker.tls",
    why: "not supported in a fleet yet (the key would be in the template): use ProcessingElementGroup",
    present: (s) => s.docker?.tls !== undefined,
  },
  {
    field: "template.docker.ssh",
    why: "not supported in a fleet yet (the key would be in the template): use ProcessingElementGroup",
    present: (s) => s.docker?.ssh !== undefined,
  },
  {
    field: "template.docker.registryAuth",
    why: "not supported in a fleet yet (the password would be in the template): use ProcessingElementGroup",
    present: (s) => s.docker?.registryAuth !== undefined,
  },
];

/** The fields that choose a member's engine: the same for every member (no placeholder in them). */
const ONE_ENGINE_FIELDS: [string, (spec: GroupMember["spec"]) => unknown][] = [
  ["template.docker.host", (s) => s.docker?.host],
  ["template.kubernetes.namespace", (s) => s.kubernetes?.namespace],
  ["template.kubernetes.context", (s) => s.kubernetes?.context],
];

/**
 * Validates a fleet's spec and expands its members: every problem of the group spec (parseGroup),
 * plus what a fleet does not do, each naming its field. Throws SpecError; pure.
 */
export function parseFleet(
  fields: Pick<FleetFields, "name" | "replicas" | "template" | "rollout">,
  subject = `fleet "${fields.name}"`,
): GroupSpec & { engine: EngineTarget } {
  const group = parseGroup({ name: fields.name, replicas: fields.replicas, template: fields.template, rollout: fields.rollout }, subject);
  const problems: { field: string; expected: string }[] = [];
  const first = group.members[0];
  for (const rule of UNSUPPORTED_IN_FLEETS) {
    if (group.members.some((m) => rule.present(m.spec))) problems.push({ field: rule.field, expected: rule.why });
  }
  // One engine per fleet: its one resource records one engine, reached once per call.
  for (const [field, of] of ONE_ENGINE_FIELDS) {
    if (new Set(group.members.map((m) => JSON.stringify(of(m.spec) ?? null))).size > 1)
      problems.push({ field, expected: `expected one engine for every member of a fleet (no placeholder in ${field.slice("template.".length)})` });
  }
  if (problems.length) throw new SpecError(subject, problems);
  return { ...group, engine: first ? engineTarget(first.spec) : { kind: "docker" } };
}

/** The image references the members use (resolved once each in check). */
export function imageRefsOf(group: GroupSpec): string[] {
  return [...new Set(group.members.map((m) => m.spec.image))];
}

/** Each member's desired executable and volume claim, in ordinal order, for the rollout routine. */
export function planFleetMembers(news: FleetChecked, olds?: FleetChecked): { group: GroupSpec; rollout: RolloutPlan; members: FleetMemberPlan[] } {
  const group = parseFleet(news);
  const previous = olds ? controlsOf(olds) : new Map<number, string>();
  const members = group.members.map((member): FleetMemberPlan => {
    const imageId = news.imageIds[member.spec.image];
    if (!imageId) throw new Error(`reseat: fleet "${news.name}": image "${member.spec.image}" of member ${member.peId} was not resolved in check`);
    const owner = volumeOwner(news.project, news.stack, member.peId);
    const secretEnv = (news.secretEnv ?? []).filter((name) => name in member.spec.env);
    const desired = { ...executableDesired(member.spec, imageId), owner, ...(secretEnv.length ? { secretEnv } : {}) };
    const before = previous.get(member.ordinal);
    return {
      ordinal: member.ordinal,
      peId: member.peId,
      desired,
      ...memberClaims(member.spec, member.peId, owner),
      held: member.ordinal < group.rollout.partition,
      controlChanged: before !== undefined && before !== controlSettings(desired),
    };
  });
  const rollout = planRollout({
    group: group.name,
    replicas: group.replicas,
    maxUnavailable: group.rollout.maxUnavailable,
    partition: group.rollout.partition,
  });
  return { group, rollout, members };
}

/**
 * A member's claims: on Docker its state volume (the template's driver); on Kubernetes its state claim
 * (the template's storageClassName and size, "" for the cluster's default class) and, with a directory
 * store, its store claim — made by the fleet through the backend (no per-member Pulumi resource).
 */
export function memberClaims(spec: GroupMember["spec"], peId: string, owner: string): Pick<FleetMemberPlan, "volume" | "storeVolume"> {
  const k8s = spec.kubernetes;
  if (!k8s) return { volume: { name: volumeNameOf(spec), driver: spec.volume.driver, peId, owner } };
  const volume = { name: volumeNameOf(spec), driver: k8s.storageClassName ?? "", peId, owner, size: k8s.size };
  if (spec.persistentStore.kind !== "directory") return { volume };
  const storeVolume = {
    name: storeClaimNameOf(spec),
    driver: k8s.store?.storageClassName ?? k8s.storageClassName ?? "",
    peId,
    owner,
    size: k8s.store?.size ?? "1Gi",
  };
  return { volume, storeVolume };
}

/** The settings an in-place control update changes (what the control record carries), as a comparable key:
 *  compared here, written by the replacement routine; the plan stays pure by not importing the routine. */
function controlSettings(desired: Pick<ExecutableDesired, "commitIntervalMs" | "failureBackoff">): string {
  return JSON.stringify({ commitIntervalMs: desired.commitIntervalMs, failureBackoff: desired.failureBackoff });
}

function controlsOf(fleet: FleetChecked): Map<number, string> {
  try {
    const group = parseFleet(fleet);
    return new Map(group.members.map((m) => [m.ordinal, controlSettings(executableDesired(m.spec, fleet.imageIds[m.spec.image] ?? ""))]));
  } catch {
    return new Map(); // state of an older template that no longer parses: nothing to compare
  }
}

/** Members the fleet had and no longer has (scaled down): their executables go, their volumes stay. */
export function removedMembers(olds: FleetChecked, news: Pick<FleetFields, "replicas" | "name">): FleetMemberPlan[] {
  if (olds.name !== news.name) return [];
  const group = parseFleet(olds);
  return planFleetMembers(olds).members.filter((m) => m.ordinal >= news.replicas && m.ordinal < group.replicas);
}

/** Fields whose change the fleet makes in place (each member rolled or kept as its spec says). */
const ROLLED = ["replicas", "template", "rollout", "imageIds", "engine", "secretEnv"] as const;

/**
 * What `up` does to a fleet: nothing, an in-place update (the rollout), or a refusal. Renaming a fleet
 * or moving it to another stack would make other PEs: that is a new fleet, refused here (preview fails
 * naming the field) rather than replaced, because replacing would stop every member at once.
 */
export function planFleetDiff(olds: FleetChecked & { members?: FleetMemberState[] }, news: FleetChecked): { changes: boolean; changed: string[] } {
  for (const field of ["name", "project", "stack"] as const) {
    if (olds[field] !== news[field]) {
      throw new SpecError(`fleet "${olds.name}"`, [
        {
          field,
          expected: `cannot change (was "${olds[field]}"): members are "<name>-<ordinal>" owned by "<project>/<stack>/<peId>"; declare a new fleet instead`,
        },
      ]);
    }
  }
  const changed: string[] = ROLLED.filter((field) => JSON.stringify(olds[field] ?? null) !== JSON.stringify(news[field] ?? null));
  // Members that do not run what the template says (a rollout that stopped at a failure, a revert), or
  // run nothing at all (removed behind reseat's back, seen by a refresh): the next up rolls them again.
  if (olds.members) {
    const seen = new Set(olds.members.map((m) => m.ordinal));
    const behind = olds.members.some((m) => m.updated === false && m.ordinal >= news.rollout.partition);
    const missing = Array.from({ length: Math.min(olds.replicas, news.replicas) }, (_, o) => o).some((o) => !seen.has(o));
    if (behind || missing) changed.push("members");
  }
  return { changes: changed.length > 0, changed };
}

/** A member's spec hash, as its executable label carries it. */
export function memberSpecHash(member: FleetMemberPlan): string {
  return specHash(member.desired);
}
