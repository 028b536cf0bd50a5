// Pure planning: given the executable Pulumi last recorded and the one now desired, what must happen?
// No engine calls here, so every rule is unit-tested without Docker.
import { createHash } from "node:crypto";
import type { ExecutableDesired } from "@reseat/state/contract";

/** Fields whose change needs a new executable (a container cannot change them while it lives). */
export const REPLACE_FIELDS = [
  "peId",
  "imageId",
  "command",
  "env",
  "ports",
  "network",
  "resources",
  "volumeName",
  "mountPath",
  "store",
  "user",
  "kubernetes",
  // The workload's env changes (RESEAT_STANDBY); absent ("staged") leaves older spec hashes as they were.
  "handover",
] as const;
/**
 * Fields that change only what the engine records about an executable (its labels), not what runs: a
 * change needs a new executable (labels are fixed at creation), but they are not part of the spec hash.
 * `secretEnv` (which env values are blanked in the records) is absent when nothing is secret, so a
 * stack recorded before it existed sees no change.
 */
export const RELABEL_FIELDS = ["secretEnv"] as const;
/** Fields applied to the running executable, or only recorded: no new executable. */
export const IN_PLACE_FIELDS = ["imageRef", "stop", "readiness", "commitIntervalMs", "failureBackoff", "onFailedReplacement"] as const;

export interface ExecutablePlan {
  changes: boolean;
  replaces: string[];
  inPlace: string[];
}

export function planExecutable(old: Partial<ExecutableDesired>, desired: ExecutableDesired): ExecutablePlan {
  const replaces = [...REPLACE_FIELDS, ...RELABEL_FIELDS].filter((field) => !sameValue(old[field], desired[field]));
  const inPlace = IN_PLACE_FIELDS.filter((field) => !sameValue(old[field], desired[field]));
  return { changes: replaces.length + inPlace.length > 0, replaces: [...replaces], inPlace: [...inPlace] };
}

/** The identity of what runs: two executables with the same hash are interchangeable. */
export function specHash(desired: ExecutableDesired): string {
  // The hash is a container label: it must not be derived from a secret (a password could be guessed
  // offline from it), so the store password is left out.
  const store = desired.store?.kind === "postgres" ? { ...desired.store, password: undefined } : desired.store;
  const subset = Object.fromEntries(REPLACE_FIELDS.map((field) => [field, normalize(field === "store" ? store : desired[field])]));
  return createHash("sha256").update(JSON.stringify(subset)).digest("hex").slice(0, 16);
}

/** Equal as values: key order and undefined members do not count. */
export function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(normalize(a)) === JSON.stringify(normalize(b));
}

/** Sorts object keys and drops undefined, so that {a, b} and {b, a} compare equal. */
function normalize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
        .map((key) => [key, normalize((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}
