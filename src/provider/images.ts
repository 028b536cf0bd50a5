// Image identity for the providers: read-only in check (which `pulumi preview` runs), pulled in
// create/update (which only `up` runs), before anything is stopped. See src/plan/imageIdentity.ts.
import type { Backend } from "../backend/backend";
import { checkedImageId, isUnknown, resolvedAtUp, UNKNOWN } from "../plan/imageIdentity";

/** check: the image id without pulling; an image reference unknown until `up` is not looked up. */
export async function checkImageId(engine: Backend, imageRef: string): Promise<string> {
  if (isUnknown(imageRef)) return UNKNOWN;
  return checkedImageId(await engine.resolveImage(imageRef));
}

/**
 * create/update: the checked id, or, when check left it to `up`, the id of the image pulled now. A pull
 * that fails fails the step naming the field; nothing has been stopped or created yet.
 */
export async function imageIdForUp(engine: Backend, imageRef: string, checkedId: string | undefined, subject: string, field = "image"): Promise<string> {
  if (!resolvedAtUp(checkedId)) return checkedId!;
  try {
    return await engine.ensureImage(imageRef);
  } catch (error) {
    throw new Error(`reseat: ${subject}: ${field}: ${(error as Error).message}; nothing was stopped or created`);
  }
}
