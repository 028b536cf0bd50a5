// Issue 20: a Node.js program may use reseat's plugin package instead of `reseat/components` (the dynamic
// provider stays the default for Node programs): a remote component of type reseat:index:ProcessingElement,
// declared as a generated SDK would, served by the plugin's construct. Up, an image change (one replace,
// the executable; generation + 1 on the same volume), destroy keeps the volume.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanup, containersOf, volumeExists } from "../support/harness";
import { freePort, mustPulumi, mustRun, outsideFolder, previewJson, pulumiSdkVersion, stackOutputs, userEnv } from "../support/userProject";
import { buildPluginPackage, expectedSessions, putSessions, sessionImageIds, sessionsOf } from "../support/pluginPackage";

const PE = `it-pnode-${process.pid}`;
const STACK = "dev";

const program = (peId: string) => `const pulumi = require("@pulumi/pulumi");

// reseat's component, served by its plugin (construct): declared as a generated Node.js SDK would.
class ProcessingElement extends pulumi.ComponentResource {
  constructor(name, args, opts) {
    const outputs = { peId: undefined, generation: undefined, executableId: undefined, volumeName: undefined, lastCommit: undefined };
    super("reseat:index:ProcessingElement", name, { ...outputs, ...args }, opts, true /* remote */);
  }
}

const config = new pulumi.Config();
const port = config.requireNumber("port");
const orders = new ProcessingElement("orders", {
  peId: "${peId}",
  image: config.require("image"),
  network: "host",
  env: { PORT: String(port) },
  commitInterval: "1s",
  readiness: { httpGet: { port, path: "/healthz" }, timeout: "60s" },
});
exports.orders = { peId: orders.peId, generation: orders.generation, executableId: orders.executableId, volumeName: orders.volumeName };
`;

type Outputs = { peId: string; generation: number; executableId: string; volumeName: string };

describe("a Node.js program using the plugin package instead of the dynamic provider", () => {
  let pkg: string;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let port: number;
  let first: Outputs;
  let v2: string;

  beforeAll(async () => {
    await cleanup([PE]);
    let images: { v1: string; v2: string };
    [pkg, images, port] = await Promise.all([buildPluginPackage(), sessionImageIds(), freePort()]);
    dir = outsideFolder("node-plugin-user");
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), `name: node-plugin-user\nruntime: nodejs\nmain: index.js\npackages:\n  reseat: ${pkg}\n`);
    fs.writeFileSync(path.join(dir, "index.js"), program(PE));
    fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "node-plugin-user", private: true }));
    // Only @pulumi/pulumi: reseat itself is in the plugin package, not in the project.
    await mustRun(dir, "npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", `@pulumi/pulumi@${pulumiSdkVersion()}`]);
    env = userEnv(dir);
    await mustPulumi(dir, ["stack", "init", STACK], env);
    await mustPulumi(dir, ["config", "set", "image", images.v1], env);
    await mustPulumi(dir, ["config", "set", "port", String(port)], env);
    v2 = images.v2;
  });
  afterAll(async () => {
    await cleanup([PE]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (pkg) fs.rmSync(path.dirname(pkg), { recursive: true, force: true });
  });

  it("up: the plugin constructs the PE (reseat:index:* resources, no dynamic ones)", async () => {
    await mustPulumi(dir, ["up", "--yes", "--skip-preview"], env);
    first = (await stackOutputs(dir, STACK, env)).orders as Outputs;
    expect(first).toMatchObject({ peId: PE, generation: 1 });
    const exported = JSON.parse((await mustPulumi(dir, ["stack", "export"], env)).stdout) as { deployment: { resources: { type: string }[] } };
    const types = exported.deployment.resources.map((r) => r.type).filter((t) => t.startsWith("reseat:") || t.includes("dynamic"));
    expect(types.sort()).toEqual(["reseat:index:Executable", "reseat:index:ProcessingElement", "reseat:index:StateVolume"]);
    expect(await putSessions(`http://127.0.0.1:${port}`, 20)).toBe(20);
  });

  it("an image change: one replace (the executable); up keeps the volume and every write, generation + 1", async () => {
    await mustPulumi(dir, ["config", "set", "image", v2], env);
    const preview = await previewJson(dir, STACK, env);
    expect(preview.steps.filter((s) => s.op !== "same").map((s) => s.type)).toEqual(["reseat:index:Executable"]);
    await mustPulumi(dir, ["up", "--yes", "--skip-preview"], env);
    const after = (await stackOutputs(dir, STACK, env)).orders as Outputs;
    expect(after.generation).toBe(2);
    expect(after.volumeName).toBe(first.volumeName);
    expect(await sessionsOf(`http://127.0.0.1:${port}`)).toEqual(expectedSessions(20));
    await mustPulumi(dir, ["destroy", "--yes", "--skip-preview"], env);
    expect(await containersOf(PE)).toEqual([]);
    expect(await volumeExists(first.volumeName)).toBe(true);
  });
});
