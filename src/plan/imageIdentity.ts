// Pure: the image id a resource's check records, resolved without pulling (a preview must leave the
// engine as it was). When the engine lacks the image, the id is not knowable before a pull, so check
// records a stand-in that differs from every image id ("resolved at up …": Pulumi shows the
// replacement, and why); `up` pulls in create/update and records the real id, so that the next
// preview compares image ids again and shows no change.
import type { ImageResolution } from "@reseat/state/contract";
import { UNKNOWN_DURING_PREVIEW } from "../schema/inputs";

/** Pulumi's marker of a value not known until `up` (an Output of a resource yet to be created). */
export const UNKNOWN = UNKNOWN_DURING_PREVIEW;

const RESOLVED_AT_UP = "resolved at up";

export function isUnknown(value: unknown): boolean {
  return value === UNKNOWN;
}

/**
 * What check records as the image id: the id when the engine has the image (or, on Kubernetes, the
 * reference), else "resolved at up (not on the engine; registry manifest sha256:…)" or the reason the
 * registry gave none. A registry digest is a manifest's, never an image id: only a pull gives that.
 */
export function checkedImageId(resolution: ImageResolution): string {
  switch (resolution.kind) {
    case "resolved":
      return resolution.imageId;
    case "registry":
      return `${RESOLVED_AT_UP} (not on the engine; registry manifest ${resolution.digest})`;
    case "unresolved":
      return `${RESOLVED_AT_UP} (not on the engine; ${resolution.reason})`;
  }
}

/** A checked image id that `up` must resolve by pulling: a stand-in, or unknown in the check. */
export function resolvedAtUp(imageId: string | undefined): boolean {
  return imageId === undefined || imageId === "" || isUnknown(imageId) || imageId.startsWith(RESOLVED_AT_UP);
}
