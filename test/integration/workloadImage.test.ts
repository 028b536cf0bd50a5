// Issue 21.6: a workload image built from the state package alone. `npm pack` of packages/state, a tiny project
// that depends on the tarball (npm install), a Dockerfile and a few lines of server code: the image's
// node_modules holds @reseat/state and nothing else (no Pulumi, no engine client, no pg unless asked). The
// workload then runs as a PE: it writes, commits, survives a replacement by `reseat up` (resumed from the kept
// volume) and its commit restores through the library in a fresh container.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, cleanup, containersOf, docker, makeProject, mustSucceed, peOutputs, run, setSpecs, waitFor, type Project } from "../support/harness";
import { mustRun, outsideFolder } from "../support/userProject";

const PE = `it-wl-${process.pid}`;
const PORT = 19100 + (process.pid % 500);
const IMAGE = `reseat-it-workload-${process.pid}`;

/** A workload's whole server: state through @reseat/state, over HTTP. */
const SERVER = `"use strict";
const http = require("node:http");
const { openState } = require("@reseat/state");
openState({ handleSignals: true }).then((state) => {
  http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://localhost");
    try {
      const body = url.pathname === "/put"
        ? { seq: await state.put(url.searchParams.get("key"), url.searchParams.get("value")) }
        : { version: process.env.WORKLOAD_VERSION, generation: state.generation, entries: Object.fromEntries(state.entries()), status: state.status() };
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
    } catch (error) {
      res.writeHead(503).end(String(error));
    }
  }).listen(Number(process.env.PORT), "127.0.0.1");
});
`;

const DOCKERFILE = `ARG BASE_IMAGE=node:24-slim
FROM \${BASE_IMAGE}
ARG WORKLOAD_VERSION=v1
ENV WORKLOAD_VERSION=\${WORKLOAD_VERSION}
WORKDIR /app
COPY package.json /app/
COPY node_modules /app/node_modules
COPY server.js /app/
CMD ["node", "/app/server.js"]
`;

interface View {
  version: string;
  generation: number;
  entries: Record<string, string>;
  status: { resumedFrom: string; seq: number; lastCommit: { seq: number } | null };
}

async function view(): Promise<View> {
  const res = await fetch(`http://127.0.0.1:${PORT}/`);
  if (!res.ok) throw new Error(`GET / -> ${res.status}`);
  return (await res.json()) as View;
}

async function put(key: string, value: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${PORT}/put?key=${encodeURIComponent(key)}&value=${encodeURIComponent(value)}`);
  if (!res.ok) throw new Error(`put ${key} -> ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { seq: number }).seq;
}

/** The base the repository's images use (scripts/images.sh): node:24-slim when the engine has it, else the local one. */
async function baseImage(): Promise<string> {
  return (await run("docker", ["image", "inspect", "node:24-slim"])).code === 0 ? "node:24-slim" : "reseat-node-base:24";
}

/** Every package folder under a node_modules listing (`@scope/name` or `name`). */
function packagesIn(listing: string): string[] {
  return listing.trim().split("\n").filter(Boolean).sort();
}

describe("a workload image built from @reseat/state alone", () => {
  let context: string;
  let project: Project;

  beforeAll(async () => {
    await cleanup([PE]);
    context = outsideFolder("workload-image");
    // As a workload author does it: the packed library, a project depending on it, npm install.
    const packed = await mustRun(ROOT, "npm", ["pack", "./packages/state", "--ignore-scripts", "--silent", "--pack-destination", context]);
    const tarball = packed.stdout.trim().split("\n").at(-1)!.trim();
    fs.writeFileSync(
      path.join(context, "package.json"),
      JSON.stringify({ name: "it-workload", private: true, dependencies: { "@reseat/state": `file:${tarball}` } }, null, 2),
    );
    await mustRun(context, "npm", ["install", "--offline", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"]);
    fs.writeFileSync(path.join(context, "server.js"), SERVER);
    fs.writeFileSync(path.join(context, "Dockerfile"), DOCKERFILE);
    const base = await baseImage();
    for (const version of ["v1", "v2"]) {
      await mustRun(
        context,
        "docker",
        [
          "build",
          "-q",
          "--network",
          "none",
          "-t",
          `${IMAGE}:${version}`,
          "--build-arg",
          `BASE_IMAGE=${base}`,
          "--build-arg",
          `WORKLOAD_VERSION=${version}`,
          ".",
        ],
        {
          ...process.env,
          DOCKER_BUILDKIT: "0",
        },
      );
    }
  });
  afterAll(async () => {
    await cleanup([PE]);
    for (const version of ["v1", "v2"])
      await docker
        .getImage(`${IMAGE}:${version}`)
        .remove({ force: true })
        .catch(() => undefined);
    if (context) fs.rmSync(context, { recursive: true, force: true });
    if (project) fs.rmSync(project.dir, { recursive: true, force: true });
  });

  it("its node_modules holds @reseat/state only: no Pulumi, no engine client, no pg", async () => {
    const listed = await mustRun(ROOT, "docker", [
      "run",
      "--rm",
      "--network",
      "none",
      "--entrypoint",
      "node",
      `${IMAGE}:v1`,
      "-e",
      // Every installed package, scoped ones included, at any depth.
      `const fs = require("fs"), path = require("path"); const found = [];
       (function walk(dir) { for (const e of fs.readdirSync(dir)) { if (e.startsWith(".")) continue;
         if (e.startsWith("@")) { for (const s of fs.readdirSync(path.join(dir, e))) { found.push(e + "/" + s); const n = path.join(dir, e, s, "node_modules"); if (fs.existsSync(n)) walk(n); } }
         else { found.push(e); const n = path.join(dir, e, "node_modules"); if (fs.existsSync(n)) walk(n); } } })("/app/node_modules");
       console.log(found.join("\\n"));`,
    ]);
    const packages = packagesIn(listed.stdout);
    expect(packages).toEqual(["@reseat/state"]);
    for (const unwanted of ["@pulumi/pulumi", "dockerode", "@kubernetes/client-node", "pg"]) expect(packages).not.toContain(unwanted);
    const manifest = JSON.parse(fs.readFileSync(path.join(context, "node_modules", "@reseat", "state", "package.json"), "utf8")) as {
      dependencies?: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    };
    expect(manifest.dependencies ?? {}).toEqual({});
    expect(manifest.peerDependenciesMeta?.pg?.optional).toBe(true);
  });

  it("runs as a PE: writes, commits, and survives a replacement by reseat up with its state", async () => {
    const spec = (image: string) => ({
      peId: PE,
      image,
      network: "host",
      env: { PORT: String(PORT) },
      commitInterval: "1s",
      stop: { graceSeconds: 10 },
      readiness: { httpGet: { port: PORT, path: "/" }, timeout: "30s" },
    });
    project = makeProject("workload-image", [spec(`${IMAGE}:v1`)]);
    const first = peOutputs(await mustSucceed(project, "up"), PE);
    expect(first.generation).toBe(1);
    expect((await view()).status.resumedFrom).toBe("empty");
    await put("session:ada", "cart=3");
    const seq = await put("session:bob", "cart=7");
    // The committer ships the writes to the store (interval 1 s): wait for the commit that holds them.
    await waitFor("a commit holding both writes", async () => (((await view()).status.lastCommit?.seq ?? 0) >= seq ? true : undefined));

    setSpecs(project, [spec(`${IMAGE}:v2`)]);
    const second = peOutputs(await mustSucceed(project, "up"), PE);
    expect(second.generation).toBe(2);
    expect(second.volumeName).toBe(first.volumeName);
    expect(second.executableId).not.toBe(first.executableId);
    const after = await view();
    expect(after.version).toBe("v2");
    expect(after.generation).toBe(2);
    expect(after.status.resumedFrom).toBe("local");
    expect(after.entries).toEqual({ "session:ada": "cart=3", "session:bob": "cart=7" });
    expect((await containersOf(PE)).map((c) => c.Id)).toEqual([second.executableId]);
  });

  it("its commit restores through the library in a fresh container (empty state directory, a copy of the PE's store)", async () => {
    const running = await docker.getContainer((await containersOf(PE))[0]!.Id).inspect();
    const store = running.Mounts.find((m) => m.Destination === "/reseat-store");
    expect(store?.Name).toBeTruthy();
    // The PE's commits copied out of the store (mounted read-only): the next generation's claim lands in the
    // copy, so the running PE is not fenced. A tmpfs state directory; it exits before any commit of its own.
    const restored = await mustRun(ROOT, "docker", [
      "run",
      "--rm",
      "--network",
      "none",
      "--tmpfs",
      "/fresh",
      "--tmpfs",
      "/copy",
      "-v",
      `${store!.Name}:/from:ro`,
      "-e",
      `RESEAT_PE_ID=${PE}`,
      "-e",
      `RESEAT_STORE=${JSON.stringify({ kind: "directory", path: "/copy" })}`,
      "-e",
      "RESEAT_STATE_DIR=/fresh",
      "-e",
      "RESEAT_GENERATION=3",
      "--entrypoint",
      "node",
      `${IMAGE}:v2`,
      "-e",
      `require("fs").cpSync("/from/${PE}", "/copy/${PE}", { recursive: true });
       require("@reseat/state").openState({ commitIntervalMs: 3600000 }).then((s) => { console.log(JSON.stringify({ resumedFrom: s.resumedFrom, entries: Object.fromEntries(s.entries()) })); process.exit(0); });`,
    ]);
    const doc = JSON.parse(restored.stdout.trim().split("\n").at(-1)!) as { resumedFrom: string; entries: Record<string, string> };
    expect(doc.resumedFrom).toBe("persistent");
    expect(doc.entries).toEqual({ "session:ada": "cart=3", "session:bob": "cart=7" });
  });
});
