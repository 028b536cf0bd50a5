// replaceOnChanges for reseat's resources: a change at a named path turns into a replacement in the
// provider's own diff (Pulumi's dynamic-provider host reports no changed keys for the engine to match).
import { describe, expect, it } from "vitest";
import { changedReplaceOnChanges } from "../../../src/plan/replaceOnChanges";
import { diffExecutable } from "../../../src/provider/runtime";
import { desiredFor } from "../replacement/fixtures";

describe("replaceOnChanges paths", () => {
  it("top-level, dotted and * paths; unchanged paths and ignored keys do not count", () => {
    const olds = { commitIntervalMs: 30_000, env: { A: "1", B: "2" }, generation: 3 };
    const news = { commitIntervalMs: 20_000, env: { B: "2", A: "1" } };
    expect(changedReplaceOnChanges(olds, news, ["commitIntervalMs"])).toEqual(["commitIntervalMs"]);
    expect(changedReplaceOnChanges(olds, news, ["env", "env.A"])).toEqual([]);
    expect(changedReplaceOnChanges(olds, { ...news, env: { A: "9", B: "2" } }, ["env.A", "env.B"])).toEqual(["env.A"]);
    expect(changedReplaceOnChanges(olds, news, ["*"], ["generation"])).toEqual(["commitIntervalMs"]);
    expect(changedReplaceOnChanges(olds, news, undefined)).toEqual([]);
  });

  it("the Executable's diff: a commit interval change is in place, unless replaceOnChanges names it", () => {
    const olds = { ...desiredFor("pe-a"), generation: 1 } as never;
    const news = { ...desiredFor("pe-a", { commitInterval: "20s" }) };
    expect(diffExecutable(olds, news)).toMatchObject({ changes: true, replaces: [] });
    const withOption = { ...desiredFor("pe-a"), generation: 1, replaceOnChanges: ["commitIntervalMs"] } as never;
    expect(diffExecutable(withOption, { ...news, replaceOnChanges: ["commitIntervalMs"] })).toMatchObject({ changes: true, replaces: ["commitIntervalMs"] });
    // Adding the option alone records it in place; nothing is replaced.
    expect(diffExecutable(olds, { ...desiredFor("pe-a"), replaceOnChanges: ["commitIntervalMs"] })).toMatchObject({ changes: true, replaces: [] });
  });
});
