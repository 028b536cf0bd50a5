// Issue 21.5: the controller's presence lease on the machine's Docker engine. The controller module runs
// in its own Node process (dist/); its presence is removed (as `docker container prune` would) and taken
// by another holder that lives for a minute. Exactly one re-acquisition is in flight at any time (its
// log lines alternate: lost → waiting → lost → …), none ends the process with an unhandled rejection,
// and once the other holder leaves it wins once and leaks no lease.
//
// Shared engine: the controller sees no PE here (its backend lists none and drops events: it must not
// act on other tests' PEs) and its presence lease has this test's own name, not the engine's "controller".
import { ChildProcess, spawn } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openBackend } from "../../src/backend/open";
import { LABELS } from "../../src/backend/backend";
import { HeldLease, LeaseBusyError, acquireLease } from "../../src/lease/lease";
import { ROOT, docker, orUndefined, waitFor } from "../support/harness";

const NAME = `it-presence-${process.pid}`;
const CONTAINER = `reseat-lease-${NAME}`;
const OTHER = `it-other-holder:${process.pid}`;

/** The controller, its presence lease renamed, seeing no PE. Prints its events as JSON lines. */
const CONTROLLER = `
const { watch } = require(${JSON.stringify(path.join(ROOT, "dist/src/controller/watch.js"))});
const { openBackend } = require(${JSON.stringify(path.join(ROOT, "dist/src/backend/open.js"))});
const name = process.argv[1];
const print = (event) => process.stdout.write(JSON.stringify(event) + "\\n");
process.on("unhandledRejection", (reason) => { print({ kind: "unhandled-rejection", error: String(reason && reason.stack || reason) }); process.exit(70); });
const inner = openBackend(undefined);
const rename = (lease) => (lease === "controller" ? name : lease);
const backend = new Proxy(inner, {
  get(target, prop) {
    if (prop === "listExecutables") return async () => [];
    if (prop === "watchExecutables") return () => target.watchExecutables(() => undefined);
    if (prop === "tryAcquireLease") return (lease, ...rest) => target.tryAcquireLease(rename(lease), ...rest);
    if (prop === "readLease") return (lease) => target.readLease(rename(lease));
    const value = target[prop];
    return typeof value === "function" ? value.bind(target) : value;
  },
});
watch({ backend, onEvent: print, resyncMs: 1000, leaseMs: 3000 }).then((watcher) => {
  process.on("SIGTERM", () => watcher.stop().then(() => { print({ kind: "stopped" }); process.exit(0); }));
}, (error) => { print({ kind: "start-failed", error: error.message }); process.exit(1); });
`;

interface Event {
  kind: string;
  error?: string;
  reason?: string;
}

function startController(): { child: ChildProcess; events: Event[]; holder: string } {
  const child = spawn(process.execPath, ["-e", CONTROLLER, NAME], { stdio: ["ignore", "pipe", "pipe"] });
  const events: Event[] = [];
  let buffer = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) events.push(JSON.parse(line) as Event);
    }
  });
  child.stderr!.on("data", (chunk: Buffer) => process.stderr.write(chunk));
  return { child, events, holder: `${os.hostname()}:${child.pid}:controller` };
}

const holderOf = async (): Promise<string | undefined> => (await orUndefined(docker.getContainer(CONTAINER).inspect()))?.Config.Labels[LABELS.leaseHolder];
const presenceSteps = (events: Event[]) => events.filter((e) => e.kind.startsWith("presence-")).map((e) => (e.kind === "presence-lost" ? "start" : "end"));
/** Starts and ends strictly alternate: never a second re-acquisition before the first ended. */
const oneAtATime = (steps: string[]) => steps.every((step, i) => step === (i % 2 === 0 ? "start" : "end"));

describe("the controller's presence lease on Docker", () => {
  let controller: ReturnType<typeof startController> | undefined;
  let other: HeldLease | undefined;

  afterAll(async () => {
    await other?.release().catch(() => undefined);
    if (controller && controller.child.exitCode === null) controller.child.kill("SIGKILL");
    await docker
      .getContainer(CONTAINER)
      .remove({ force: true })
      .catch(() => undefined);
  });

  it("lost while another holder lives for a minute: one re-acquisition in flight, no unhandled rejection, no leaked lease after it wins", async () => {
    const backend = openBackend(undefined);
    controller = startController();
    const { events, child, holder } = controller;
    await waitFor("the controller to watch", async () => (events.some((e) => e.kind === "watching") ? true : undefined));
    expect(await holderOf()).toBe(holder);

    // Its lease is removed (a prune) and another holder takes it at once, and keeps renewing it.
    other = await waitFor("the other holder to take the presence", async () => {
      await docker
        .getContainer(CONTAINER)
        .remove({ force: true })
        .catch(() => undefined);
      return acquireLease(backend, NAME, OTHER, { leaseMs: 3000, waitMs: 0 }).catch((error: unknown) => {
        if (error instanceof LeaseBusyError) return undefined; // the controller was quicker: remove it again
        throw error;
      });
    });
    const lostAt = Date.now();

    // A minute of the other holder: the controller keeps trying, one bounded attempt at a time.
    await waitFor(
      "a minute of the other holder, with several re-acquisitions ended",
      async () => (Date.now() - lostAt >= 60_000 && events.filter((e) => e.kind === "presence-waiting").length >= 3 ? true : undefined),
      180_000,
    );
    expect(await holderOf()).toBe(OTHER); // never taken from a live holder
    expect(oneAtATime(presenceSteps(events))).toBe(true);
    expect(events.filter((e) => e.kind === "presence-waiting").every((e) => e.error?.includes(`is held by ${OTHER}`))).toBe(true);
    expect(child.exitCode).toBeNull();

    // The other holder leaves: the controller wins, once.
    await other.release();
    other = undefined;
    await waitFor("the controller to take its presence again", async () => (events.some((e) => e.kind === "presence-regained") ? true : undefined), 60_000);
    expect(await holderOf()).toBe(holder);
    const renewals = (await backend.readLease(NAME))!.renewals;
    await waitFor("the controller to renew its presence", async () => ((await backend.readLease(NAME))!.renewals > renewals ? true : undefined));
    const steps = presenceSteps(events);
    expect(oneAtATime(steps)).toBe(true);
    expect(steps.length % 2).toBe(0); // nothing in flight after the win
    expect(events.filter((e) => e.kind === "presence-regained")).toHaveLength(1);
    expect(events.filter((e) => e.kind === "presence-released")).toHaveLength(0);
    expect(events.filter((e) => e.kind === "unhandled-rejection")).toEqual([]);

    // Stopped, it releases the one lease it holds: none left behind.
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(await orUndefined(docker.getContainer(CONTAINER).inspect())).toBeUndefined();
    const leases = await docker.listContainers({ all: true, filters: { label: [`${LABELS.leaseHolder}=${holder}`] } });
    expect(leases).toEqual([]);
    console.log(`presence steps: ${steps.join(" ")}; events: ${events.map((e) => e.kind).join(", ")}`);
  });
});
