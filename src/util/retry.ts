// The one way reseat waits for something: poll (or retry) with a pause between attempts, bounded by a
// number of attempts and/or a deadline on the monotonic clock, and stoppable. Every loop that used to
// hand-roll `for (;;) { …; await sleep(…) }` goes through here, so none can forget its bound or its pause.
// Imports nothing: any layer may use it.
import { performance } from "node:perf_hooks";

export interface PollOptions {
  /** What is being waited for, for the error when the bound is reached ("pod x to be ready"). */
  what: string;
  /** The pause after attempt `n` (0-based) before the next one: a number, or a function for a schedule. */
  pauseMs: number | ((attempt: number) => number);
  /** At most this many attempts (default: unbounded, then `deadlineMs` must bound it or `signal` stop it). */
  attempts?: number;
  /** No new attempt once this much time has passed since the first one (monotonic clock). */
  deadlineMs?: number;
  /** Stops the wait: the current pause ends at once, no further attempt starts, and the poll rejects with RetryAbortedError. */
  signal?: AbortSignal;
  /** Builds the error thrown when the bound is reached (default: RetryExhaustedError). */
  exhausted?: (attempts: number, elapsedMs: number) => Error | Promise<Error>;
}

/** The bound of a poll or retry was reached. `last` is the last error (retry) or undefined (poll). */
export class RetryExhaustedError extends Error {
  constructor(
    what: string,
    readonly attempts: number,
    readonly elapsedMs: number,
    readonly last?: unknown,
  ) {
    super(
      `reseat: gave up waiting for ${what} after ${attempts} attempt${attempts === 1 ? "" : "s"} in ${Math.round(elapsedMs)} ms${last ? `: ${(last as Error)?.message ?? String(last)}` : ""}`,
    );
    this.name = "RetryExhaustedError";
  }
}

/** The wait was stopped from outside (its signal fired). */
export class RetryAbortedError extends Error {
  constructor(what: string) {
    super(`reseat: stopped waiting for ${what}`);
    this.name = "RetryAbortedError";
  }
}

/**
 * Calls `attempt` until it answers something other than `undefined` ("not yet"), pausing between
 * attempts. An error thrown by `attempt` ends the poll (use `retry` to retry on errors).
 */
export async function poll<T>(options: PollOptions, attempt: (n: number) => Promise<T | undefined> | T | undefined): Promise<T> {
  const started = performance.now();
  for (let n = 0; ; n++) {
    if (options.signal?.aborted) throw new RetryAbortedError(options.what);
    const result = await attempt(n);
    if (result !== undefined) return result;
    const elapsed = performance.now() - started;
    const made = n + 1;
    if ((options.attempts !== undefined && made >= options.attempts) || (options.deadlineMs !== undefined && elapsed > options.deadlineMs)) {
      throw options.exhausted ? await options.exhausted(made, elapsed) : new RetryExhaustedError(options.what, made, elapsed);
    }
    await pause(typeof options.pauseMs === "function" ? options.pauseMs(n) : options.pauseMs, options.signal);
  }
}

export interface RetryOptions extends Omit<PollOptions, "exhausted"> {
  /** Which errors are worth another attempt (default: all). Any other ends the retry at once. */
  retryIf?: (error: unknown) => boolean;
  /** Told of every failed attempt that will be retried (for logs). */
  onError?: (error: unknown, attempt: number) => void;
  /** Builds the error thrown when the bound is reached (default: RetryExhaustedError carrying the last error). */
  exhausted?: (attempts: number, elapsedMs: number, last: unknown) => Error | Promise<Error>;
}

/** Calls `attempt` until it resolves, pausing after each failure; bounded like `poll`. */
export async function retry<T>(options: RetryOptions, attempt: (n: number) => Promise<T>): Promise<T> {
  let last: unknown;
  // Boxed: an attempt that resolves to undefined (a Promise<void>) has succeeded, not "not yet".
  const result = await poll<{ value: T }>(
    {
      ...options,
      exhausted: (attempts, elapsed) =>
        options.exhausted ? options.exhausted(attempts, elapsed, last) : new RetryExhaustedError(options.what, attempts, elapsed, last),
    },
    async (n) => {
      try {
        return { value: await attempt(n) };
      } catch (error) {
        if (options.retryIf && !options.retryIf(error)) throw error;
        last = error;
        options.onError?.(error, n);
        return undefined;
      }
    },
  );
  return result.value;
}

/** A pause that a signal ends early (resolves either way; the caller checks the signal). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener("abort", done, { once: true });
  });
}
