// A steady-rate request client for the hand-over benches: an open loop (each request is sent at its own
// scheduled time, whether or not the ones before it have answered: a slow server cannot slow the client down
// and hide its own pauses) of PUT / GET against the session workload, one new connection per request, each
// request's outcome and latency recorded.
//
// Outcomes: ok (HTTP 2xx), refused (connection refused, or no endpoint to send it to), reset (connection reset
// or closed before an answer), timeout (no answer within timeoutMs), error (any other HTTP status or failure).
import * as http from "node:http";
import { median, percentile, round } from "./results";

export type Outcome = "ok" | "refused" | "reset" | "timeout" | "error";

export interface RequestRecord {
  /** Wall-clock ms (performance.timeOrigin + now) the request was due and sent / answered or failed. */
  sentAt: number;
  endedAt: number;
  outcome: Outcome;
  method: "PUT" | "GET";
  status?: number;
  detail?: string;
}

export interface LoadOptions {
  /** Base URL to send the next request to ("http://host:port"), or undefined when there is none (counted refused). */
  target: () => string | undefined;
  ratePerSecond?: number;
  timeoutMs?: number;
  /** Session keys cycled through (PUT k<i % keys>, GET the last acknowledged one). */
  keys?: number;
}

export const nowMs = (): number => performance.timeOrigin + performance.now();

export class LoadClient {
  readonly records: RequestRecord[] = [];
  private running = false;
  private inFlight = new Set<Promise<void>>();
  private loop?: Promise<void>;
  private lastAcked?: string;
  private readonly rate: number;
  private readonly timeoutMs: number;
  private readonly keys: number;

  constructor(private readonly options: LoadOptions) {
    this.rate = options.ratePerSecond ?? 200;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.keys = options.keys ?? 64;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops sending and waits for every request sent to end. */
  async stop(): Promise<RequestRecord[]> {
    this.running = false;
    await this.loop;
    await Promise.all([...this.inFlight]);
    return this.records;
  }

  /** Resolves once every request sent before now has ended (answered, failed or timed out). */
  async settle(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }

  private async run(): Promise<void> {
    const interval = 1000 / this.rate;
    const startedAt = nowMs();
    for (let i = 0; this.running; i++) {
      const due = startedAt + i * interval;
      const wait = due - nowMs();
      // Late (the event loop was busy): send at once; the schedule, not the last send, sets the pace.
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      if (!this.running) break;
      const request = this.send(i).finally(() => this.inFlight.delete(request));
      this.inFlight.add(request);
    }
  }

  private async send(i: number): Promise<void> {
    const base = this.options.target();
    const sentAt = nowMs();
    const put = i % 2 === 0 || !this.lastAcked;
    const key = put ? `k${(i >> 1) % this.keys}` : this.lastAcked!;
    const method = put ? "PUT" : "GET";
    if (!base) {
      this.records.push({ sentAt, endedAt: sentAt, outcome: "refused", method, detail: "no endpoint" });
      return;
    }
    const body = put ? JSON.stringify({ i, at: sentAt }) : undefined;
    const record = await request(`${base}/sessions/${key}`, method, body, this.timeoutMs);
    if (put && record.outcome === "ok") this.lastAcked = key;
    this.records.push({ sentAt, endedAt: nowMs(), method, ...record });
  }
}

function request(
  url: string,
  method: "PUT" | "GET",
  body: string | undefined,
  timeoutMs: number,
): Promise<Pick<RequestRecord, "outcome" | "status" | "detail">> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: Pick<RequestRecord, "outcome" | "status" | "detail">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    // agent: false: a connection of its own per request (what a client sees of a listener going away and
    // coming back: refused while nobody listens, reset when the listener dies with the connection open).
    const req = http.request(url, { method, agent: false, headers: body ? { "content-type": "application/json" } : {} }, (res) => {
      res.resume();
      res.on("end", () =>
        done(res.statusCode! >= 200 && res.statusCode! < 300 ? { outcome: "ok", status: res.statusCode } : { outcome: "error", status: res.statusCode }),
      );
      res.on("error", (error) => done({ outcome: "reset", status: res.statusCode, detail: error.message }));
    });
    const timer = setTimeout(() => {
      done({ outcome: "timeout", detail: `no answer in ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    req.on("error", (error: NodeJS.ErrnoException) => done(classify(error)));
    req.end(body);
  });
}

function classify(error: NodeJS.ErrnoException): Pick<RequestRecord, "outcome" | "detail"> {
  if (error.code === "ECONNREFUSED") return { outcome: "refused", detail: error.code };
  if (error.code === "ECONNRESET" || error.code === "EPIPE" || error.message === "socket hang up")
    return { outcome: "reset", detail: error.code ?? error.message };
  return { outcome: "error", detail: error.code ?? error.message };
}

export interface WindowSummary {
  requests: number;
  ok: number;
  refused: number;
  reset: number;
  timeout: number;
  error: number;
  /** refused + reset + timeout + error. */
  failed: number;
  /** The longest any request waited for its answer or its failure (ms). */
  longestWaitMs: number;
  /**
   * Downtime as a client sees it: the longest span from the last successful answer before a failed request
   * to the first successful answer after it (0 when no request failed). Resolution: the request interval.
   */
  longestWithoutSuccessMs: number;
  /** Failed requests by what failed them: "503 PUT", "ECONNREFUSED", "ECONNRESET", "no endpoint", … */
  failures: Record<string, number>;
}

/** What happened to the requests sent in [from, to] (wall-clock ms). */
export function summarize(records: RequestRecord[], from: number, to: number): WindowSummary {
  const inWindow = records.filter((r) => r.sentAt >= from && r.sentAt <= to).sort((a, b) => a.sentAt - b.sentAt);
  const count = (outcome: Outcome) => inWindow.filter((r) => r.outcome === outcome).length;
  return {
    requests: inWindow.length,
    ok: count("ok"),
    refused: count("refused"),
    reset: count("reset"),
    timeout: count("timeout"),
    error: count("error"),
    failed: inWindow.filter((r) => r.outcome !== "ok").length,
    longestWaitMs: round(Math.max(0, ...inWindow.map((r) => r.endedAt - r.sentAt))),
    longestWithoutSuccessMs: round(longestWithoutSuccess(records, inWindow)),
    failures: tally(inWindow.filter((r) => r.outcome !== "ok").map((r) => (r.status ? `${r.status} ${r.method}` : (r.detail ?? r.outcome)))),
  };
}

/** Over all records (a window's edges must see the successes just outside it): outages that hold a failed request of the window. */
function longestWithoutSuccess(all: RequestRecord[], inWindow: RequestRecord[]): number {
  const successes = all
    .filter((r) => r.outcome === "ok")
    .map((r) => r.endedAt)
    .sort((a, b) => a - b);
  let longest = 0;
  for (const failed of inWindow.filter((r) => r.outcome !== "ok")) {
    // The last success answered before this request was sent, the first answered after it failed.
    const before = lastAtOrBefore(successes, failed.sentAt);
    const after = successes.find((t) => t >= failed.endedAt);
    if (before === undefined || after === undefined) continue;
    longest = Math.max(longest, after - before);
  }
  return longest;
}

function lastAtOrBefore(sorted: number[], t: number): number | undefined {
  let lo = 0;
  let hi = sorted.length - 1;
  let found: number | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= t) {
      found = sorted[mid];
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

function tally(keys: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const key of keys) counts[key] = (counts[key] ?? 0) + 1;
  return counts;
}

/** Per-replacement summaries of one case folded into one result row's numbers. */
export function foldSummaries(summaries: WindowSummary[]): Record<string, number | Record<string, number>> {
  const of = (key: Exclude<keyof WindowSummary, "failures">) => summaries.map((s) => s[key]);
  return {
    failedMedian: round(median(of("failed"))),
    failedP99: percentile(of("failed"), 99),
    failedTotal: of("failed").reduce((a, b) => a + b, 0),
    refusedTotal: of("refused").reduce((a, b) => a + b, 0),
    resetTotal: of("reset").reduce((a, b) => a + b, 0),
    timeoutTotal: of("timeout").reduce((a, b) => a + b, 0),
    errorTotal: of("error").reduce((a, b) => a + b, 0),
    requestsTotal: of("requests").reduce((a, b) => a + b, 0),
    longestWaitMsMedian: round(median(of("longestWaitMs"))),
    longestWaitMsP99: round(percentile(of("longestWaitMs"), 99)),
    longestWithoutSuccessMsMedian: round(median(of("longestWithoutSuccessMs"))),
    longestWithoutSuccessMsP99: round(percentile(of("longestWithoutSuccessMs"), 99)),
    failuresTotal: tally(summaries.flatMap((s) => Object.entries(s.failures).flatMap(([key, n]) => Array<string>(n).fill(key)))),
  };
}
