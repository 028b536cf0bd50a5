// Registry credentials for an image pull, found the way the docker CLI finds them (cli/config/configfile
// and docker-credential-helpers' client), so that a user whose Docker config keeps credentials in a helper
// (`credsStore`, `credHelpers`: Docker Desktop, pass, secretservice, ecr-login, gcloud…) needs nothing in
// the spec:
//   1. the spec's docker.registryAuth, when it is for the image's registry (never sent to another one);
//   2. else a credential helper named for that registry: `credHelpers[<registry>]`, else `credsStore`,
//      run as `docker-credential-<helper> get` with the server URL on stdin; it answers
//      {ServerURL, Username, Secret} (Username "<token>": Secret is an identity token). "credentials not
//      found" means none (an anonymous pull, as the docker CLI does); a helper that is missing, fails or
//      times out falls back to the config's `auths` entry (as the docker CLI does), else none;
//   3. else the `auths` entry (base64 "user:password", username/password, or an identity token).
// The source of the credentials is reported (with why there are none) so that a refused pull says where
// reseat looked. No secret (helper output included) goes into a source, an error or a log.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { normalizeRegistry, type RegistryCredentials, registryOf } from "./connection";

/** What the engine's X-Registry-Auth header carries (dockerode's AuthConfig). */
export interface RegistryAuth {
  serveraddress: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

export interface ResolvedRegistryAuth {
  auth?: RegistryAuth;
  /** Where the credentials came from (no secret): "spec", "docker config <path>", a helper, or why there are none. */
  source: string;
}

/** How long a credential helper may take (ecr-login and gcloud call their cloud): then it counts as failed. */
export const CREDENTIAL_HELPER_TIMEOUT_MS = 30_000;

/** The docker CLI's name for Docker Hub's credentials (what `docker login` stores and helpers are asked for). */
const DOCKER_HUB_SERVER = "https://index.docker.io/v1/";
/** docker-credential-helpers' message for "nothing stored for this server" (credentials.errCredentialsNotFoundMessage). */
const NOT_FOUND_MESSAGE = "credentials not found in native keychain";
/** The username a helper answers when the secret is an identity token (docker-credential-helpers' tokenUsername). */
const TOKEN_USERNAME = "<token>";

export interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string } | null>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

export interface CredentialEnvironment {
  /** DOCKER_CONFIG, and PATH for finding helpers; default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Reads the Docker config file; injectable for tests. */
  readFile?: (file: string) => string;
  helperTimeoutMs?: number;
}

/** The answer of one `docker-credential-<helper> get`. */
export type HelperAnswer =
  | { kind: "found"; auth: RegistryAuth }
  | { kind: "not-found" }
  /** Missing, failed, timed out or answered nonsense; `reason` carries no secret. */
  | { kind: "failed"; reason: string };

/** The Docker config file reseat reads: $DOCKER_CONFIG/config.json, else ~/.docker/config.json (as the docker CLI). */
export function dockerConfigFile(env: NodeJS.ProcessEnv): string {
  return path.join(env.DOCKER_CONFIG || path.join(os.homedir(), ".docker"), "config.json");
}

/** The server URL the docker CLI stores and asks a helper for: Docker Hub's legacy URL, else host[:port]. */
export function helperServerUrl(registry: string): string {
  return registry === "docker.io" ? DOCKER_HUB_SERVER : registry;
}

/** The helper the docker CLI would ask for `registry`: its credHelpers entry, else credsStore, else none. */
export function credentialHelperFor(config: DockerConfigFile, registry: string): { helper: string; namedBy: string } | undefined {
  const specific = Object.entries(config.credHelpers ?? {}).find(([key, helper]) => normalizeRegistry(key) === registry && helper);
  if (specific) return { helper: specific[1], namedBy: `credHelpers["${specific[0]}"]` };
  if (config.credsStore) return { helper: config.credsStore, namedBy: "credsStore" };
  return undefined;
}

/** The config's `auths` entry for `registry`, any spelling of its server ("https://host:5000/v2/" too). */
export function authsEntryFor(config: DockerConfigFile, registry: string): RegistryAuth | undefined {
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (normalizeRegistry(key) !== registry || !entry) continue;
    if (entry.identitytoken) return { serveraddress: key, identitytoken: entry.identitytoken };
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon > 0) return { serveraddress: key, username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (entry.username && entry.password) return { serveraddress: key, username: entry.username, password: entry.password };
  }
  return undefined;
}

/**
 * Runs `docker-credential-<helper> get` (found on PATH, no shell) with the server URL on stdin, and reads
 * its answer as docker-credential-helpers' client does.
 */
export function runCredentialHelper(helper: string, serverUrl: string, options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<HelperAnswer> {
  // A helper's name becomes a program name: nothing that could make it a path.
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(helper)) return Promise.resolve({ kind: "failed", reason: `"${helper}" is not a credential helper's name` });
  const program = `docker-credential-${helper}`;
  const timeoutMs = options.timeoutMs ?? CREDENTIAL_HELPER_TIMEOUT_MS;
  return new Promise((resolve) => {
    const child = execFile(
      program,
      ["get"],
      { env: options.env ?? process.env, timeout: timeoutMs, maxBuffer: 1024 * 1024, encoding: "utf8" },
      (error, stdout) => {
        if (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === "ENOENT") return resolve({ kind: "failed", reason: `${program} is not on PATH` });
          if (code === "EACCES") return resolve({ kind: "failed", reason: `${program} is not executable` });
          if (error.killed) return resolve({ kind: "failed", reason: `${program} gave no answer within ${timeoutMs} ms` });
          // The protocol puts a helper's error message on stdout.
          if (stdout.trim() === NOT_FOUND_MESSAGE) return resolve({ kind: "not-found" });
          return resolve({ kind: "failed", reason: `${program} failed (exit code ${String(error.code ?? "?")}): ${withoutSecrets(stdout)}` });
        }
        let answer: { ServerURL?: unknown; Username?: unknown; Secret?: unknown };
        try {
          answer = JSON.parse(stdout) as typeof answer;
        } catch {
          return resolve({ kind: "failed", reason: `${program} answered something that is not JSON` });
        }
        if (typeof answer !== "object" || answer === null || typeof answer.Secret !== "string" || !answer.Secret) {
          return resolve({ kind: "failed", reason: `${program} answered without a Secret` });
        }
        const serveraddress = typeof answer.ServerURL === "string" && answer.ServerURL ? answer.ServerURL : serverUrl;
        const username = typeof answer.Username === "string" ? answer.Username : "";
        resolve({
          kind: "found",
          auth: username === TOKEN_USERNAME ? { serveraddress, identitytoken: answer.Secret } : { serveraddress, username, password: answer.Secret },
        });
      },
    );
    // A helper that exits without reading stdin must not turn into an unhandled EPIPE.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(serverUrl);
  });
}

/** A failing helper's message, on one line and short; withheld when it could carry a secret. */
function withoutSecrets(output: string): string {
  const line = output.trim().split("\n")[0]?.trim() ?? "";
  if (!line) return "no message";
  if (/secret|password|token|"Username"/i.test(line)) return "(its message is withheld: it may hold a secret)";
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

/** Credentials for pulling `imageRef` (see the top of this file for the order). */
export async function resolveRegistryAuth(
  imageRef: string,
  explicit: RegistryCredentials | undefined,
  environment: CredentialEnvironment = {},
): Promise<ResolvedRegistryAuth> {
  const registry = registryOf(imageRef);
  if (explicit && normalizeRegistry(explicit.server) === registry) {
    return { auth: { serveraddress: explicit.server, username: explicit.username, password: explicit.password }, source: "spec docker.registryAuth" };
  }
  const env = environment.env ?? process.env;
  const readFile = environment.readFile ?? ((file: string) => fs.readFileSync(file, "utf8"));
  const configFile = dockerConfigFile(env);
  let config: DockerConfigFile;
  try {
    config = JSON.parse(readFile(configFile)) as DockerConfigFile;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { source: code === "ENOENT" ? `no credentials (no ${configFile})` : `no credentials (${configFile} unreadable: ${code ?? "not JSON"})` };
  }
  const fromAuths = authsEntryFor(config, registry);
  const chosen = credentialHelperFor(config, registry);
  if (!chosen) return fromAuths ? { auth: fromAuths, source: `docker config ${configFile}` } : { source: `no credentials for ${registry} in ${configFile}` };
  const named = `docker-credential-${chosen.helper} (${chosen.namedBy} in ${configFile})`;
  const answer = await runCredentialHelper(chosen.helper, helperServerUrl(registry), { env, timeoutMs: environment.helperTimeoutMs });
  switch (answer.kind) {
    case "found":
      return { auth: answer.auth, source: `credential helper ${named}` };
    case "not-found":
      // As the docker CLI: the helper is the store for this registry; nothing there means an anonymous pull.
      return { source: `no credentials: credential helper ${named} has none for ${registry}` };
    case "failed":
      // As the docker CLI: a helper that cannot answer leaves the config's own entry, if any.
      return fromAuths
        ? { auth: fromAuths, source: `docker config ${configFile} (credential helper ${named} failed: ${answer.reason})` }
        : { source: `no credentials: credential helper ${named} failed: ${answer.reason}` };
  }
}
