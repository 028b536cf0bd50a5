// The one way reseat makes a dockerode client for an engine connection.
import Dockerode from "dockerode";
import type { EngineConnection } from "./connection";
import { SshDialAgent } from "./sshTransport";

export function dockerClient(connection: EngineConnection): Dockerode {
  if (connection.kind === "ssh" && connection.ssh) {
    // docker-modem's own ssh transport re-connects for every call (~1 s each); this agent keeps the
    // ssh connection and its dial-stdio channels open (see sshTransport.ts). The modem then speaks
    // plain HTTP through it.
    const options = { ...connection.dockerOptions, protocol: "http", sshOptions: undefined, agent: new SshDialAgent(connection.ssh) };
    return new Dockerode(options as Dockerode.DockerOptions);
  }
  return new Dockerode(connection.dockerOptions);
}
