// A PE's claim on Kubernetes is never replaced: a change that would need a new PersistentVolumeClaim
// (another name, namespace, context, StorageClass or size) is refused at preview, loudly, naming the
// spec's field — the claim and the state on it stay as they are.
import type { EngineTarget } from "@reseat/state/contract";

export interface ClaimFields {
  peId: string;
  /** "state-volume" (the PE's state) or "store-volume" (its directory store). */
  role: "state-volume" | "store-volume";
  name: string;
  namespace: string;
  storageClassName?: string;
  size: string;
  owner: string;
  engine: EngineTarget;
}

/** Which spec field each claim field comes from, for the error message. */
function specField(field: string, role: ClaimFields["role"]): string {
  const store = role === "store-volume";
  switch (field) {
    case "name":
      return "volume.name";
    case "namespace":
      return "kubernetes.namespace";
    case "storageClassName":
      return store ? "kubernetes.store.storageClassName" : "kubernetes.storageClassName";
    case "size":
      return store ? "kubernetes.store.size" : "kubernetes.size";
    case "engine":
      return "kubernetes.context";
    default:
      return field;
  }
}

export class ClaimChangeRefused extends Error {
  constructor(
    readonly fields: string[],
    old: ClaimFields,
    desired: ClaimFields,
  ) {
    const value = (fields: ClaimFields, field: string) => JSON.stringify((fields as unknown as Record<string, unknown>)[field] ?? null);
    super(
      `reseat: refusing to change ${fields.map((f) => specField(f, old.role)).join(" and ")} of processing element "${old.peId}" ` +
        `(${fields.map((f) => `${specField(f, old.role)}: ${value(old, f)} -> ${value(desired, f)}`).join(", ")}). ` +
        `That would need a new PersistentVolumeClaim ("${old.name}") and leave the PE's state behind. Keep the old value, or migrate explicitly: ` +
        `declare a new PE (new peId) and copy the state, then remove the old one.`,
    );
    this.name = "ClaimChangeRefused";
  }
}

export function planClaim(old: ClaimFields, desired: ClaimFields): { changes: boolean } {
  const changed: string[] = (["name", "namespace", "storageClassName", "size", "peId", "role"] as const).filter(
    (field) => (old[field] ?? null) !== (desired[field] ?? null),
  );
  if (JSON.stringify(old.engine) !== JSON.stringify(desired.engine)) changed.push("engine");
  if (changed.length) throw new ClaimChangeRefused(changed, old, desired);
  // The owner is checked when the claim is taken; recorded owners from older state may be absent.
  return { changes: old.owner !== desired.owner };
}
