// A private image pulled through a Docker credential helper, with no credentials in the spec: the
// user's Docker config (DOCKER_CONFIG) names the helper by `credsStore` or `credHelpers`, and reseat
// runs `docker-credential-<helper> get` as the docker CLI does. The helpers are tiny scripts this test
// installs on the PATH of the reseat CLI (and so of Pulumi and the provider it runs); the registry is
// distribution/v3 on loopback with basic auth (test/support/remoteEngines/privateRegistry.ts).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, CliResult, Project, cleanup, containersOf, demoSpec, docker, httpJson, makeProject, peOutputs, run, setSpecs } from "../support/harness";
import { freePort } from "../support/remoteEngines/daemon";
import { PrivateRegistry } from "../support/remoteEngines/privateRegistry";

const PE = `it-credh-${process.pid}`;
/** Helper names of this run's own (never a helper a user has installed). */
const KNOWS = `reseat-it-knows-${process.pid}`;
const NOTHING = `reseat-it-nothing-${process.pid}`;

describe("a private image pulled through a credential helper named in the Docker config", () => {
  let registry: PrivateRegistry;
  /** One repository per case, so that each `up` has to pull. */
  const refs: Record<"store" | "helpers" | "none", string> = { store: "", helpers: "", none: "" };
  let project: Project;
  let port: number;
  let dir = "";
  const cliOutput: CliResult[] = [];

  /** A helper script: `get` reads the server URL from stdin, records it, and answers from `answer` (sh). */
  const installHelper = (name: string, answer: string) =>
    fs.writeFileSync(
      path.join(dir, "bin", `docker-credential-${name}`),
      `#!/bin/sh\n[ "$1" = get ] || { echo "unsupported action $1"; exit 1; }\nread -r server\necho "$server" >> '${dir}/asked-${name}'\n${answer}\n`,
      { mode: 0o700 },
    );
  const asked = (name: string) =>
    fs.existsSync(path.join(dir, `asked-${name}`))
      ? fs
          .readFileSync(path.join(dir, `asked-${name}`), "utf8")
          .trim()
          .split("\n")
      : [];

  /** `reseat <command>` with this Docker config and the helpers on PATH; the spec carries no credentials. */
  const cli = async (command: string, dockerConfig: Record<string, unknown>): Promise<CliResult> => {
    const configDir = path.join(dir, `docker-config-${cliOutput.length}`);
    fs.mkdirSync(configDir, { mode: 0o700 });
    fs.writeFileSync(path.join(configDir, "config.json"), JSON.stringify(dockerConfig));
    const env = { ...process.env, PATH: `${path.join(dir, "bin")}${path.delimiter}${process.env.PATH}`, DOCKER_CONFIG: configDir };
    const result = await run(process.execPath, [CLI, command, "--cwd", project.dir, "--stack", project.stack, "--json"], env);
    cliOutput.push(result);
    return result;
  };

  beforeAll(async () => {
    await cleanup([PE]);
    registry = await PrivateRegistry.start();
    for (const key of Object.keys(refs) as (keyof typeof refs)[])
      refs[key] = await registry.push("reseat-demo-workload:v1", `reseat/credh-${key}-${process.pid}:v1`);
    port = await freePort();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-credh-"));
    fs.mkdirSync(path.join(dir, "bin"));
    // The secret lives in a file only the helper reads, as a keychain would hold it.
    fs.writeFileSync(path.join(dir, "secret"), registry.password, { mode: 0o600 });
    installHelper(
      KNOWS,
      `if [ "$server" = "${registry.server}" ]; then printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}' "$server" "${registry.username}" "$(cat '${dir}/secret')"; ` +
        `else echo "credentials not found in native keychain"; exit 1; fi`,
    );
    installHelper(NOTHING, `echo "credentials not found in native keychain"; exit 1`);
    project = makeProject("credhelper", []);
    // The stack, as a user's `pulumi stack init` makes it (the reseat CLI creates one only with `up --create`).
    fs.mkdirSync(path.join(project.dir, ".pulumi-state"), { recursive: true });
    const init = spawnSync("pulumi", ["stack", "init", project.stack, "--no-select", "--non-interactive"], { cwd: project.dir, encoding: "utf8" });
    if (init.status !== 0 && !/already exists/.test(init.stderr)) throw new Error(`pulumi stack init failed: ${init.stderr}`);
  });
  afterAll(async () => {
    await cleanup([PE]);
    for (const ref of Object.values(refs))
      if (ref)
        await docker
          .getImage(ref)
          .remove()
          .catch(() => undefined); // the tags only
    await registry?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("credsStore: up pulls the image with the helper's credentials and the PE runs it", async () => {
    setSpecs(project, [demoSpec(PE, port, { image: refs.store })]);
    const up = await cli("up", { auths: { [registry.server]: {} }, credsStore: KNOWS });
    expect(up.code, up.doc.error ?? up.stderr.slice(-2000)).toBe(0);
    const pe = peOutputs(up, PE);
    const inspect = await docker.getContainer(pe.executableId).inspect();
    expect(inspect.Config.Labels["io.reseat.image"]).toBe(refs.store);
    expect((await docker.getImage(refs.store).inspect()).Id).toBe(inspect.Image);
    expect((await httpJson<{ version: string }>(port, "/state")).version).toBe("v1");
    // The helper was asked for the registry by its host:port, and the registry saw the test's user.
    expect(asked(KNOWS)).toContain(registry.server);
    expect(registry.log()).toMatch(
      new RegExp(`auth\\.user\\.name=${registry.username}.*http\\.request\\.uri=/v2/reseat/credh-store-${process.pid}/manifests/v1`),
    );
  });

  it("credHelpers[registry] before credsStore: up pulls with the named helper (the PE is replaced onto the new image)", async () => {
    setSpecs(project, [demoSpec(PE, port, { image: refs.helpers })]);
    const up = await cli("up", { credsStore: NOTHING, credHelpers: { [registry.server]: KNOWS } });
    expect(up.code, up.doc.error ?? up.stderr.slice(-2000)).toBe(0);
    const inspect = await docker.getContainer(peOutputs(up, PE).executableId).inspect();
    expect(inspect.Config.Labels["io.reseat.image"]).toBe(refs.helpers);
    expect(registry.log()).toMatch(
      new RegExp(`auth\\.user\\.name=${registry.username}.*http\\.request\\.uri=/v2/reseat/credh-helpers-${process.pid}/manifests/v1`),
    );
  });

  it('a helper that answers "credentials not found": up fails naming image and the registry, and the PE keeps running', async () => {
    const before = (await containersOf(PE, false)).map((c) => c.Id);
    setSpecs(project, [demoSpec(PE, port, { image: refs.none })]);
    const up = await cli("up", { credsStore: NOTHING });
    expect(up.code, up.stderr.slice(-2000)).toBe(1);
    expect(up.doc.error).toMatch(
      new RegExp(`image: image "${escape(refs.none)}" .* could not be pulled: .*(unauthorized|authentication required|no basic auth credentials)`),
    );
    expect(up.doc.error).toContain(`credential helper docker-credential-${NOTHING} (credsStore in `);
    expect(up.doc.error).toContain(`has none for ${registry.server}`);
    expect(asked(NOTHING)).toContain(registry.server);
    expect((await containersOf(PE, false)).map((c) => c.Id)).toEqual(before);
  });

  it("the registry's password is in no output of the CLI", () => {
    const text = cliOutput.map((r) => JSON.stringify(r.doc) + r.stderr).join("\n");
    const forms = [
      registry.password,
      Buffer.from(`${registry.username}:${registry.password}`).toString("base64"),
      Buffer.from(registry.password).toString("base64"),
    ];
    for (const form of forms) expect(text.includes(form)).toBe(false);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
