// The shared pod watch (src/backend/kubernetes/podWatch.ts) on a scripted watch: waits follow pods from
// its cache, wake on their events, and fall back to the API server whenever the watch cannot say.
import { afterEach, describe, expect, it, vi } from "vitest";
import type { CoreV1Api, KubeConfig, V1Pod } from "@kubernetes/client-node";
import { PodWatch } from "../../../src/backend/kubernetes/podWatch";

type ScriptedWatch = { query: Record<string, unknown>; onEvent: (phase: string, object: unknown) => void; done: (error: unknown) => void; aborted: boolean };
// vi.mock is hoisted above the imports: what its factory uses must be hoisted too.
const { watches } = vi.hoisted(() => ({ watches: [] as ScriptedWatch[] }));
vi.mock("../../../src/backend/kubernetes/apiDeadline", () => ({
  watchWithDeadlines: async (_config: unknown, _path: string, query: Record<string, unknown>, onEvent: never, done: never) => {
    const watch = { query, onEvent, done, aborted: false };
    watches.push(watch);
    return { abort: () => void (watch.aborted = true) };
  },
}));

const pod = (name: string, phase: string): V1Pod => ({ metadata: { name }, status: { phase } });
const core = (items: V1Pod[]) => ({ listNamespacedPod: async () => ({ items, metadata: { resourceVersion: "42" } }) }) as unknown as CoreV1Api;
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

afterEach(() => {
  watches.length = 0;
  vi.useRealTimers();
});

describe("the shared pod watch", () => {
  it("starts from a list (watching from its resourceVersion) and serves each follower its pod from the cache", async () => {
    const watch = new PodWatch(
      () => ({}) as KubeConfig,
      () => core([pod("a", "Pending")]),
      "ns",
    );
    const a = watch.follow("a");
    const b = watch.follow("b");
    expect(a.seen()).toBeUndefined(); // not started yet: read the API server
    await settle();
    expect(watches).toHaveLength(1);
    expect(watches[0]!.query).toMatchObject({ labelSelector: "io.reseat.role=executable", resourceVersion: "42" });
    expect(a.watching()).toBe(true);
    expect(a.seen()?.status?.phase).toBe("Pending");
    expect(b.seen()).toBeUndefined(); // no event of b yet: read it
    const next = a.changed(60_000);
    watches[0]!.onEvent("MODIFIED", pod("a", "Running"));
    expect(await next).toBe(true);
    expect(a.seen()?.status?.phase).toBe("Running");
    // An event between a look and the next wait is not missed.
    watches[0]!.onEvent("DELETED", pod("a", "Running"));
    expect(await a.changed(60_000)).toBe(true);
    expect(a.seen()).toBeNull();
    expect(await b.changed(5)).toBe(false);
    a.close();
    b.close();
  });

  it("says nothing once the watch ended (waits read the API server) and watches again; closes when nobody follows", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const watch = new PodWatch(
      () => ({}) as KubeConfig,
      () => core([pod("a", "Running")]),
      "ns",
    );
    const a = watch.follow("a");
    await vi.advanceTimersByTimeAsync(0);
    expect(a.seen()).not.toBeUndefined();
    const woken = a.changed(60_000);
    watches[0]!.done(null); // the server ended it (its timeout)
    expect(await woken).toBe(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(watches).toHaveLength(2); // started again for the follower still waiting
    a.close();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(watches[1]!.aborted).toBe(true);
    expect(a.watching()).toBe(false);
  });
});
