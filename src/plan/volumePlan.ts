// A state volume is never replaced: a change that would need a new volume is refused, loudly.
export interface VolumeFields {
  peId: string;
  name: string;
  driver: string;
}

export class VolumeChangeRefused extends Error {
  constructor(readonly fields: string[], old: VolumeFields, desired: VolumeFields) {
    super(
      `reseat: refusing to change ${fields.map((f) => `volume.${f}`).join(" and ")} of processing element "${old.peId}" ` +
        `(${fields.map((f) => `${f}: "${old[f as keyof VolumeFields]}" -> "${desired[f as keyof VolumeFields]}"`).join(", ")}). ` +
        `That would need a new state volume and leave the PE's state behind. Keep the old value, or migrate explicitly: ` +
        `declare a new PE (new peId) and copy the state, then remove the old one.`,
    );
    this.name = "VolumeChangeRefused";
  }
}

/** Throws VolumeChangeRefused when the desired volume is not the one that exists. */
export function planVolume(old: VolumeFields, desired: VolumeFields): { changes: boolean } {
  const changed = (["name", "driver", "peId"] as const).filter((field) => old[field] !== desired[field]);
  if (changed.length) throw new VolumeChangeRefused(changed, old, desired);
  return { changes: false };
}
