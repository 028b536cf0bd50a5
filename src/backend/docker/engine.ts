// A small Docker Engine API client over the local unix socket (or tcp:// DOCKER_HOST).
// Hand-written rather than dockerode so that the dynamic provider can construct it inside each
// method from plain strings — nothing native is captured by Pulumi's closure serialization.
import * as http from "node:http";

/** API version pinned so that old (20.10) and new engines answer the same shapes. */
const API_VERSION = "v1.41";

export interface EngineAddress {
  socketPath?: string;
  host?: string;
  port?: number;
}

/** Where the Docker Engine is: DOCKER_HOST (unix:// or tcp://) or the default socket. */
export function engineAddressFromEnv(env: NodeJS.ProcessEnv = process.env): EngineAddress {
  const dockerHost = env.DOCKER_HOST;
  if (!dockerHost) return { socketPath: "/var/run/docker.sock" };
  if (dockerHost.startsWith("unix://")) return { socketPath: dockerHost.slice("unix://".length) };
  if (dockerHost.startsWith("tcp://")) {
    const url = new URL(dockerHost.replace(/^tcp:/, "http:"));
    return { host: url.hostname, port: Number(url.port || 2375) };
  }
  throw new Error(`DOCKER_HOST: expected unix:///path or tcp://host:port, got "${dockerHost}"`);
}

/** The fields of an Engine event reseat reads. */
export interface EngineEvent {
  Action: string;
  id: string;
  timeNano: number;
  Actor: { Attributes: Record<string, string> };
}

export class EngineError extends Error {
  constructor(
    readonly statusCode: number,
    readonly method: string,
    readonly path: string,
    message: string,
  ) {
    super(`Docker Engine ${method} ${path} answered ${statusCode}: ${message}`);
  }
}

interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  rawBody?: Buffer;
  contentType?: string;
  timeoutMs?: number;
}

export class DockerEngine {
  constructor(private readonly address: EngineAddress = engineAddressFromEnv()) {}

  /** Sends one request and returns the whole response body. Non-2xx answers become EngineError. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<{ status: number; body: Buffer }> {
    const { status, body } = await this.send(method, path, options);
    if (status >= 300) {
      let message = body.toString("utf8");
      try {
        message = (JSON.parse(message) as { message?: string }).message ?? message;
      } catch {
        // not JSON: keep the raw text
      }
      throw new EngineError(status, method, path, message.trim());
    }
    return { status, body };
  }

  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const { body } = await this.request(method, path, options);
    return (body.length ? JSON.parse(body.toString("utf8")) : undefined) as T;
  }

  /** Like json(), but a 404 becomes undefined: "is it there?" questions. */
  async jsonOrUndefined<T>(method: string, path: string, options: RequestOptions = {}): Promise<T | undefined> {
    try {
      return await this.json<T>(method, path, options);
    } catch (error) {
      if (error instanceof EngineError && error.statusCode === 404) return undefined;
      throw error;
    }
  }

  /** Opens a streaming GET (events, logs); the caller reads and destroys the response. */
  stream(path: string, query: RequestOptions["query"] = {}): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = http.request({ ...this.address, method: "GET", path: this.fullPath(path, query) }, (res) => {
        if ((res.statusCode ?? 500) >= 300) {
          res.resume();
          reject(new EngineError(res.statusCode ?? 500, "GET", path, "stream refused"));
          return;
        }
        resolve(res);
      });
      req.on("error", reject);
      req.end();
    });
  }

  /**
   * Follows the engine's event stream (GET /events, one JSON document per line) and hands each event
   * to `onEvent`. Resolves once subscribed; `close()` ends the subscription.
   */
  async events<E = EngineEvent>(query: RequestOptions["query"], onEvent: (event: E) => void, onEnd?: (error: Error | undefined) => void): Promise<{ close: () => void }> {
    const stream = await this.stream("/events", query);
    let ended = false;
    const end = (error: Error | undefined) => {
      if (ended) return;
      ended = true;
      onEnd?.(error);
    };
    stream.on("end", () => end(new Error("the Docker Engine closed the event stream")));
    stream.on("close", () => end(new Error("the event stream was closed")));
    stream.on("error", (error: Error) => end(error));
    let buffer = "";
    stream.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line.trim()) onEvent(JSON.parse(line) as E);
      }
    });
    return { close: () => stream.destroy() };
  }

  private fullPath(path: string, query: RequestOptions["query"] = {}): string {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) params.set(key, String(value));
    }
    const qs = params.toString();
    return `/${API_VERSION}${path}${qs ? `?${qs}` : ""}`;
  }

  private send(method: string, path: string, options: RequestOptions): Promise<{ status: number; body: Buffer }> {
    const payload =
      options.rawBody ?? (options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body)));
    const headers: Record<string, string | number> = {};
    if (payload) {
      headers["Content-Type"] = options.contentType ?? "application/json";
      headers["Content-Length"] = payload.length;
    }
    return new Promise((resolve, reject) => {
      const req = http.request(
        { ...this.address, method, path: this.fullPath(path, options.query), headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 500, body: Buffer.concat(chunks) }));
          res.on("error", reject);
        },
      );
      req.on("error", (error) => reject(new Error(`cannot reach the Docker Engine (${describe(this.address)}): ${error.message}`)));
      if (options.timeoutMs) {
        req.setTimeout(options.timeoutMs, () => req.destroy(new Error(`timed out after ${options.timeoutMs} ms`)));
      }
      if (payload) req.write(payload);
      req.end();
    });
  }
}

function describe(address: EngineAddress): string {
  return address.socketPath ? `unix://${address.socketPath}` : `tcp://${address.host}:${address.port}`;
}
