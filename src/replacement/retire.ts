// Taking a PE's executables down (a resource's delete): only them, never the volume.
import type { Backend, ExecutableDesired, ObservedExecutable } from "../backend/backend";
import { faultPoint } from "./faults";
import { ownExecutables } from "./find";
import { withPeLock } from "./peLock";

/** Which of a PE's executables `retire` takes. */
export interface RetireScope {
  /**
   * Only those made for the same Pulumi resource as `desired` (equal `declaredBy`; for a resource
   * recorded before 0.4, those that carry none): deleting a replaced resource never touches what its
   * successor runs, whatever made Pulumi replace it.
   */
  sameDeclarer?: boolean;
  /** Only those of this spec (resources recorded before 0.4, whose executables carry no declarer). */
  specHash?: string;
}

/**
 * Stops executables of a PE gracefully and removes them (only them: never the volume). Found by the
 * PE's identity, not only by the id Pulumi recorded: a controller may have reseated it since, on the
 * same resource's behalf.
 */
export async function retire(backend: Backend, desired: ExecutableDesired, holder: string, only: RetireScope = {}): Promise<string[]> {
  return withPeLock(backend, desired, holder, async (lock) => {
    const observed: ObservedExecutable[] = [];
    for (const e of ownExecutables(await backend.listExecutables(desired.peId), desired)) {
      if (only.specHash && e.specHash !== only.specHash) continue;
      if (only.sameDeclarer && (await backend.desiredOf(e.id))?.declaredBy !== desired.declaredBy) continue;
      observed.push(e);
    }
    for (const executable of observed) {
      lock.assertHeld();
      if (executable.running) {
        await backend.stop(executable.id, desired.stop);
        await faultPoint("after-stop");
      }
      await backend.remove(executable.id);
    }
    // The PE's last executable gone (its delete, not a forced replacement's successor still running):
    // what the engine holds for the PE across generations goes too (Docker: its network holder).
    if (backend.releasePeNetwork && (await backend.listExecutables(desired.peId)).length === 0) await backend.releasePeNetwork(desired.peId);
    return observed.map((e) => e.name);
  });
}
