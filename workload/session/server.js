// The session-context service: a user's session context (any JSON) kept with reseat's state
// library (@reseat/state). A PUT is acknowledged only once it is fsync'd to the state volume; the library
// commits snapshots to the persistent store every interval and once more on SIGTERM.
"use strict";
const http = require("node:http");
const { openState } = require("@reseat/state");

const port = Number(process.env.PORT || 8080);
const version = process.env.WORKLOAD_VERSION || "dev";
/** Tells one process of the service from the next (restart in place keeps the container and generation). */
const startedAt = `${new Date().toISOString()}#${process.pid}`;

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

async function main() {
  const state = await openState({ handleSignals: true });
  console.log(`session service ${version}: PE ${state.peId} generation ${state.generation} resumed from ${state.resumedFrom} at seq ${state.resumedSeq}`);

  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, "http://localhost");
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
  // Loopback by default (host network on Docker); a pod listens on its own address (LISTEN_HOST=0.0.0.0).
  const listenHost = process.env.LISTEN_HOST || "127.0.0.1";
  server.listen(port, listenHost, () => console.log(`session service listening on ${listenHost}:${port}`));
}

main().catch((error) => {
  console.error(`session service failed to start: ${error && error.stack ? error.stack : error}`);
  process.exit(1);
});
