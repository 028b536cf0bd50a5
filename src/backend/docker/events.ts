// Following the Engine's event stream (GET /events: one JSON document per line) through dockerode,
// optionally across engine restarts and dropped connections: it re-subscribes from the last event
// seen (`since`), and drops the events it already delivered. One helper for the backend's failure
// watch, tests and benchmarks.
import type { Readable } from "node:stream";
import type Dockerode from "dockerode";
import { engineCall } from "./engineCall";
import { pause, retry } from "../../util/retry";

/** The fields of an Engine event reseat reads. */
export interface EngineEvent {
  Type?: string;
  Action: string;
  id: string;
  time?: number;
  timeNano: number;
  Actor: { ID?: string; Attributes: Record<string, string> };
}

export interface EventFilters {
  type?: string[];
  event?: string[];
  label?: string[];
  container?: string[];
}

export interface FollowOptions {
  /** Replay events from this Unix time (seconds) on. */
  since?: number;
  /** Budget of each subscribe call (until the engine answers), ms. */
  subscribeTimeoutMs?: number;
  /**
   * Keep following when the stream ends (engine restarted, connection lost): subscribe again every
   * `retryMs` until it works, from the last event seen. Without it, the subscription ends with the stream.
   */
  resubscribe?: {
    retryMs?: number;
    onDisconnect?: (error: Error) => void;
    onResubscribed?: () => void;
  };
}

export interface EventSubscription {
  close(): void;
  /** Resolves when following stops: undefined after close(), else what ended the stream. */
  readonly ended: Promise<Error | undefined>;
}

/** Subscribes (resolves once the engine answered; throws if it cannot), then hands each event to `onEvent`. */
export async function followEvents(
  docker: Pick<Dockerode, "getEvents">,
  address: string,
  filters: EventFilters,
  onEvent: (event: EngineEvent) => void,
  options: FollowOptions = {},
): Promise<EventSubscription> {
  const subscribeTimeoutMs = options.subscribeTimeoutMs ?? 30_000;
  let closed = false;
  let current: Readable | undefined;
  /** Ends the wait for a re-subscription when the stream is closed. */
  const closing = new AbortController();
  /** Delivered events of the last seconds, so that a re-subscription's replay is not delivered twice. */
  const delivered = new Map<string, number>();
  let lastNano = 0;

  const deliver = (event: EngineEvent) => {
    const key = `${event.timeNano}|${event.id}|${event.Action}`;
    if (delivered.has(key)) return;
    delivered.set(key, event.timeNano);
    if (event.timeNano > lastNano) {
      lastNano = event.timeNano;
      for (const [k, nano] of delivered) if (nano < lastNano - 10e9) delivered.delete(k);
    }
    onEvent(event);
  };

  const subscribe = async (since?: number): Promise<Readable> => {
    const stream = (await engineCall(address, "GET /events", subscribeTimeoutMs, (abortSignal) =>
      docker.getEvents({ filters: filters as Record<string, string[]>, ...(since !== undefined ? { since } : {}), abortSignal } as Dockerode.GetEventsOptions),
    )) as unknown as Readable;
    let buffer = "";
    stream.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("utf8");
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (!line) continue;
        let event: EngineEvent;
        try {
          event = JSON.parse(line) as EngineEvent;
        } catch {
          continue; // not an event
        }
        deliver(event);
      }
    });
    current = stream;
    return stream;
  };

  /** What ends one stream: its end, close or error. */
  const endOf = (stream: Readable) =>
    new Promise<Error>((resolve) => {
      stream.once("end", () => resolve(new Error("the Docker Engine closed the event stream")));
      stream.once("close", () => resolve(new Error("the event stream was closed")));
      stream.once("error", (error: Error) => resolve(error));
    });

  const startedAt = Math.floor(Date.now() / 1000);
  const first = await subscribe(options.since);
  const ended = (async (): Promise<Error | undefined> => {
    let error = await endOf(first);
    const again = options.resubscribe;
    while (!closed && again) {
      again.onDisconnect?.(error);
      // Until the engine takes the subscription again, or the stream is closed (unbounded on purpose: a
      // follower waits for its engine; close() stops it). A pause first: the engine just dropped us.
      await pause(again.retryMs ?? 500, closing.signal);
      const stream = await retry(
        {
          what: "the Docker Engine's event stream",
          pauseMs: again.retryMs ?? 500,
          signal: closing.signal,
          onError: (failure) => (error = failure as Error),
        },
        async () => {
          // From the second of the last event seen (replayed events are dropped above); the engine's
          // clock decides, so with no event yet, from when we first subscribed (or `since`).
          const since = lastNano ? Math.floor(lastNano / 1e9) : (options.since ?? startedAt - 1);
          return subscribe(since);
        },
      ).catch(() => undefined);
      if (!stream || closed) break;
      again.onResubscribed?.();
      error = await endOf(stream);
    }
    return closed ? undefined : error;
  })();

  return {
    close() {
      closed = true;
      closing.abort();
      current?.destroy();
    },
    ended,
  };
}
