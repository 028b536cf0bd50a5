// The one way reseat makes a dockerode client for an engine connection.
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import Dockerode from "dockerode";
import type { EngineConnection } from "./connection";
import { SshDialAgent } from "./sshTransport";

/**
 * `freshConnections`: every call opens a new connection (no keep-alive). A Docker Engine that is shutting
 * down closes its listener first and keeps serving the connections already open (an event stream, idle
 * keep-alive sockets) while it stops its containers: only a new connection tells that it is going away.
 */
export function dockerClient(connection: EngineConnection, options: { freshConnections?: boolean } = {}): Dockerode {
  silenceModemDebug();
  if (connection.kind === "ssh" && connection.ssh) {
    // docker-modem's own ssh transport re-connects for every call (~1 s each); this agent keeps the
    // ssh connection and its dial-stdio channels open (see sshTransport.ts). The modem then speaks
    // plain HTTP through it.
    const options = { ...connection.dockerOptions, protocol: "http", sshOptions: undefined, agent: new SshDialAgent(connection.ssh) };
    return new Dockerode(options as Dockerode.DockerOptions);
  }
  if (options.freshConnections) {
    const agent = connection.dockerOptions.protocol === "https" ? new https.Agent({ keepAlive: false }) : new http.Agent({ keepAlive: false });
    return new Dockerode({ ...connection.dockerOptions, agent } as Dockerode.DockerOptions);
  }
  return new Dockerode(connection.dockerOptions);
}

interface DebugModule {
  enabled(namespace: string): boolean;
  enable(namespaces: string): void;
  namespaces?: string;
}

/**
 * docker-modem's debug output (DEBUG=modem, DEBUG=*) prints every request's options — the TLS key and
 * the X-Registry-Auth header (base64 registry credentials) included. Whatever DEBUG says, that one
 * namespace stays off; the rest of DEBUG is left as it is.
 */
export function silenceModemDebug(): void {
  const debug = require(require.resolve("debug", { paths: [path.dirname(require.resolve("docker-modem"))] })) as DebugModule;
  if (debug.enabled("modem")) debug.enable(`${debug.namespaces ?? process.env.DEBUG ?? ""},-modem`);
}
