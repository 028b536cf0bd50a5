// Registry credentials as the docker CLI finds them: the spec's, a credential helper's (credHelpers, then
// credsStore; real helper scripts on a PATH of the test's own), the Docker config's auths. No engine.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { registryOf } from "../../../src/backend/docker/connection";
import { credentialHelperFor, helperServerUrl, resolveRegistryAuth, runCredentialHelper } from "../../../src/backend/docker/credentials";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-credhelpers-"));
const bin = path.join(dir, "bin");
fs.mkdirSync(bin);
/** Each helper records the server URLs it was asked for here (one file per helper). */
const asked = (helper: string) =>
  fs.existsSync(path.join(dir, `${helper}.asked`))
    ? fs
        .readFileSync(path.join(dir, `${helper}.asked`), "utf8")
        .trim()
        .split("\n")
    : [];

/** Installs docker-credential-<name>: `get` reads the server URL from stdin and runs `body` (sh) with it in $server. */
function helper(name: string, body: string): void {
  const file = path.join(bin, `docker-credential-${name}`);
  fs.writeFileSync(
    file,
    `#!/bin/sh\n[ "$1" = get ] || { echo "unsupported action $1"; exit 1; }\nread -r server\necho "$server" >> '${dir}/${name}.asked'\n${body}\n`,
    { mode: 0o755 },
  );
}
helper("store", `printf '{"ServerURL":"%s","Username":"store-user","Secret":"store-secret-1"}' "$server"`);
helper("ecr", `printf '{"ServerURL":"%s","Username":"<token>","Secret":"identity-token-2"}' "$server"`);
helper("empty", `echo "credentials not found in native keychain"; exit 1`);
helper("broken", `echo "something went wrong"; exit 3`);
helper("leaky", `echo '{"Username":"u","Secret":"leaked-secret-3"} and then it failed'; exit 1`);
helper("nonsense", `echo "not json"`);
helper("slow", `exec sleep 30`);

const env = { PATH: `${bin}:/usr/bin:/bin`, DOCKER_CONFIG: "/home/u/.docker" };
const CONFIG_FILE = "/home/u/.docker/config.json";
const withConfig = (doc: unknown, extra: { helperTimeoutMs?: number } = {}) => ({
  env,
  readFile: (file: string) => {
    if (file !== CONFIG_FILE) throw Object.assign(new Error("no"), { code: "ENOENT" });
    return JSON.stringify(doc);
  },
  ...extra,
});
const basic = (user: string, password: string) => ({ auth: Buffer.from(`${user}:${password}`).toString("base64") });

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("which credentials a pull uses", () => {
  it("finds the registry of an image reference as Docker does, and the server URL a helper is asked for", () => {
    expect(registryOf("busybox")).toBe("docker.io");
    expect(registryOf("library/node:24")).toBe("docker.io");
    expect(registryOf("127.0.0.1:5000/reseat/demo:v1")).toBe("127.0.0.1:5000");
    expect(registryOf("localhost/demo")).toBe("localhost");
    expect(registryOf("Registry.Example.com/team/app@sha256:" + "a".repeat(64))).toBe("registry.example.com");
    expect(helperServerUrl("docker.io")).toBe("https://index.docker.io/v1/");
    expect(helperServerUrl("127.0.0.1:5000")).toBe("127.0.0.1:5000");
  });

  it("the spec's credentials first, for their registry only: never sent to another one", async () => {
    const explicit = { server: "127.0.0.1:5000", username: "ci", password: "s3cret" };
    const config = withConfig({ credsStore: "store" });
    expect(await resolveRegistryAuth("127.0.0.1:5000/app:1", explicit, config)).toEqual({
      auth: { serveraddress: "127.0.0.1:5000", username: "ci", password: "s3cret" },
      source: "spec docker.registryAuth",
    });
    const other = await resolveRegistryAuth("other.example/app:1", explicit, config);
    expect(other.auth?.username).toBe("store-user"); // the helper's, not the spec's
    expect(JSON.stringify(other)).not.toContain("s3cret");
  });

  it("credHelpers[registry] before credsStore, credsStore before auths; the helper is asked with the server URL on stdin", async () => {
    const doc = {
      credsStore: "store",
      credHelpers: { "ecr.example": "ecr" },
      auths: { "registry.example": basic("file-user", "file-pass"), "ecr.example": basic("x", "y") },
    };
    expect(credentialHelperFor(doc, "ecr.example")).toEqual({ helper: "ecr", namedBy: 'credHelpers["ecr.example"]' });
    expect(credentialHelperFor(doc, "registry.example")).toEqual({ helper: "store", namedBy: "credsStore" });
    expect(credentialHelperFor({ auths: {} }, "registry.example")).toBeUndefined();

    const ecr = await resolveRegistryAuth("ecr.example/team/app:1", undefined, withConfig(doc));
    // Username "<token>": the secret is an identity token.
    expect(ecr).toEqual({
      auth: { serveraddress: "ecr.example", identitytoken: "identity-token-2" },
      source: `credential helper docker-credential-ecr (credHelpers["ecr.example"] in ${CONFIG_FILE})`,
    });
    const stored = await resolveRegistryAuth("registry.example/app:1", undefined, withConfig(doc));
    expect(stored).toEqual({
      auth: { serveraddress: "registry.example", username: "store-user", password: "store-secret-1" },
      source: `credential helper docker-credential-store (credsStore in ${CONFIG_FILE})`,
    });
    const hub = await resolveRegistryAuth("busybox", undefined, withConfig(doc));
    expect(hub.auth).toEqual({ serveraddress: "https://index.docker.io/v1/", username: "store-user", password: "store-secret-1" });
    expect(asked("ecr")).toEqual(["ecr.example"]);
    expect(asked("store")).toEqual(expect.arrayContaining(["registry.example", "https://index.docker.io/v1/"]));
  });

  it("a credHelpers key in any spelling of the server (scheme, path) names that registry", async () => {
    const doc = { credHelpers: { "https://Tokens.Example/v2/": "ecr" } };
    expect((await resolveRegistryAuth("tokens.example/x", undefined, withConfig(doc))).auth?.identitytoken).toBe("identity-token-2");
    expect((await resolveRegistryAuth("elsewhere.example/x", undefined, withConfig(doc))).source).toBe(
      `no credentials for elsewhere.example in ${CONFIG_FILE}`,
    );
  });

  it('"credentials not found": no credentials (an anonymous pull, as the docker CLI), not the auths entry', async () => {
    const resolved = await resolveRegistryAuth(
      "registry.example/app:1",
      undefined,
      withConfig({ credsStore: "empty", auths: { "registry.example": basic("file-user", "file-pass") } }),
    );
    expect(resolved).toEqual({
      source: `no credentials: credential helper docker-credential-empty (credsStore in ${CONFIG_FILE}) has none for registry.example`,
    });
  });

  it("a helper that is missing, fails or answers nonsense: the auths entry when there is one (as the docker CLI), else none; the reason says why", async () => {
    const auths = { "registry.example": basic("file-user", "file-pass") };
    const missing = await resolveRegistryAuth("registry.example/app:1", undefined, withConfig({ credsStore: "desktop", auths }));
    expect(missing).toEqual({
      auth: { serveraddress: "registry.example", username: "file-user", password: "file-pass" },
      source: `docker config ${CONFIG_FILE} (credential helper docker-credential-desktop (credsStore in ${CONFIG_FILE}) failed: docker-credential-desktop is not on PATH)`,
    });
    const broken = await resolveRegistryAuth("registry.example/app:1", undefined, withConfig({ credHelpers: { "registry.example": "broken" } }));
    expect(broken).toEqual({
      source: `no credentials: credential helper docker-credential-broken (credHelpers["registry.example"] in ${CONFIG_FILE}) failed: docker-credential-broken failed (exit code 3): something went wrong`,
    });
    expect((await resolveRegistryAuth("registry.example/app:1", undefined, withConfig({ credsStore: "nonsense" }))).source).toMatch(
      /docker-credential-nonsense answered something that is not JSON$/,
    );
    expect((await resolveRegistryAuth("registry.example/app:1", undefined, withConfig({ credsStore: "../bin/x" }))).source).toMatch(
      /"\.\.\/bin\/x" is not a credential helper's name$/,
    );
  });

  it("a helper's failure message that could carry a secret is withheld", async () => {
    const leaky = await resolveRegistryAuth("registry.example/app:1", undefined, withConfig({ credsStore: "leaky" }));
    expect(leaky.source).toMatch(/docker-credential-leaky failed \(exit code 1\): \(its message is withheld/);
    expect(JSON.stringify(leaky)).not.toContain("leaked-secret-3");
  });

  it("a helper that does not answer in time counts as failed", async () => {
    const answer = await runCredentialHelper("slow", "registry.example", { env, timeoutMs: 300 });
    expect(answer).toEqual({ kind: "failed", reason: "docker-credential-slow gave no answer within 300 ms" });
  });

  it("without a helper: the auths entry in any spelling (base64 user:password, identity token), or why there is none", async () => {
    const doc = {
      auths: {
        "https://index.docker.io/v1/": basic("hubuser", "hubpass"),
        "http://127.0.0.1:5000/v2/": basic("local", "pa:ss"),
        "tokens.example": { identitytoken: "tok" },
      },
    };
    expect((await resolveRegistryAuth("busybox", undefined, withConfig(doc))).auth).toEqual({
      serveraddress: "https://index.docker.io/v1/",
      username: "hubuser",
      password: "hubpass",
    });
    expect((await resolveRegistryAuth("127.0.0.1:5000/x", undefined, withConfig(doc))).auth).toEqual({
      serveraddress: "http://127.0.0.1:5000/v2/",
      username: "local",
      password: "pa:ss",
    });
    expect((await resolveRegistryAuth("tokens.example/x", undefined, withConfig(doc))).auth).toEqual({ serveraddress: "tokens.example", identitytoken: "tok" });
    expect((await resolveRegistryAuth("busybox", undefined, withConfig(doc))).source).toBe(`docker config ${CONFIG_FILE}`);
    const noFile = await resolveRegistryAuth("x", undefined, { env: { DOCKER_CONFIG: "/none" }, readFile: withConfig({}).readFile });
    expect(noFile).toEqual({ source: "no credentials (no /none/config.json)" });
  });
});
