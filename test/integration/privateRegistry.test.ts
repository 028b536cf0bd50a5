// A PE whose image lives in a private registry: distribution/v3 (built from Go modules) on loopback
// with basic auth, the workload image pushed to it, and the engine made to pull it. The credentials
// enter as a Pulumi secret and must appear in plain text nowhere: not in `pulumi stack export`, not in
// `docker inspect` (labels included), not in the CLI's output. `--show-secrets` is the only way to see them.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerBackend } from "../../src/backend/docker/dockerBackend";
import {
  CliResult,
  Project,
  cleanup,
  containersOf,
  demoSpec,
  docker,
  httpJson,
  makeProject,
  orUndefined,
  peOutputs,
  reseatCli,
  setSecret,
  setSpecs,
} from "../support/harness";
import { freePort } from "../support/remoteEngines/daemon";
import { PrivateRegistry } from "../support/remoteEngines/privateRegistry";

const PE = `it-reg-${process.pid}`;

describe("a processing element pulling its image from a private registry", () => {
  let registry: PrivateRegistry;
  let ref: string;
  let project: Project;
  let port: number;
  /** Everything the reseat CLI printed in this file's runs. */
  const cliOutput: CliResult[] = [];
  const cli = async (command: string) => {
    const result = await reseatCli(project, command);
    cliOutput.push(result);
    return result;
  };
  const spec = (passwordSecret: string) =>
    demoSpec(PE, port, { image: ref, docker: { registryAuth: { server: registry.server, username: registry.username, passwordSecret } } });

  beforeAll(async () => {
    await cleanup([PE]);
    registry = await PrivateRegistry.start();
    // A repository name of its own: the engine has no image by that name, so it must pull.
    ref = await registry.push("reseat-demo-workload:v1", `reseat/demo-${process.pid}:v1`);
    port = await freePort();
    project = makeProject("registry", []);
    setSecret(project, "registryPassword", registry.password);
    setSecret(project, "wrongPassword", `${registry.password}-wrong`);
  });
  afterAll(async () => {
    await cleanup([PE]);
    await docker
      .getImage(ref)
      .remove()
      .catch(() => undefined); // the tag only: the image keeps its other names
    await registry?.stop();
  });

  it("the registry refuses a pull without credentials, and the error says where credentials were looked for", async () => {
    const error = await new DockerBackend().ensureImage(ref).then(
      () => undefined,
      (e: Error) => e.message,
    );
    expect(error).toMatch(new RegExp(`image "${escape(ref)}" is not on the engine .* could not be pulled: .*(no basic auth credentials|unauthorized)`));
    expect(error).toMatch(/\[registry credentials: no credentials/);
  });

  it("with a wrong password, preview pulls nothing (the image id is resolved at up); up fails naming the image and the field, and no executable is created", async () => {
    setSpecs(project, [spec("wrongPassword")]);
    const preview = await cli("preview");
    expect(preview.code, preview.doc.error).toBe(0);
    expect(await orUndefined(docker.getImage(ref).inspect())).toBeUndefined();
    const up = await cli("up");
    expect(up.code).not.toBe(0);
    expect(up.doc.error).toMatch(new RegExp(`image: image "${escape(ref)}" .* could not be pulled: .*(unauthorized|authentication required)`));
    expect(up.doc.error).toMatch(/registry credentials: spec docker\.registryAuth/);
    expect(await containersOf(PE)).toHaveLength(0);
  });

  it("up pulls the image with the credentials given as a Pulumi secret, and the PE runs it", async () => {
    setSpecs(project, [spec("registryPassword")]);
    const up = await cli("up");
    expect(up.code, up.doc.error ?? up.stderr.slice(-2000)).toBe(0);
    const pe = peOutputs(up, PE);
    const inspect = await docker.getContainer(pe.executableId).inspect();
    expect(inspect.Config.Labels["io.reseat.image"]).toBe(ref);
    expect((await docker.getImage(ref).inspect()).Id).toBe(inspect.Image);
    expect((await httpJson<{ version: string }>(port, "/state")).version).toBe("v1");
    // The registry served this repository's manifest to the test's user: the pull authenticated.
    expect(registry.log()).toMatch(
      new RegExp(
        `auth\\.user\\.name=${registry.username}.*http\\.request\\.method=(GET|HEAD).*http\\.request\\.uri=/v2/reseat/demo-${process.pid}/manifests/v1`,
      ),
    );
  });

  it("the password is in plain text nowhere: stack export, stack outputs, docker inspect, labels, container logs, CLI output", async () => {
    const env = { ...process.env, PULUMI_BACKEND_URL: `file://${path.join(project.dir, ".pulumi-state")}` };
    const pulumi = (...args: string[]) => execFileSync("pulumi", [...args, "--stack", project.stack], { cwd: project.dir, env }).toString();
    const running = (await containersOf(PE, false))[0]!;
    const texts: Record<string, string> = {
      "pulumi stack export": pulumi("stack", "export"),
      "pulumi stack output": pulumi("stack", "output", "--json"),
      "docker inspect (container, labels included)": JSON.stringify(await docker.getContainer(running.Id).inspect()),
      "docker image inspect": JSON.stringify(await docker.getImage(ref).inspect()),
      "container logs": (await docker.getContainer(running.Id).logs({ stdout: true, stderr: true, follow: false })).toString(),
      "stack config file": fs.readFileSync(path.join(project.dir, "stacks", `Pulumi.${project.stack}.yaml`), "utf8"),
      "reseat CLI output": cliOutput.map((r) => JSON.stringify(r.doc) + r.stderr).join("\n"),
    };
    // Also as Docker's config and X-Registry-Auth header would carry it (base64).
    const forms = [
      registry.password,
      Buffer.from(`${registry.username}:${registry.password}`).toString("base64"),
      Buffer.from(registry.password).toString("base64"),
    ];
    for (const [what, text] of Object.entries(texts)) {
      for (const form of forms) expect(text.includes(form), `${what} contains the password`).toBe(false);
    }
    expect(texts["pulumi stack export"]).toContain("ciphertext"); // it is in state: encrypted
    expect(pulumi("stack", "export", "--show-secrets")).toContain(registry.password);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
