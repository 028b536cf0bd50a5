// The one retry/poll helper: its bounds (attempts, deadline), its pause schedule, which errors it
// retries, and stopping it from outside.
import { describe, expect, it } from "vitest";
import { RetryAbortedError, RetryExhaustedError, poll, retry } from "../../../src/util/retry";

describe("poll", () => {
  it("answers the first value that is not undefined, pausing per the schedule between attempts", async () => {
    const pauses: number[] = [];
    const value = await poll({ what: "x", pauseMs: (n) => (pauses.push(n), 0) }, (n) => (n === 3 ? "ready" : undefined));
    expect(value).toBe("ready");
    expect(pauses).toEqual([0, 1, 2]);
  });

  it("gives up after its attempts with RetryExhaustedError naming what it waited for", async () => {
    let attempts = 0;
    const error = await poll({ what: "the lease", pauseMs: 0, attempts: 4 }, () => (attempts++, undefined)).catch((e: unknown) => e);
    expect(attempts).toBe(4);
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect((error as Error).message).toMatch(/gave up waiting for the lease after 4 attempts/);
  });

  it("gives up once its deadline passed, with the caller's own error when it builds one", async () => {
    const error = await poll({ what: "x", pauseMs: 1, deadlineMs: 0, exhausted: (n) => new Error(`not ready after ${n}`) }, () => undefined).catch(
      (e: unknown) => e,
    );
    expect((error as Error).message).toMatch(/^not ready after \d+$/);
  });

  it("an error of an attempt ends it at once", async () => {
    await expect(poll({ what: "x", pauseMs: 0, attempts: 10 }, () => Promise.reject(new Error("exited")))).rejects.toThrow("exited");
  });

  it("its signal ends the pause and the poll", async () => {
    const stop = new AbortController();
    const stopped = poll({ what: "the engine", pauseMs: 3_600_000, signal: stop.signal }, () => undefined);
    stop.abort();
    await expect(stopped).rejects.toBeInstanceOf(RetryAbortedError);
  });
});

describe("retry", () => {
  it("retries failures (told to onError) until an attempt resolves, undefined included", async () => {
    const seen: string[] = [];
    let n = 0;
    const result = await retry({ what: "x", pauseMs: 0, onError: (e) => seen.push((e as Error).message) }, async () => {
      if (++n < 3) throw new Error(`fail ${n}`);
    });
    expect(result).toBeUndefined();
    expect(seen).toEqual(["fail 1", "fail 2"]);
  });

  it("does not retry what retryIf refuses; when exhausted, carries the last error", async () => {
    await expect(retry({ what: "x", pauseMs: 0, retryIf: () => false }, () => Promise.reject(new Error("fatal")))).rejects.toThrow("fatal");
    const error = await retry({ what: "the engine", pauseMs: 0, attempts: 2 }, () => Promise.reject(new Error("refused"))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryExhaustedError);
    expect((error as RetryExhaustedError).last).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/after 2 attempts in \d+ ms: refused$/);
  });
});
