// A state volume is never replaced: a change that would need a new volume is refused, loudly.
import type { EngineTarget } from "@reseat/state/contract";

export interface VolumeFields {
  peId: string;
  name: string;
  driver: string;
  /** "<project>/<stack>/<peId>": the one owner the volume is claimed for (absent in older state). */
  owner?: string;
  engine?: EngineTarget;
}

export class VolumeChangeRefused extends Error {
  constructor(
    readonly fields: string[],
    old: VolumeFields,
    desired: VolumeFields,
  ) {
    super(
      `reseat: refusing to change ${fields.map((f) => `volume.${f}`).join(" and ")} of processing element "${old.peId}" ` +
        `(${fields.map((f) => `${f}: ${JSON.stringify(old[f as keyof VolumeFields] ?? null)} -> ${JSON.stringify(desired[f as keyof VolumeFields] ?? null)}`).join(", ")}). ` +
        `That would need a new state volume and leave the PE's state behind. Keep the old value, or migrate explicitly: ` +
        `declare a new PE (new peId) and copy the state, then remove the old one.`,
    );
    this.name = "VolumeChangeRefused";
  }
}

/** Throws VolumeChangeRefused when the desired volume is not the one that exists. */
export function planVolume(old: VolumeFields, desired: VolumeFields): { changes: boolean } {
  const changed: string[] = (["name", "driver", "peId"] as const).filter((field) => old[field] !== desired[field]);
  // A volume cannot move to another engine (state written before engines were recorded means Docker).
  if (engineKey(old.engine) !== engineKey(desired.engine)) changed.push("engine");
  if (changed.length) throw new VolumeChangeRefused(changed, old, desired);
  return { changes: false };
}

function engineKey(engine: EngineTarget | undefined): string {
  if (engine?.kind === "kubernetes") return JSON.stringify({ kind: engine.kind, namespace: engine.namespace, context: engine.context ?? null });
  return JSON.stringify({ kind: engine?.kind ?? "docker", host: engine?.host ?? null });
}
