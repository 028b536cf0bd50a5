// TLS material for a test engine, made with openssl: a throwaway CA, a server certificate for
// 127.0.0.1/localhost and a client certificate, the set `dockerd --tlsverify` and a client need.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export interface TlsFiles {
  dir: string;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  /** Client side, as PEM contents: what a PE's spec carries (the key as a Pulumi secret). */
  client: { ca: string; cert: string; key: string };
}

/** Makes a CA and certificates signed by it in `dir` (P-256 keys: quick to make, valid for 2 days). */
export function makeTlsFiles(dir: string, commonName = "reseat test CA"): TlsFiles {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

  openssl(
    "req",
    "-x509",
    ...ecKey,
    "-keyout",
    file("ca-key.pem"),
    "-out",
    file("ca.pem"),
    "-days",
    "2",
    "-subj",
    `/CN=${commonName}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  );
  const sign = (name: string, subject: string, extensions: string) => {
    openssl("req", "-new", ...ecKey, "-keyout", file(`${name}-key.pem`), "-out", file(`${name}.csr`), "-subj", subject);
    fs.writeFileSync(file(`${name}.ext`), extensions);
    openssl(
      "x509",
      "-req",
      "-in",
      file(`${name}.csr`),
      "-CA",
      file("ca.pem"),
      "-CAkey",
      file("ca-key.pem"),
      "-CAcreateserial",
      "-out",
      file(`${name}-cert.pem`),
      "-days",
      "2",
      "-extfile",
      file(`${name}.ext`),
    );
  };
  sign("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n");
  sign("client", "/CN=reseat-test-client", "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n");
  for (const name of fs.readdirSync(dir)) if (name.endsWith("-key.pem")) fs.chmodSync(file(name), 0o600);

  const read = (name: string) => fs.readFileSync(file(name), "utf8");
  return {
    dir,
    caFile: file("ca.pem"),
    serverCertFile: file("server-cert.pem"),
    serverKeyFile: file("server-key.pem"),
    client: { ca: read("ca.pem"), cert: read("client-cert.pem"), key: read("client-key.pem") },
  };
}
