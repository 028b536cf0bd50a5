// The session-context service: a user's session context (any JSON) kept with reseat's state
// library (@reseat/state). A PUT is acknowledged only once it is fsync'd to the state volume; the library
// commits snapshots to the persistent store every interval and once more on SIGTERM.
//
// Started as a standby (RESEAT_STANDBY=1, the spec's handover "standby"), openState parks until the serving
// writer lets go of the volume's lock. Meanwhile the service listens if its port is free (a pod has its own
// address): /healthz answers (the process is healthy; reseat's readiness gate keeps a parked pod out of Ready, so
// a probe's period is not in the gap), /status the parked report, and any other request waits for the state.
// Where the port is the old writer's (Docker's host network, or one network namespace), it listens once it serves.
"use strict";
const http = require("node:http");
const { openState } = require("@reseat/state");

const port = Number(process.env.PORT || 8080);
const version = process.env.WORKLOAD_VERSION || "dev";
/** Tells one process of the service from the next (restart in place keeps the container and generation). */
const startedAt = `${new Date().toISOString()}#${process.pid}`;
// Loopback by default (host network on Docker); a pod listens on its own address (LISTEN_HOST=0.0.0.0).
const listenHost = process.env.LISTEN_HOST || "127.0.0.1";

function reply(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = "";
    req.on("data", (chunk) => (data += chunk));
    req.on("end", () => resolve(data));
    req.on("error", reject);
  });
}

/** Listens on the port; false when it is taken (the writer before us still has it). */
function tryListen(server) {
  return new Promise((resolve, reject) => {
    const onError = (error) => {
      server.off("listening", onListening);
      if (error.code === "EADDRINUSE") resolve(false);
      else reject(error);
    };
    const onListening = () => {
      server.off("error", onError);
      resolve(true);
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(port, listenHost);
  });
}

/**
 * Listens once the port is free: the writer before us let go of the volume's lock when it exited, and the
 * kernel closes its listening socket in the same exit, a moment apart. Anything else on the port is an error.
 */
async function listenOnceFree(server) {
  const deadline = Date.now() + 5000;
  while (!(await tryListen(server))) {
    if (Date.now() > deadline) throw new Error(`port ${listenHost}:${port} is taken by another process than the writer before this one`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

async function main() {
  let parked = null; // the parked report while a standby waits for the volume
  let state = null;
  const opening = openState({ handleSignals: true, onParked: (status) => (parked = status) });

  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, "http://localhost");
      // Healthy while parked (reseat's readiness gate, not this answer, keeps a parked pod out of Ready); not ready
      // while the state is being opened (a restore from the store can take a while).
      if (!state && url.pathname === "/healthz")
        return parked
          ? reply(res, 200, { ok: true, phase: "parked", version, startedAt })
          : reply(res, 503, { ok: false, phase: "opening", version, startedAt });
      if (!state && url.pathname === "/status" && parked) return reply(res, 200, parked);
      state ??= await opening; // anything else waits for the state (never served by a parked standby)
      const match = /^\/sessions\/([^/]+)$/.exec(url.pathname);
      if (url.pathname === "/healthz") {
        return reply(res, 200, {
          ok: true,
          version,
          startedAt,
          generation: state.generation,
          resumedFrom: state.resumedFrom,
          resumedSeq: state.resumedSeq,
          seq: state.seq,
        });
      }
      if (url.pathname === "/status") return reply(res, 200, state.status());
      if (url.pathname === "/sessions" && req.method === "GET") {
        return reply(res, 200, { seq: state.seq, sessions: Object.fromEntries(state.entries()) });
      }
      if (match && req.method === "PUT") {
        const context = JSON.parse((await readBody(req)) || "{}");
        const seq = await state.put(decodeURIComponent(match[1]), context);
        return reply(res, 200, { ok: true, seq });
      }
      if (match && req.method === "GET") {
        const context = state.get(decodeURIComponent(match[1]));
        return context === undefined ? reply(res, 404, { error: "no such session" }) : reply(res, 200, context);
      }
      reply(res, 404, { error: "not found" });
    } catch (error) {
      // A refused write (e.g. a newer generation owns the volume) is never acknowledged.
      reply(res, 503, { error: String(error && error.message ? error.message : error) });
    }
  });

  const listening = await tryListen(server);
  state = await opening;
  console.log(`session service ${version}: PE ${state.peId} generation ${state.generation} resumed from ${state.resumedFrom} at seq ${state.resumedSeq}`);
  if (!listening) await listenOnceFree(server);
  console.log(`session service listening on ${listenHost}:${port}`);
}

main().catch((error) => {
  console.error(`session service failed to start: ${error && error.stack ? error.stack : error}`);
  process.exit(1);
});
