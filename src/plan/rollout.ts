// Pure planning for a processing-element group's rolling replacement: which members take the new
// template (partition), in which order, which member each one waits for (maxUnavailable), what is
// added and removed when the group scales, and what each member's change is. No Pulumi, no engine.
//
// Order: like a StatefulSet's rolling update, from the highest ordinal down to the lowest. Member at
// rollout position p (0-based) waits for the member at position p - maxUnavailable: its executable is
// not touched before that member's executable is ready. So the rollout runs as maxUnavailable chains
// (ordinal o waits for o + maxUnavailable), and at most maxUnavailable members are ever without a
// ready executable because of the rollout.
import { createHash } from "node:crypto";
import { REPLACE_FIELDS } from "./executablePlan";
import { memberName } from "../schema/group";

export { memberName };

export interface RolloutInput {
  group: string;
  replicas: number;
  /** Already resolved to a member count (at least 1). */
  maxUnavailable: number;
  partition: number;
}

export interface MemberStep {
  ordinal: number;
  /** `<group>-<ordinal>`: resource name and peId. */
  name: string;
  /** "update": takes the current template; "held": ordinal < partition, keeps the spec it was deployed with. */
  track: "update" | "held";
  /** 1-based position in the rollout order. */
  position: number;
  /** Which of the maxUnavailable chains the member is on (0-based). */
  chain: number;
  /** Ordinal of the member whose executable must be ready before this one's is touched; none for a chain's head. */
  after?: number;
}

export interface RolloutPlan {
  /** Ordinals in rollout order (highest first). */
  order: number[];
  /** Indexed by ordinal. */
  members: MemberStep[];
  /** Ordinals >= partition, in rollout order. */
  updated: number[];
  /** Ordinals < partition, in rollout order. */
  held: number[];
  /** The chains, each in rollout order: members of one chain are replaced one after another. */
  chains: number[][];
}

export function planRollout(input: RolloutInput): RolloutPlan {
  const k = Math.max(1, Math.floor(input.maxUnavailable));
  const order = Array.from({ length: input.replicas }, (_, i) => input.replicas - 1 - i);
  const members: MemberStep[] = [];
  const chains: number[][] = Array.from({ length: Math.min(k, input.replicas) }, () => []);
  order.forEach((ordinal, position) => {
    const after = ordinal + k < input.replicas ? ordinal + k : undefined;
    const chain = position % k;
    members[ordinal] = {
      ordinal,
      name: memberName(input.group, ordinal),
      track: ordinal >= input.partition ? "update" : "held",
      position: position + 1,
      chain,
      ...(after !== undefined ? { after } : {}),
    };
    chains[chain]!.push(ordinal);
  });
  return {
    order,
    members,
    updated: order.filter((o) => o >= input.partition),
    held: order.filter((o) => o < input.partition),
    chains,
  };
}

export interface ScalePlan {
  added: number[];
  removed: number[];
  kept: number[];
}

/** Scaling creates or removes only the members beyond the smaller of the two sizes. */
export function planScale(previousOrdinals: number[], replicas: number): ScalePlan {
  const previous = new Set(previousOrdinals);
  const desired = Array.from({ length: replicas }, (_, i) => i);
  return {
    added: desired.filter((o) => !previous.has(o)),
    removed: [...previous].filter((o) => o >= replicas || o < 0).sort((a, b) => a - b),
    kept: desired.filter((o) => previous.has(o)),
  };
}

/** What a member runs, as the executable's inputs (or its echoed outputs) describe it. */
export type MemberFields = Partial<Record<string, unknown>>;

/**
 * A member's revision: a short hash of everything its executable runs with (like a StatefulSet's
 * controller-revision-hash), and of the part whose change needs a new executable. The resolved image
 * id is left out (only the provider knows it), the reference is in: a new tag counts as a replacement.
 */
export interface MemberFingerprint {
  revision: string;
  replaceRevision: string;
  image?: string;
}

/** Fields that name the member rather than describe what it runs. */
export const IDENTITY_FIELDS: readonly string[] = ["peId", "volumeName", "imageId"];
const REPLACING = new Set<string>(["imageRef", ...REPLACE_FIELDS.filter((f) => !IDENTITY_FIELDS.includes(f))]);

/** Everything in `fields` but identity counts for the revision; the replacing fields for the replace revision. */
export function fingerprint(fields: MemberFields): MemberFingerprint {
  const described = Object.keys(fields).filter((name) => !IDENTITY_FIELDS.includes(name));
  const pick = (names: string[]) => Object.fromEntries(names.map((name) => [name, name === "store" ? withoutSecret(fields[name]) : fields[name]]));
  return {
    revision: hash(pick(described)),
    replaceRevision: hash(pick(described.filter((name) => REPLACING.has(name)))),
    ...(typeof fields.imageRef === "string" ? { image: fields.imageRef } : {}),
  };
}

/** True for a field a rolling change may touch (not part of the member's identity). */
export function describesMember(field: string): boolean {
  return !IDENTITY_FIELDS.includes(field);
}

export type MemberChange = "create" | "replace" | "update" | "same" | "held";

/**
 * What `up` will do to one member, judged from the last deployment's fingerprint. Used for progress
 * messages only: the provider's diff decides (it also sees the resolved image id).
 */
export function classifyChange(previous: MemberFingerprint | undefined, desired: MemberFingerprint, track: MemberStep["track"]): MemberChange {
  if (!previous) return "create";
  if (previous.revision === desired.revision) return "same";
  if (track === "held") return "held";
  return previous.replaceRevision === desired.replaceRevision ? "update" : "replace";
}

export interface ProgressLine {
  ordinal: number;
  change: MemberChange;
  message: string;
}

/**
 * One progress line per member that changes (or is held back), in rollout order:
 * "replacing member orders-4 (1 of 3): image app:v1 -> app:v2". When the previous deployment is
 * unknown, every member of the update track is announced as "rolling".
 */
export function progressLines(
  plan: RolloutPlan,
  desired: MemberFingerprint[],
  previous: Map<number, MemberFingerprint> | undefined,
  partition: number,
): ProgressLine[] {
  const changes = plan.order.map((ordinal) => ({
    ordinal,
    change: previous ? classifyChange(previous.get(ordinal), desired[ordinal]!, plan.members[ordinal]!.track) : undefined,
  }));
  const moving = changes.filter((c) =>
    c.change === undefined ? plan.members[c.ordinal]!.track === "update" : ["create", "replace", "update"].includes(c.change),
  );
  const total = moving.length;
  const lines: ProgressLine[] = [];
  for (const { ordinal, change } of changes) {
    const name = plan.members[ordinal]!.name;
    const n = moving.findIndex((c) => c.ordinal === ordinal) + 1;
    const before = previous?.get(ordinal)?.image;
    const after = desired[ordinal]!.image;
    const image = before && after && before !== after ? `: image ${before} -> ${after}` : "";
    switch (change) {
      case undefined:
        if (n) lines.push({ ordinal, change: "replace", message: `rolling member ${name} (${n} of ${total}): replaced if its spec changed` });
        break;
      case "create":
        lines.push({ ordinal, change, message: `creating member ${name} (${n} of ${total})` });
        break;
      case "replace":
        lines.push({ ordinal, change, message: `replacing member ${name} (${n} of ${total})${image}` });
        break;
      case "update":
        lines.push({ ordinal, change, message: `updating member ${name} in place (${n} of ${total})` });
        break;
      case "held":
        lines.push({ ordinal, change, message: `holding member ${name} at its deployed spec (ordinal < partition ${partition})` });
        break;
      case "same":
        break;
    }
  }
  return lines;
}

function withoutSecret(store: unknown): unknown {
  if (store && typeof store === "object" && "password" in store) {
    const { password: _secret, ...visible } = store as Record<string, unknown>;
    return visible;
  }
  return store;
}

function hash(value: unknown): string {
  return createHash("sha256")
    .update(JSON.stringify(normalize(value)))
    .digest("hex")
    .slice(0, 12);
}

/** Sorts object keys and drops undefined and null, so that equal specs hash equally however they were written. */
export function normalize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .filter((key) => (value as Record<string, unknown>)[key] !== undefined && (value as Record<string, unknown>)[key] !== null)
        .map((key) => [key, normalize((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}
