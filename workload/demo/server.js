// The demo workload: a tiny stateful service. Each POST /append writes one line to a file on the
// state volume and fsyncs it before answering, so an acknowledged line survives any replacement.
"use strict";
const http = require("node:http");
const fs = require("node:fs");
const path = require("node:path");

const stateDir = process.env.RESEAT_STATE_DIR || "/state";
const port = Number(process.env.PORT || 8080);
// Loopback by default (host network on Docker); a pod listens on its own address (LISTEN_HOST=0.0.0.0).
const listenHost = process.env.LISTEN_HOST || "127.0.0.1";
const version = process.env.WORKLOAD_VERSION || "dev";
const logFile = path.join(stateDir, "appended.log");

function readLines() {
  try {
    return fs.readFileSync(logFile, "utf8").split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

const fd = fs.openSync(logFile, "a");
const linesAtStart = readLines().length;
// The generation reseat gave this executable (the workload contract's RESEAT_GENERATION, on every engine):
// this workload reads no reseat record itself.
const meta = { generation: process.env.RESEAT_GENERATION ? Number(process.env.RESEAT_GENERATION) : undefined };

function reply(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  if (url.pathname === "/healthz") {
    return reply(res, 200, { ok: true, version, generation: meta.generation ?? null, linesAtStart });
  }
  if (url.pathname === "/append" && req.method === "POST") {
    const line = url.searchParams.get("line") || "";
    fs.writeSync(fd, `${line}\n`);
    fs.fsyncSync(fd);
    return reply(res, 200, { ok: true, line });
  }
  if (url.pathname === "/state") {
    return reply(res, 200, { version, generation: meta.generation ?? null, linesAtStart, lines: readLines() });
  }
  reply(res, 404, { error: "not found" });
});

server.listen(port, listenHost, () => {
  console.log(`demo workload ${version} (generation ${meta.generation ?? "?"}) listening on ${port}; ${linesAtStart} lines on the volume`);
});

function shutdown(signal) {
  console.log(`demo workload ${version}: ${signal}, closing`);
  server.close();
  fs.closeSync(fd);
  process.exit(0);
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
