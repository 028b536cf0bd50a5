// One engine call with a time budget, and the one error shape for what the engine (or the way to it)
// answered: the status code for "is it there?" questions, the engine's address for people, never a
// credential (docker-modem sends those in a header, and nothing here reads headers).

/** An engine call that failed: `statusCode` when the engine answered, undefined when it was unreachable or too slow. */
export class EngineError extends Error {
  constructor(
    message: string,
    readonly statusCode?: number,
    /** The engine did not answer within the call's budget. */
    readonly timedOut = false,
  ) {
    super(message);
    this.name = "EngineError";
  }
}

/** Runs `fn` with an abort signal that fires after `timeoutMs`, and turns any failure into EngineError. */
export async function engineCall<T>(address: string, what: string, timeoutMs: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  // Raced as well as aborted: a few dockerode calls (image inspect) do not pass the signal on.
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error("timed out"));
    }, timeoutMs);
  });
  try {
    return await Promise.race([fn(controller.signal), deadline]);
  } catch (error) {
    throw asEngineError(error, address, what, controller.signal.aborted ? timeoutMs : undefined);
  } finally {
    clearTimeout(timer);
  }
}

/** `engineCall`, answering undefined when the engine says 404 (no such container, volume, image). */
export async function engineCallOrUndefined<T>(
  address: string,
  what: string,
  timeoutMs: number,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T | undefined> {
  try {
    return await engineCall(address, what, timeoutMs, fn);
  } catch (error) {
    if (error instanceof EngineError && error.statusCode === 404) return undefined;
    throw error;
  }
}

export function hasStatus(error: unknown, ...codes: number[]): boolean {
  return error instanceof EngineError && error.statusCode !== undefined && codes.includes(error.statusCode);
}

/** docker-modem's errors ({statusCode, json: {message}}, socket errors, aborts) as one EngineError. */
export function asEngineError(error: unknown, address: string, what: string, timedOutAfterMs?: number): EngineError {
  if (error instanceof EngineError) return error;
  const e = error as { statusCode?: number; json?: unknown; message?: string; code?: string };
  if (timedOutAfterMs !== undefined) {
    return new EngineError(`the Docker Engine (${address}) did not answer ${what} within ${timedOutAfterMs} ms`, undefined, true);
  }
  if (typeof e.statusCode === "number") {
    return new EngineError(`Docker Engine (${address}) ${what} answered ${e.statusCode}: ${engineMessage(e)}`, e.statusCode);
  }
  return new EngineError(
    `cannot reach the Docker Engine (${address}): ${e.message ?? String(error)}${e.code && !e.message?.includes(e.code) ? ` (${e.code})` : ""}`,
  );
}

/** The engine's own words: its JSON {message}, else docker-modem's "(HTTP code …) reason - cause". */
function engineMessage(error: { json?: unknown; message?: string }): string {
  const json = error.json as { message?: string } | Buffer | string | undefined;
  if (json && typeof json === "object" && !Buffer.isBuffer(json) && typeof json.message === "string") return json.message.trim();
  if (Buffer.isBuffer(json) && json.length) return json.toString("utf8").trim();
  if (typeof json === "string" && json) return json.trim();
  return (error.message ?? "").replace(/^\(HTTP code \d+\) [^-]*- /, "").trim();
}
