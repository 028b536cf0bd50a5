import { describe, expect, it } from "vitest";
import { commitsToPrune } from "../../../packages/state/src/store/prunePolicy";

const ids = ["c6", "c5", "c4", "c3", "c2", "c1"]; // newest first

async function prune(keep: number, verifying: string[]): Promise<{ doomed: string[]; asked: string[] }> {
  const asked: string[] = [];
  const doomed = await commitsToPrune(ids, keep, async (id) => {
    asked.push(id);
    return verifying.includes(id);
  });
  return { doomed, asked };
}

describe("prune policy", () => {
  it("keeps the newest K when the newest commit verifies, asking about it only", async () => {
    expect(await prune(2, ids)).toEqual({ doomed: ["c4", "c3", "c2", "c1"], asked: ["c6"] });
  });

  it("keeps the newest verified commit even beyond K", async () => {
    expect((await prune(2, ["c3", "c1"])).doomed).toEqual(["c4", "c2", "c1"]);
  });

  it("deletes nothing while no commit verifies", async () => {
    expect((await prune(1, [])).doomed).toEqual([]);
  });

  it("deletes nothing (and reads nothing back) while there are no more than K", async () => {
    expect(await prune(6, [])).toEqual({ doomed: [], asked: [] });
  });
});
