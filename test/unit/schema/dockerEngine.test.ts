// The spec's `docker` block: which engine, and how its secrets are named (config keys) or given.
import { describe, expect, it } from "vitest";
import { parseProcessingElement } from "../../../src/schema/processingElement";
import { problemsOf } from "./problems";

const minimal = { peId: "orders-0", image: "127.0.0.1:5000/team/app:1" };
const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

describe("spec.docker", () => {
  it("accepts a tcp:// engine with TLS (key from a secret config key), an ssh:// engine, and registry credentials", () => {
    const tls = parseProcessingElement({ ...minimal, docker: { host: "tcp://10.0.0.5:2376", tls: { ca: PEM, cert: PEM, keySecret: "engineKey" } } });
    expect(tls.docker?.tls).toEqual({ ca: PEM, cert: PEM, keySecret: "engineKey" });
    const ssh = parseProcessingElement({ ...minimal, docker: { host: "ssh://deploy@10.0.0.6:2222", ssh: { privateKeySecret: "sshKey" } } });
    expect(ssh.docker?.ssh).toEqual({ privateKeySecret: "sshKey" });
    // No key: the ssh agent.
    expect(parseProcessingElement({ ...minimal, docker: { host: "ssh://deploy@h", ssh: {} } }).docker?.ssh).toEqual({});
    const auth = parseProcessingElement({
      ...minimal,
      docker: { registryAuth: { server: "127.0.0.1:5000", username: "ci", passwordSecret: "registryPassword" } },
    });
    expect(auth.docker?.registryAuth).toEqual({ server: "127.0.0.1:5000", username: "ci", passwordSecret: "registryPassword" });
  });

  it("names the field when a secret is given twice or not at all", () => {
    expect(problemsOf({ ...minimal, docker: { host: "tcp://h:2376", tls: { ca: PEM, cert: PEM } } })).toEqual([
      { field: "docker.tls", expected: "expected exactly one of key or keySecret" },
    ]);
    expect(problemsOf({ ...minimal, docker: { registryAuth: { server: "r.example", username: "u", password: "p", passwordSecret: "k" } } })).toEqual([
      { field: "docker.registryAuth", expected: "expected exactly one of password or passwordSecret" },
    ]);
    expect(problemsOf({ ...minimal, docker: { host: "ssh://u@h", ssh: { privateKey: "k", privateKeySecret: "k" } } })).toEqual([
      { field: "docker.ssh", expected: "expected at most one of privateKey or privateKeySecret" },
    ]);
  });

  it("refuses TLS without a tcp:// host, ssh without an ssh:// host, PEMs that are not PEMs, and passwords in addresses", () => {
    expect(problemsOf({ ...minimal, docker: { tls: { ca: PEM, cert: PEM, keySecret: "k" } } })).toEqual([
      { field: "docker.tls", expected: 'expected docker.host to be a "tcp://host:port" address when tls is given' },
    ]);
    expect(problemsOf({ ...minimal, docker: { host: "tcp://h:2376", ssh: {} } })).toEqual([
      { field: "docker.ssh", expected: 'expected docker.host to be an "ssh://user@host[:port]" address when ssh is given' },
    ]);
    expect(problemsOf({ ...minimal, docker: { host: "tcp://h:2376", tls: { ca: "nope", cert: PEM, keySecret: "k" } } })).toEqual([
      { field: "docker.tls.ca", expected: "expected PEM contents (the CA certificate: -----BEGIN …)" },
    ]);
    const [problem] = problemsOf({ ...minimal, docker: { host: "ssh://u:hunter2@h" } });
    expect(problem?.field).toBe("docker.host");
    expect(problem?.expected).toMatch(/no password in the address/);
  });

  it("names unknown fields and malformed registry servers", () => {
    expect(problemsOf({ ...minimal, docker: { registryAuth: { server: "https://r.example/v2/", username: "u", passwordSecret: "k" } } })).toEqual([
      { field: "docker.registryAuth.server", expected: 'expected a registry host[:port] such as "registry.example.com" or "127.0.0.1:5000"' },
    ]);
    expect(problemsOf({ ...minimal, docker: { hots: "tcp://h:1" } })[0]?.field).toBe("docker.hots");
  });
});
