// Where a Docker Engine is and how to reach it: an engine address (unix://, tcp:// with TLS, ssh://)
// turned into dockerode (docker-modem) options, and the registry credentials an image pull sends.
// Pure apart from reading files named by the environment (DOCKER_CERT_PATH, the Docker config), so
// it is unit-tested without an engine. Secret material (TLS key, ssh key, registry password) is only
// ever handed to the client library: `address` and every error message here carry none of it.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type Dockerode from "dockerode";
import type { SshTarget } from "./sshTransport";
import type { EngineCredentials, RegistryCredentials } from "../engineCredentials";

export type { EngineCredentials, RegistryCredentials };

/** The Engine API version reseat speaks: old (20.10) and new engines answer it with the same shapes. */
export const ENGINE_API_VERSION = "v1.41";
/** Budget of an ordinary engine call (inspect, create, list, …); long calls (stop, pull) get their own. */
export const DEFAULT_CALL_TIMEOUT_MS = 60_000;
export const DEFAULT_SOCKET = "/var/run/docker.sock";

/** How a PE's spec (or the caller) names an engine. Secret fields hold PEM contents, never file paths. */
export interface DockerConnectionSpec {
  /** unix:///path, tcp://host:port or ssh://user@host[:port]. Default: DOCKER_HOST, then the local socket. */
  host?: string;
  /** Mutual TLS for tcp:// (what `dockerd --tlsverify` expects): CA, client certificate, client key. */
  tls?: { ca: string; cert: string; key: string };
  /** ssh:// authentication: a private key (OpenSSH or PEM), or, when absent, the ssh agent (SSH_AUTH_SOCK). */
  ssh?: { privateKey?: string; passphrase?: string };
  /** Budget of an ordinary engine call, in ms. */
  callTimeoutMs?: number;
}

export type EngineKind = "unix" | "tcp" | "ssh";

export interface EngineConnection {
  kind: EngineKind;
  /** The engine's address without any secret: what outputs, errors and logs show. */
  address: string;
  /** For `new Dockerode(options)`. Every connection field is set (undefined when unused) because
   *  docker-modem merges its own DOCKER_HOST-derived defaults under whatever is passed. */
  dockerOptions: Dockerode.DockerOptions;
  /** The engine runs on this machine and its volumes' files may be reachable here (unix socket only). */
  local: boolean;
  /** The engine machine's host name or address (tcp/ssh), where its published ports are reached. */
  hostname?: string;
  /** For ssh:// engines: whom to connect as, how (see dockerClient: one kept-open ssh connection). */
  ssh?: SshTarget;
  callTimeoutMs: number;
}

/** A bad engine address or connection setting; `field` names the spec field at fault. */
export class ConnectionError extends Error {
  constructor(
    readonly field: string,
    expected: string,
  ) {
    super(`reseat: ${field}: ${expected}`);
    this.name = "ConnectionError";
  }
}

export interface ConnectionEnvironment {
  env?: NodeJS.ProcessEnv;
  /** Reads a file named by the environment (DOCKER_CERT_PATH); injectable for tests. */
  readFile?: (file: string) => string;
  /** The local user, the default ssh user (like the ssh CLI). */
  userName?: () => string;
}

/**
 * The engine a PE uses: `spec.host`, else DOCKER_HOST (with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, as the
 * docker CLI reads them), else the local socket. Throws ConnectionError naming the field at fault.
 */
export function resolveConnection(spec: DockerConnectionSpec = {}, environment: ConnectionEnvironment = {}): EngineConnection {
  const env = environment.env ?? process.env;
  const readFile = environment.readFile ?? ((file: string) => fs.readFileSync(file, "utf8"));
  const fromSpec = spec.host !== undefined && spec.host !== "";
  const field = fromSpec ? "docker.host" : "DOCKER_HOST";
  const raw = fromSpec ? spec.host! : env.DOCKER_HOST || `unix://${DEFAULT_SOCKET}`;
  const callTimeoutMs = spec.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  if (!Number.isFinite(callTimeoutMs) || callTimeoutMs < 1000) {
    throw new ConnectionError("docker.callTimeoutMs", `expected at least 1000 ms, got ${callTimeoutMs}`);
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(raw)?.[1]?.toLowerCase();

  if (spec.tls && scheme !== "tcp") {
    throw new ConnectionError("docker.tls", `TLS settings need a tcp:// engine address, but the address is "${safeAddress(raw)}"`);
  }
  if (spec.ssh && scheme !== "ssh") {
    throw new ConnectionError("docker.ssh", `ssh settings need an ssh:// engine address, but the address is "${safeAddress(raw)}"`);
  }

  // Nothing of a DOCKER_HOST-derived default may leak into an explicit connection (see dockerOptions).
  const blank: Dockerode.DockerOptions = {
    socketPath: undefined,
    host: undefined,
    port: undefined,
    protocol: undefined,
    ca: undefined,
    cert: undefined,
    key: undefined,
    username: undefined,
    sshOptions: undefined,
    timeout: undefined,
    version: ENGINE_API_VERSION,
  };

  switch (scheme) {
    case "unix": {
      const socketPath = raw.slice("unix://".length) || DEFAULT_SOCKET;
      if (!socketPath.startsWith("/")) throw new ConnectionError(field, `expected unix:///absolute/path, got "${raw}"`);
      return { kind: "unix", address: `unix://${socketPath}`, dockerOptions: { ...blank, socketPath }, local: true, callTimeoutMs };
    }
    case "tcp": {
      const url = parseUrl(raw, field);
      if (url.username || url.password) throw new ConnectionError(field, "expected tcp://host:port without user or password");
      if (url.pathname && url.pathname !== "/") throw new ConnectionError(field, `expected tcp://host:port without a path, got "${raw}"`);
      const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
      let tls = spec.tls;
      let tlsField = "docker.tls";
      if (!tls && !fromSpec && env.DOCKER_TLS_VERIFY && env.DOCKER_TLS_VERIFY !== "0") {
        tls = tlsFromCertPath(env, readFile);
        tlsField = "DOCKER_CERT_PATH";
      }
      const port = Number(url.port || (tls ? 2376 : 2375));
      if (tls) {
        for (const part of ["ca", "cert", "key"] as const) {
          if (typeof tls[part] !== "string" || !tls[part].includes("-----BEGIN")) {
            throw new ConnectionError(`${tlsField}.${part}`, "expected PEM contents (-----BEGIN …)");
          }
        }
        return {
          kind: "tcp",
          address: `tcp://${url.host.replace(/:\d+$/, "")}:${port}`,
          dockerOptions: { ...blank, host, port, protocol: "https", ca: tls.ca, cert: tls.cert, key: tls.key },
          local: false,
          hostname: host,
          callTimeoutMs,
        };
      }
      return {
        kind: "tcp",
        address: `tcp://${url.host.replace(/:\d+$/, "")}:${port}`,
        dockerOptions: { ...blank, host, port, protocol: "http" },
        local: false,
        hostname: host,
        callTimeoutMs,
      };
    }
    case "ssh": {
      const url = parseUrl(raw, field);
      if (url.password) {
        throw new ConnectionError(
          field,
          "expected ssh://user@host[:port] without a password (it would be stored in plain text); use docker.ssh.privateKeySecret or an ssh agent",
        );
      }
      if (url.pathname && url.pathname !== "/") throw new ConnectionError(field, `expected ssh://user@host[:port] without a path, got "${safeAddress(raw)}"`);
      const username = decodeURIComponent(url.username) || (environment.userName ?? (() => os.userInfo().username))();
      const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
      const port = Number(url.port || 22);
      const privateKey = spec.ssh?.privateKey;
      const agent = env.SSH_AUTH_SOCK || undefined;
      if (privateKey !== undefined && !/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(privateKey)) {
        throw new ConnectionError("docker.ssh.privateKey", "expected the contents of a private key file (-----BEGIN … PRIVATE KEY-----)");
      }
      if (!privateKey && !agent) {
        throw new ConnectionError(
          fromSpec ? "docker.ssh" : "DOCKER_HOST",
          `reaching ${safeAddress(raw)} needs an ssh private key (docker.ssh.privateKeySecret) or a running ssh agent (SSH_AUTH_SOCK)`,
        );
      }
      return {
        kind: "ssh",
        address: `ssh://${username}@${url.host.replace(/:\d+$/, "")}:${port}`,
        dockerOptions: {
          ...blank,
          host,
          port,
          protocol: "ssh",
          username,
          // docker-modem runs `docker system dial-stdio` on the remote side over this connection.
          sshOptions: { privateKey, passphrase: spec.ssh?.passphrase, agent: privateKey ? undefined : agent, readyTimeout: callTimeoutMs },
        },
        local: false,
        hostname: host,
        ssh: { host, port, username, privateKey, passphrase: spec.ssh?.passphrase, agent: privateKey ? undefined : agent, readyTimeoutMs: callTimeoutMs },
        callTimeoutMs,
      };
    }
    default:
      throw new ConnectionError(field, `expected unix:///path, tcp://host:port or ssh://user@host[:port], got "${safeAddress(raw)}"`);
  }
}

/** TLS material from DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem), like the docker CLI. */
function tlsFromCertPath(env: NodeJS.ProcessEnv, readFile: (file: string) => string): { ca: string; cert: string; key: string } {
  const dir = env.DOCKER_CERT_PATH || path.join(os.homedir(), ".docker");
  const read = (name: string) => {
    try {
      return readFile(path.join(dir, name));
    } catch (error) {
      throw new ConnectionError(
        "DOCKER_CERT_PATH",
        `DOCKER_TLS_VERIFY is set but ${path.join(dir, name)} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      );
    }
  };
  return { ca: read("ca.pem"), cert: read("cert.pem"), key: read("key.pem") };
}

function parseUrl(raw: string, field: string): URL {
  try {
    // URL parses host and port of unknown schemes only as "special" ones: borrow http's grammar.
    const url = new URL(raw.replace(/^[a-z]+:/i, "http:"));
    if (!url.hostname) throw new Error("no host");
    return url;
  } catch {
    throw new ConnectionError(field, `expected an address such as tcp://host:2376 or ssh://user@host:22, got "${safeAddress(raw)}"`);
  }
}

/** The address with any password blanked, for messages. */
export function safeAddress(raw: string): string {
  return raw.replace(/^([a-z]+:\/\/[^:/@]*):[^@/]*@/i, "$1:***@");
}

// ---- Registry credentials ------------------------------------------------------------------------

// Which credentials a pull uses (a spec's, a credential helper's, the Docker config's): ./credentials.ts.

const DOCKER_HUB = "docker.io";

/** The registry an image reference is pulled from, as Docker decides it ("docker.io" when none is named). */
export function registryOf(imageRef: string): string {
  const slash = imageRef.indexOf("/");
  if (slash < 0) return DOCKER_HUB;
  const first = imageRef.slice(0, slash);
  if (first.includes(".") || first.includes(":") || first === "localhost") return normalizeRegistry(first);
  return DOCKER_HUB;
}

/** "https://index.docker.io/v1/", "registry-1.docker.io", "HTTPS://Host:5000/v2/" → one comparable host[:port]. */
export function normalizeRegistry(server: string): string {
  const host = server
    .trim()
    .replace(/^[a-z]+:\/\//i, "")
    .replace(/\/.*$/, "")
    .toLowerCase();
  if (host === "index.docker.io" || host === "registry-1.docker.io" || host === "registry.hub.docker.com") return DOCKER_HUB;
  return host;
}
