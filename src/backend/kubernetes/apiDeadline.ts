// A deadline on every Kubernetes API call, set where the client sends requests so no call site can
// forget it. An API server that accepts connections and never answers (black-holed by a network
// fault, a stuck proxy, an overloaded control plane) would otherwise hang `waitReady`, `stop`, a watch's
// (re)connect and the controller's reconnect forever: the client has no timeout of its own.
//
//   every API call    the request's signal fires after API_CALL_DEADLINE_MS (headers and body alike):
//                     the call rejects with KubernetesDeadlineError
//   every watch       the connection must answer within WATCH_CONNECT_DEADLINE_MS; once open, the
//                     server is asked to end it after WATCH_SERVER_TIMEOUT_S (and to send bookmarks), and
//                     a watch silent for WATCH_IDLE_MS (longer than that) is dead and ended by us
//
// The clients are built here (apiClient, watchWithDeadlines); a unit test checks that nothing else in
// src/ builds one (`makeApiClient`, `new k8s.Watch`).
import * as k8s from "@kubernetes/client-node";

/** One API call: far above a healthy server's answer (milliseconds), below the API server's own 60 s. */
export const API_CALL_DEADLINE_MS = 15_000;
/** A watch's connection must answer (response headers) within this. */
export const WATCH_CONNECT_DEADLINE_MS = 15_000;
/** The server ends a watch after this (a healthy quiet watch then ends cleanly; the controller resubscribes and resyncs). */
export const WATCH_SERVER_TIMEOUT_S = 50;
/** No byte on an open watch for this long: the connection is dead (half-open, black-holed); we end it. */
export const WATCH_IDLE_MS = 65_000;

/**
 * The client's HTTP library (undici) gives up on a connection (TCP and TLS handshake) after its own 10 s,
 * before our deadline: a server that accepts and never completes the handshake ends there. Reported as
 * the same deadline error.
 */
export const CONNECT_TIMEOUT_MS = 10_000;

function isConnectTimeout(error: unknown): boolean {
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause;
  return cause?.code === "UND_ERR_CONNECT_TIMEOUT" || (error as { code?: unknown } | null)?.code === "UND_ERR_CONNECT_TIMEOUT";
}

/** The API server did not answer within the deadline. */
export class KubernetesDeadlineError extends Error {
  readonly timedOut = true;
  constructor(
    readonly server: string,
    readonly what: string,
    readonly deadlineMs: number,
  ) {
    super(`reseat: the Kubernetes API server (${server}) did not answer ${what} within ${deadlineMs} ms`);
    this.name = "KubernetesDeadlineError";
  }
}

/**
 * The client's own fetch library, with a deadline signal on each request. The signal stays armed while
 * the body is read (the generated code reads it after `send`), so a server that sends headers and then
 * stalls is cut off too; a failure caused by it is reported as KubernetesDeadlineError.
 */
class DeadlineHttpLibrary implements k8s.HttpLibrary {
  private readonly inner = new k8s.IsomorphicFetchHttpLibrary();

  constructor(
    private readonly server: string,
    private readonly deadlineMs: number,
  ) {}

  send(request: k8s.RequestContext): k8s.Observable<k8s.ResponseContext> {
    const deadline = AbortSignal.timeout(this.deadlineMs);
    const own = request.getSignal();
    request.setSignal(own ? AbortSignal.any([own, deadline]) : deadline);
    const what = `${request.getHttpMethod()} ${new URL(request.getUrl()).pathname}`;
    const translate = (error: unknown): never => {
      if (deadline.aborted) throw new KubernetesDeadlineError(this.server, what, this.deadlineMs);
      if (isConnectTimeout(error)) throw new KubernetesDeadlineError(this.server, `${what} (no connection)`, CONNECT_TIMEOUT_MS);
      throw error;
    };
    const answered = this.inner
      .send(request)
      .toPromise()
      .then((response) => {
        const body = response.body;
        response.body = {
          text: () => body.text().catch(translate),
          binary: () => body.binary().catch(translate),
          ...(body.stream ? { stream: () => body.stream!() } : {}),
        } as typeof body;
        return response;
      }, translate);
    return new k8s.Observable(answered);
  }
}

/** An API client of the kubeconfig's current cluster whose every call has the deadline. */
export function apiClient<T extends k8s.ApiType>(config: k8s.KubeConfig, apiClientType: k8s.ApiConstructor<T>, deadlineMs = API_CALL_DEADLINE_MS): T {
  const cluster = config.getCurrentCluster();
  if (!cluster) throw new Error("reseat: no Kubernetes cluster configured in the kubeconfig's current context");
  const configuration = k8s.createConfiguration({
    baseServer: new k8s.ServerConfiguration(cluster.server, {}),
    authMethods: { default: config },
    httpApi: new DeadlineHttpLibrary(cluster.server, deadlineMs),
    middleware: [k8s.setHeaderMiddleware("User-Agent", "reseat")],
  });
  return new apiClientType(configuration);
}

export interface WatchDeadlines {
  connectMs: number;
  idleMs: number;
  serverTimeoutSeconds: number;
}

export const WATCH_DEADLINES: WatchDeadlines = { connectMs: WATCH_CONNECT_DEADLINE_MS, idleMs: WATCH_IDLE_MS, serverTimeoutSeconds: WATCH_SERVER_TIMEOUT_S };

/**
 * A watch (k8s.Watch) with the deadlines above. `done` is called exactly once: with the error that ended
 * the watch (KubernetesDeadlineError when it could not connect in time), or null when the server ended
 * it. Bookmark events are consumed here (they only keep the connection from looking idle).
 */
export async function watchWithDeadlines(
  config: k8s.KubeConfig,
  path: string,
  query: Record<string, string | number | boolean | undefined>,
  onEvent: (phase: string, object: unknown) => void,
  done: (error: unknown) => void,
  deadlines: WatchDeadlines = WATCH_DEADLINES,
): Promise<{ abort(): void }> {
  const server = config.getCurrentCluster()?.server ?? "(no cluster)";
  const watcher = new k8s.Watch(config);
  // The client uses one timer for both: the connection's answer and, once open, inactivity. It is our
  // idle policy; the (shorter) connect deadline is raced below.
  // (A private field of the pinned client, 2.0.1: checked, so an upgrade that renames it fails loudly.)
  const timing = watcher as unknown as { requestTimeoutMs?: number };
  if (typeof timing.requestTimeoutMs !== "number")
    throw new Error("reseat: @kubernetes/client-node's Watch has no requestTimeoutMs any more: revisit apiDeadline.ts");
  timing.requestTimeoutMs = deadlines.idleMs;
  let finished = false;
  const finish = (error: unknown) => {
    if (finished) return;
    finished = true;
    done(error);
  };
  let connectTimer: NodeJS.Timeout | undefined;
  const connectDeadline = new Promise<"deadline">((resolve) => {
    connectTimer = setTimeout(() => resolve("deadline"), deadlines.connectMs);
    connectTimer.unref();
  });
  const opening = watcher.watch(
    path,
    { ...query, timeoutSeconds: deadlines.serverTimeoutSeconds, allowWatchBookmarks: true },
    (phase: string, object: unknown) => {
      if (finished || phase === "BOOKMARK") return;
      onEvent(phase, object);
    },
    // The client's own timer fires as a TimeoutError: past the connect race, that is the idle policy.
    (error: unknown) =>
      finish(
        (error as Error | null)?.name === "TimeoutError"
          ? new KubernetesDeadlineError(server, `anything on the watch of ${path} (idle)`, deadlines.idleMs)
          : isConnectTimeout(error)
            ? new KubernetesDeadlineError(server, `the watch of ${path} (no connection)`, CONNECT_TIMEOUT_MS)
            : (error ?? null),
      ),
  );
  const first = await Promise.race([opening, connectDeadline]);
  clearTimeout(connectTimer);
  if (first === "deadline") {
    finish(new KubernetesDeadlineError(server, `the watch of ${path}`, deadlines.connectMs));
    // The client keeps trying until its own timer: end it as soon as it hands over its controller.
    void opening.then(
      (late) => late.abort(),
      () => undefined,
    );
    return { abort: () => undefined };
  }
  return {
    abort: () => {
      finished = true;
      first.abort();
    },
  };
}
