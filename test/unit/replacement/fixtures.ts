// Desired executables for engine-free tests of the routine, the lease and the controller.
import type { ExecutableDesired } from "../../../src/backend/backend";
import { FakeBackend } from "../../../src/backend/fake/fakeBackend";
import { executableDesired } from "../../../src/schema/desired";
import { parseProcessingElement } from "../../../src/schema/processingElement";

export function desiredFor(peId: string, overrides: Record<string, unknown> = {}, owner = `proj/stack/${peId}`): ExecutableDesired {
  const spec = parseProcessingElement({ peId, image: "reseat-session:1", ...overrides });
  // The image id follows the reference, as the engine would resolve it.
  const imageId = `sha256:${Buffer.from(spec.image).toString("hex").padEnd(64, "0").slice(0, 64)}`;
  return { ...executableDesired(spec, imageId), owner };
}

/** A fake engine with the PE's volume claimed for its owner. */
export async function engineWithVolume(...desired: ExecutableDesired[]): Promise<FakeBackend> {
  const backend = new FakeBackend();
  for (const d of desired) await backend.claimVolume({ name: d.volumeName, driver: "local", peId: d.peId, owner: d.owner! });
  return backend;
}

/** Resolves once `condition` holds, polling; fails after `ms` (a bound, not a timing claim). */
export async function until(condition: () => boolean | Promise<boolean>, ms = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
