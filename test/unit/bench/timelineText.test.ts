// The demo's rollout picture for a terminal (bench/timeline.ts renderTimelineText): one row per member on
// a shared time axis, the SVG's phases as characters.
import { describe, expect, it } from "vitest";
import { renderTimelineText } from "../../../bench/timeline";

describe("renderTimelineText", () => {
  const panel = {
    title: "group",
    durationMs: 10_000,
    members: [
      { name: "g-2", kill: 0, die: 1000, start: 2000, ready: 4000 },
      { name: "g-1", kill: 5000, die: 6000, start: 7000, ready: 9000 },
      { name: "g-0" }, // not replaced: an empty row
    ],
  };

  it("draws each phase where it happened on a shared axis, with the member's stop → ready time", () => {
    const [first, second, untouched, axis] = renderTimelineText(panel, 10);
    // 1 column = 1 s: stopping 0-1, no executable 1-2, starting 2-4, ready at 4.
    expect(first).toBe("g-2  ░█▓▓|       stop → ready 4.0 s");
    expect(second).toBe("g-1       ░█▓▓|  stop → ready 4.0 s");
    expect(untouched).toBe("g-0            ");
    expect(axis).toBe("     0 s 10.0 s");
  });

  it("keeps a phase shorter than a column visible and never draws past the axis", () => {
    const [row] = renderTimelineText({ title: "t", durationMs: 1000, members: [{ name: "m", kill: 990, die: 995, start: 998, ready: 1000 }] }, 20);
    expect(row!.startsWith("m  ")).toBe(true);
    expect(row!.slice(3, 23)).toMatch(/^ {19}\|$/);
  });
});
