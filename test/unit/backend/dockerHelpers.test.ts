// The Docker backend's engine-free parts: archives (tar-stream), log framing, names, pull references
// and progress, the call budget and its errors, and the event stream's re-subscription (against a
// stand-in for dockerode's getEvents: a stream per subscription, ended at will).
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import Dockerode from "dockerode";
import { describe, expect, it } from "vitest";
import { executableName, generationFromName } from "../../../src/backend/backend";
import { filesOf, firstFile, packArchive } from "../../../src/backend/docker/archive";
import { dockerClient } from "../../../src/backend/docker/client";
import { resolveConnection } from "../../../src/backend/docker/connection";
import { Demuxer, logText } from "../../../src/backend/docker/logs";
import { EngineError, engineCall, engineCallOrUndefined } from "../../../src/backend/docker/engineCall";
import { EngineEvent, followEvents } from "../../../src/backend/docker/events";
import { PullProgress, registryAnswer, repositoryOf, splitReference } from "../../../src/backend/docker/imagePull";

describe("archives", () => {
  it("round-trip files and directories, with their modes", async () => {
    const archive = await packArchive([
      { name: ".reseat/" },
      { name: ".reseat/meta.json", content: Buffer.from('{"generation":3}') },
      { name: "secret", content: Buffer.from("x"), mode: 0o600 },
    ]);
    expect(archive.length % 512).toBe(0);
    const files = await filesOf(archive);
    expect(files.get(".reseat/meta.json")?.toString()).toBe('{"generation":3}');
    expect(await firstFile(archive)).toEqual(Buffer.from('{"generation":3}'));
  });

  it("write archives GNU tar reads (modes included), and read archives GNU tar writes", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-archive-"));
    try {
      const content = Buffer.alloc(1300, "x");
      fs.writeFileSync(
        path.join(dir, "a.tar"),
        await packArchive([{ name: "d/" }, { name: "d/f.txt", content }, { name: "d/s", content: Buffer.from("s"), mode: 0o600 }]),
      );
      execFileSync("tar", ["-xpf", "a.tar"], { cwd: dir });
      expect(fs.readFileSync(path.join(dir, "d", "f.txt"))).toEqual(content);
      expect(fs.statSync(path.join(dir, "d", "s")).mode & 0o777).toBe(0o600);
      fs.writeFileSync(path.join(dir, "meta.json"), "hello");
      const stream = new PassThrough();
      stream.end(execFileSync("tar", ["-cf", "-", "meta.json"], { cwd: dir }));
      expect((await firstFile(stream))?.toString()).toBe("hello");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("an archive without a regular file has no first file", async () => {
    expect(await firstFile(await packArchive([{ name: "only-a-dir/" }]))).toBeUndefined();
  });
});

describe("engine helpers", () => {
  it("a log's text: stdout and stderr frames in the engine's order (split by docker-modem); a TTY container's log as it is", async () => {
    const frame = (stream: number, text: string) => {
      const head = Buffer.alloc(8);
      head[0] = stream;
      head.writeUInt32BE(Buffer.byteLength(text), 4);
      return Buffer.concat([head, Buffer.from(text)]);
    };
    // No engine is contacted: the client only splits bytes.
    const modem = new Dockerode({ socketPath: "/nonexistent" }).modem as Demuxer;
    const framed = Buffer.concat([frame(1, "out 1\n"), frame(2, "err 1\n"), frame(1, "out 2 ü\n")]);
    expect(await logText(modem, framed, false)).toBe("out 1\nerr 1\nout 2 ü\n");
    // A TTY's bytes are not frames, even when they happen to start like one.
    const ttyBytes = Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.from("tty output")]);
    expect(await logText(modem, ttyBytes, true)).toBe(ttyBytes.toString("utf8"));
    expect(await logText(modem, Buffer.alloc(0), false)).toBe("");
    // docker-modem parses a log that is JSON as a whole, or hands over a string.
    expect(await logText(modem, { a: 1 }, false)).toBe('{"a":1}');
    expect(await logText(modem, "text", false)).toBe("text");
  });

  it("names carry the generation", () => {
    expect(executableName("orders-0", 12)).toBe("reseat-orders-0-g12");
    expect(generationFromName("/reseat-orders-0-g12")).toBe(12);
    expect(generationFromName("reseat-orders-0-next-abc")).toBe(0);
  });

  it("splits references into fromImage and tag; no tag means latest, never all tags", () => {
    expect(splitReference("busybox")).toEqual({ fromImage: "busybox", tag: "latest" });
    expect(splitReference("127.0.0.1:5000/reseat/demo:v1")).toEqual({ fromImage: "127.0.0.1:5000/reseat/demo", tag: "v1" });
    expect(splitReference("127.0.0.1:5000/reseat/demo")).toEqual({ fromImage: "127.0.0.1:5000/reseat/demo", tag: "latest" });
    const digest = "sha256:" + "b".repeat(64);
    expect(splitReference(`repo/app@${digest}`)).toEqual({ fromImage: "repo/app", tag: digest });
  });

  it("a reference's repository, without tag or digest (where an image pulled from a manifest is found by digest)", () => {
    const digest = "sha256:" + "c".repeat(64);
    expect(repositoryOf("busybox")).toBe("busybox");
    expect(repositoryOf("busybox:1.36")).toBe("busybox");
    expect(repositoryOf("127.0.0.1:5000/reseat/demo:v1")).toBe("127.0.0.1:5000/reseat/demo");
    expect(repositoryOf("127.0.0.1:5000/reseat/demo")).toBe("127.0.0.1:5000/reseat/demo");
    expect(repositoryOf(`repo/app@${digest}`)).toBe("repo/app");
    expect(repositoryOf(`host:5000/app:v1@${digest}`)).toBe("host:5000/app");
  });

  it("a registry's refusal, short and on one line, for a preview's diff", () => {
    const refused = new EngineError(
      "Docker Engine (unix:///var/run/docker.sock) GET /distribution/r/app:v9/json answered 401: errors:\ndenied: requested access to the resource is denied\nunauthorized: authentication required\n",
      401,
    );
    expect(registryAnswer(refused)).toBe("errors: denied: requested access to the resource is denied unauthorized: authentication required (401)");
    expect(registryAnswer(new EngineError("the Docker Engine (unix:///x) did not answer GET /distribution/a/json within 20000 ms", undefined, true))).toBe(
      "the Docker Engine (unix:///x) did not answer GET /distribution/a/json within 20000 ms",
    );
    expect(registryAnswer(new Error("x".repeat(500)))).toHaveLength(240);
  });

  it("sums up a pull's progress stream and keeps its error", () => {
    const progress = new PullProgress("r/app:1");
    progress.update({ status: "Pulling from r/app", id: "1" });
    progress.update({ status: "Pulling fs layer", id: "aaaaaaaaaaaa" });
    progress.update({ status: "Already exists", id: "bbbbbbbbbbbb" });
    progress.update({ status: "Downloading", id: "aaaaaaaaaaaa", progressDetail: { current: 5e6, total: 2e7 } });
    expect(progress.line()).toMatch(/^pulling r\/app:1: 1\/2 layers, 5\.0\/20\.0 MB downloaded, \d+\.\d s$/);
    progress.update({ status: "Pull complete", id: "aaaaaaaaaaaa" });
    expect(progress.layersDone).toBe(2);
    progress.update({ error: "x", errorDetail: { message: "unauthorized: authentication required" } });
    expect(progress.error).toBe("unauthorized: authentication required");
  });
});

describe("engine calls", () => {
  it("a call that outlives its budget fails as a timeout naming the engine and the call", async () => {
    const error = await engineCall("tcp://10.9.9.9:2376", "GET /info", 50, () => new Promise(() => undefined)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EngineError);
    expect((error as EngineError).timedOut).toBe(true);
    expect((error as EngineError).message).toBe("the Docker Engine (tcp://10.9.9.9:2376) did not answer GET /info within 50 ms");
  });

  it("the engine's answer keeps its status and own words; 404 can mean undefined; no answer means unreachable", async () => {
    const refused = Object.assign(new Error("(HTTP code 409) unexpected - Conflict. "), {
      statusCode: 409,
      json: { message: "Conflict. The container name is already in use" },
    });
    const error = (await engineCall("unix:///s", "create container x", 1000, () => Promise.reject(refused)).catch((e: unknown) => e)) as EngineError;
    expect(error.statusCode).toBe(409);
    expect(error.message).toBe("Docker Engine (unix:///s) create container x answered 409: Conflict. The container name is already in use");
    const gone = Object.assign(new Error("no such container"), { statusCode: 404, json: Buffer.from("no such container") });
    expect(await engineCallOrUndefined("unix:///s", "inspect", 1000, () => Promise.reject(gone))).toBeUndefined();
    const down = Object.assign(new Error("connect ENOENT /var/run/docker.sock"), { code: "ENOENT" });
    const unreachable = (await engineCall("unix:///var/run/docker.sock", "GET /info", 1000, () => Promise.reject(down)).catch(
      (e: unknown) => e,
    )) as EngineError;
    expect(unreachable.message).toBe("cannot reach the Docker Engine (unix:///var/run/docker.sock): connect ENOENT /var/run/docker.sock");
    expect(unreachable.statusCode).toBeUndefined();
  });
});

/** A stand-in for dockerode's getEvents: each subscription gets a fresh stream the test controls. */
function fakeEngine() {
  const subscriptions: { options: Record<string, unknown>; stream: PassThrough }[] = [];
  let failNext = 0;
  return {
    subscriptions,
    failSubscriptions(count: number) {
      failNext = count;
    },
    docker: {
      getEvents: async (options: Record<string, unknown>) => {
        if (failNext > 0) {
          failNext--;
          throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
        }
        const stream = new PassThrough();
        subscriptions.push({ options, stream });
        return stream;
      },
    },
  };
}

const event = (id: string, timeNano: number, Action = "die"): EngineEvent => ({ Action, id, timeNano, Actor: { Attributes: { "io.reseat.pe-id": "pe" } } });
const waitUntil = async (what: string, condition: () => boolean) => {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!condition()) throw new Error(`never: ${what}`);
};

describe("following engine events", () => {
  it("hands over each event (split across chunks, garbage lines skipped) and ends with the stream", async () => {
    const engine = fakeEngine();
    const seen: EngineEvent[] = [];
    const subscription = await followEvents(engine.docker as never, "unix:///s", { type: ["container"] }, (e) => seen.push(e));
    expect(engine.subscriptions[0]!.options.filters).toEqual({ type: ["container"] });
    const stream = engine.subscriptions[0]!.stream;
    const line = JSON.stringify(event("a", 1e18)) + "\n";
    stream.write(line.slice(0, 10));
    stream.write(line.slice(10) + "not json\n" + JSON.stringify(event("b", 1e18 + 1)) + "\n");
    await waitUntil("two events", () => seen.length === 2);
    expect(seen.map((e) => e.id)).toEqual(["a", "b"]);
    stream.end();
    expect((await subscription.ended)?.message).toMatch(/closed the event stream|was closed/);
  });

  it("re-subscribes after the engine went away, from the last event's second, without delivering an event twice", async () => {
    const engine = fakeEngine();
    const seen: string[] = [];
    const disconnects: string[] = [];
    let resubscribed = 0;
    const subscription = await followEvents(engine.docker as never, "unix:///s", {}, (e) => seen.push(e.id), {
      resubscribe: { retryMs: 5, onDisconnect: (error) => disconnects.push(error.message), onResubscribed: () => resubscribed++ },
    });
    const t = 1_700_000_000_123_456_789;
    engine.subscriptions[0]!.stream.write(JSON.stringify(event("a", t)) + "\n");
    await waitUntil("a", () => seen.length === 1);
    engine.failSubscriptions(2); // the engine is still restarting for two attempts
    engine.subscriptions[0]!.stream.destroy(new Error("socket hang up"));
    await waitUntil("a new subscription", () => engine.subscriptions.length === 2);
    expect(disconnects).toEqual(["socket hang up"]);
    expect(resubscribed).toBe(1);
    expect(engine.subscriptions[1]!.options.since).toBe(Math.floor(t / 1e9));
    // The engine replays that second: "a" again (dropped), then what happened meanwhile.
    engine.subscriptions[1]!.stream.write(JSON.stringify(event("a", t)) + "\n" + JSON.stringify(event("b", t + 5e8)) + "\n");
    await waitUntil("b", () => seen.length === 2);
    expect(seen).toEqual(["a", "b"]);
    subscription.close();
    expect(await subscription.ended).toBeUndefined();
  });

  it("a subscription the engine refuses fails at once", async () => {
    const engine = fakeEngine();
    engine.failSubscriptions(1);
    await expect(followEvents(engine.docker as never, "unix:///s", {}, () => undefined)).rejects.toThrow(
      /cannot reach the Docker Engine \(unix:\/\/\/s\): connect ECONNREFUSED/,
    );
  });
});

describe("docker-modem's debug output", () => {
  it("stays off even with DEBUG=* (it would print TLS keys and registry credentials)", async () => {
    const debugPath = require.resolve("debug", { paths: [path.dirname(require.resolve("docker-modem"))] });
    const debug = require(debugPath) as { enable(ns: string): void; enabled(ns: string): boolean; namespaces: string };
    const before = debug.namespaces;
    try {
      debug.enable("*");
      expect(debug.enabled("modem")).toBe(true);
      dockerClient(resolveConnection({}, { env: {} }));
      expect(debug.enabled("modem")).toBe(false);
      expect(debug.enabled("something-else")).toBe(true);
    } finally {
      debug.enable(before ?? "");
    }
  });
});
