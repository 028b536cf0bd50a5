// The invalid specs every flavour must reject with the same field and message (Pulumi at preview,
// Terraform at synth): one list, so the flavours cannot drift apart.
import { demoSpec } from "./harness";

export interface InvalidSpecCase {
  name: string;
  spec: Record<string, unknown>;
  field: string;
  expected: RegExp;
}

export function invalidSpecs(peId: string): InvalidSpecCase[] {
  const base = demoSpec(peId, 18999);
  return [
    { name: "bad image reference", spec: { ...base, image: "Not A Valid:Image!!" }, field: "image", expected: /Docker image reference/ },
    { name: "negative commit interval", spec: { ...base, commitInterval: "-5s" }, field: "commitInterval", expected: /positive duration/ },
    { name: "relative mount path", spec: { ...base, volume: { mountPath: "state" } }, field: "volume.mountPath", expected: /absolute path/ },
    { name: "unknown field", spec: { ...base, imagee: "x" }, field: "imagee", expected: /unknown field/ },
    { name: "bad PE id", spec: { ...base, peId: "Bad_Id" }, field: "peId", expected: /DNS label/ },
    { name: "port out of range", spec: { ...base, ports: [{ container: 70000 }] }, field: "ports.0.container", expected: /port from 1 to 65535/ },
    { name: "bad env name", spec: { ...base, env: { "1BAD": "x" } }, field: "env.1BAD", expected: /environment variable names/ },
    {
      name: "an env name reseat reserves",
      spec: { ...base, env: { RESEAT_PE_ID: "x" } },
      field: "env.RESEAT_PE_ID",
      expected: /reserved: reseat sets RESEAT_PE_ID for every workload/,
    },
    { name: "memory below Docker's minimum", spec: { ...base, resources: { memoryMiB: 1 } }, field: "resources.memoryMiB", expected: /at least 6 MiB/ },
    { name: "unknown network mode", spec: { ...base, network: "overlay" }, field: "network", expected: /"bridge", "host" or "none"/ },
    { name: "negative stop grace", spec: { ...base, stop: { graceSeconds: -1 } }, field: "stop.graceSeconds", expected: /0 or more seconds/ },
    {
      name: "readiness with two probes",
      spec: { ...base, readiness: { httpGet: { port: 1 }, logLine: "x" } },
      field: "readiness",
      expected: /exactly one of httpGet or logLine/,
    },
    { name: "invalid log-line regex", spec: { ...base, readiness: { logLine: "(" } }, field: "readiness.logLine", expected: /valid regular expression/ },
    { name: "missing image", spec: { peId }, field: "image", expected: /required|expected/ },
    { name: "mount path with ..", spec: { ...base, volume: { mountPath: "/state/../etc" } }, field: "volume.mountPath", expected: /without "\.\." segments/ },
    {
      name: "store with both volume and hostPath",
      spec: { ...base, persistentStore: { kind: "directory", volume: "v", hostPath: "/x" } },
      field: "persistentStore",
      expected: /either volume or hostPath/,
    },
    { name: "commit interval past what a timer can hold", spec: { ...base, commitInterval: 1e12 }, field: "commitInterval", expected: /at most 24h/ },
    {
      name: "one host port mapped twice",
      spec: {
        ...base,
        network: "bridge",
        ports: [
          { container: 8080, host: 18998 },
          { container: 8081, host: 18998 },
        ],
      },
      field: "ports.1.host",
      expected: /host port used once; 127\.0\.0\.1:18998\/tcp is already mapped by ports\.0/,
    },
    {
      name: "allowEmptyStart not a boolean",
      spec: { ...base, persistentStore: { kind: "directory", allowEmptyStart: "yes" } },
      field: "persistentStore.allowEmptyStart",
      expected: /expected true or false/,
    },
    {
      name: "postgres store without a password",
      spec: { ...base, persistentStore: { kind: "postgres", database: "d", user: "u" } },
      field: "persistentStore",
      expected: /exactly one of password or passwordSecret/,
    },
  ];
}
