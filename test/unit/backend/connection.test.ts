// Engine addresses → dockerode options, without any engine (registry credentials: credentials.test.ts).
import { describe, expect, it } from "vitest";
import { ConnectionError, resolveConnection, safeAddress } from "../../../src/backend/docker/connection";

const CA = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n";
const CERT = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n";
const SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nSECRETSSHMATERIAL\n-----END OPENSSH PRIVATE KEY-----\n";
const noEnv = { env: {} };

/** The error a call throws (fails the test when it does not throw). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected an error");
}

describe("engine address → dockerode options", () => {
  it("defaults to the local socket, clearing whatever docker-modem would take from DOCKER_HOST", () => {
    const c = resolveConnection({}, noEnv);
    expect(c).toMatchObject({ kind: "unix", address: "unix:///var/run/docker.sock", local: true });
    expect(c.dockerOptions).toMatchObject({ socketPath: "/var/run/docker.sock", version: "v1.41" });
    // Explicitly present as undefined: docker-modem merges its DOCKER_HOST defaults under these keys.
    for (const key of ["host", "port", "protocol", "ca", "cert", "key", "sshOptions"]) {
      expect(Object.prototype.hasOwnProperty.call(c.dockerOptions, key), key).toBe(true);
      expect((c.dockerOptions as Record<string, unknown>)[key], key).toBeUndefined();
    }
  });

  it("takes DOCKER_HOST when the spec names no host; the spec's host wins over it", () => {
    expect(resolveConnection({}, { env: { DOCKER_HOST: "unix:///run/other.sock" } }).dockerOptions.socketPath).toBe("/run/other.sock");
    const c = resolveConnection({ host: "unix:///run/spec.sock" }, { env: { DOCKER_HOST: "tcp://10.0.0.1:2375" } });
    expect(c).toMatchObject({ kind: "unix", address: "unix:///run/spec.sock" });
    expect(c.dockerOptions.host).toBeUndefined();
  });

  it("tcp:// with TLS: https with the given PEM contents; the address carries no secret", () => {
    const c = resolveConnection({ host: "tcp://127.0.0.1:23761", tls: { ca: CA, cert: CERT, key: KEY } }, noEnv);
    expect(c).toMatchObject({ kind: "tcp", address: "tcp://127.0.0.1:23761", local: false, hostname: "127.0.0.1" });
    expect(c.dockerOptions).toMatchObject({ host: "127.0.0.1", port: 23761, protocol: "https", ca: CA, cert: CERT, key: KEY, socketPath: undefined });
    expect(resolveConnection({ host: "tcp://engine.example:2376", tls: { ca: CA, cert: CERT, key: KEY } }, noEnv).address).toBe("tcp://engine.example:2376");
  });

  it("tcp:// without TLS is plain HTTP (port 2375 by default)", () => {
    const c = resolveConnection({}, { env: { DOCKER_HOST: "tcp://10.1.2.3" } });
    expect(c.dockerOptions).toMatchObject({ host: "10.1.2.3", port: 2375, protocol: "http" });
  });

  it("DOCKER_HOST=tcp:// with DOCKER_TLS_VERIFY reads ca.pem, cert.pem, key.pem from DOCKER_CERT_PATH, like the docker CLI", () => {
    const files: Record<string, string> = { "/certs/ca.pem": CA, "/certs/cert.pem": CERT, "/certs/key.pem": KEY };
    const c = resolveConnection(
      {},
      { env: { DOCKER_HOST: "tcp://h:2376", DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: "/certs" }, readFile: (f) => files[f] ?? "" },
    );
    expect(c.dockerOptions).toMatchObject({ protocol: "https", ca: CA, cert: CERT, key: KEY });
    const error = thrown(() =>
      resolveConnection(
        {},
        {
          env: { DOCKER_HOST: "tcp://h:2376", DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: "/nowhere" },
          readFile: () => {
            throw Object.assign(new Error("no"), { code: "ENOENT" });
          },
        },
      ),
    );
    expect(error).toBeInstanceOf(ConnectionError);
    expect(error.message).toMatch(/DOCKER_CERT_PATH: DOCKER_TLS_VERIFY is set but \/nowhere\/ca\.pem cannot be read \(ENOENT\)/);
  });

  it("refuses TLS or ssh settings for an address of another kind, and PEMs that are not PEMs, naming the field and never the secret", () => {
    expect(thrown(() => resolveConnection({ tls: { ca: CA, cert: CERT, key: KEY } }, noEnv)).message).toMatch(
      /docker\.tls: TLS settings need a tcp:\/\/ engine address/,
    );
    expect(thrown(() => resolveConnection({ host: "tcp://h:1", ssh: { privateKey: SSH_KEY } }, noEnv)).message).toMatch(
      /docker\.ssh: ssh settings need an ssh:\/\/ engine address/,
    );
    const bad = thrown(() => resolveConnection({ host: "tcp://h:1", tls: { ca: CA, cert: CERT, key: "not a pem SECRETKEYMATERIAL" } }, noEnv));
    expect(bad.message).toMatch(/docker\.tls\.key: expected PEM contents/);
    expect(bad.message).not.toContain("SECRETKEYMATERIAL");
  });

  it("ssh://user@host:port with a private key; the key is handed to ssh only", () => {
    const c = resolveConnection({ host: "ssh://deploy@engine.example:2222", ssh: { privateKey: SSH_KEY } }, noEnv);
    expect(c).toMatchObject({ kind: "ssh", address: "ssh://deploy@engine.example:2222", local: false, hostname: "engine.example" });
    expect(c.dockerOptions).toMatchObject({ protocol: "ssh", host: "engine.example", port: 2222, username: "deploy" });
    expect(c.ssh).toMatchObject({ host: "engine.example", port: 2222, username: "deploy", privateKey: SSH_KEY, agent: undefined });
    expect(c.address).not.toContain("SECRET");
  });

  it("ssh:// defaults: port 22, the local user, the ssh agent when no key is given", () => {
    const c = resolveConnection({ host: "ssh://engine.example" }, { env: { SSH_AUTH_SOCK: "/tmp/agent.sock" }, userName: () => "alice" });
    expect(c.address).toBe("ssh://alice@engine.example:22");
    expect(c.ssh).toMatchObject({ username: "alice", port: 22, agent: "/tmp/agent.sock", privateKey: undefined });
    expect(thrown(() => resolveConnection({ host: "ssh://u@h" }, noEnv)).message).toMatch(
      /docker\.ssh: reaching ssh:\/\/u@h needs an ssh private key \(docker\.ssh\.privateKeySecret\) or a running ssh agent/,
    );
  });

  it("refuses a password in an ssh:// address without repeating it", () => {
    const error = thrown(() => resolveConnection({ host: "ssh://u:hunter2@h:22", ssh: { privateKey: SSH_KEY } }, noEnv));
    expect(error.message).toMatch(/docker\.host: expected ssh:\/\/user@host\[:port\] without a password/);
    expect(error.message).not.toContain("hunter2");
    expect(safeAddress("ssh://u:hunter2@h:22")).toBe("ssh://u:***@h:22");
  });

  it("names the field of an unknown scheme or a too small call budget", () => {
    expect(thrown(() => resolveConnection({ host: "npipe:////./pipe/docker" }, noEnv)).message).toMatch(
      /docker\.host: expected unix:\/\/\/path, tcp:\/\/host:port or ssh:\/\/user@host\[:port\]/,
    );
    expect(thrown(() => resolveConnection({}, { env: { DOCKER_HOST: "http://h:1" } })).message).toMatch(/^reseat: DOCKER_HOST: /);
    expect(thrown(() => resolveConnection({ callTimeoutMs: 10 }, noEnv)).message).toMatch(/docker\.callTimeoutMs: expected at least 1000 ms/);
  });
});
