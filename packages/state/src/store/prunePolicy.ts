/**
 * Which commits pruning may delete. `newestFirst` lists commit ids newest first; `verifies(id)` says
 * whether a commit's bytes match its record (stores answer from what they wrote or checked themselves,
 * and read a commit back only when they know nothing about it). Walks newest first and stops at the
 * first commit that verifies:
 *
 * - none verifies: nothing is deleted (those commits may be the last copies of the state);
 * - otherwise the commits beyond the newest `keep` are deleted, except the newest verified one.
 */
export async function commitsToPrune(newestFirst: string[], keep: number, verifies: (id: string) => Promise<boolean>): Promise<string[]> {
  if (newestFirst.length <= keep) return [];
  let newestVerified: string | undefined;
  for (const id of newestFirst) {
    if (await verifies(id)) {
      newestVerified = id;
      break;
    }
  }
  if (newestVerified === undefined) return [];
  return newestFirst.slice(keep).filter((id) => id !== newestVerified);
}
