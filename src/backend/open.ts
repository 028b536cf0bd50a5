// Which backend a PE uses comes from its spec (recorded in Pulumi state with the executable), never
// from ambient state alone: the one place that turns an EngineTarget into a Backend.
import type { Backend, EngineTarget } from "./backend";
import { DockerBackend } from "./docker/dockerBackend";
import { engineAddressFromEnv } from "./docker/engine";

export function openBackend(target: EngineTarget | undefined): Backend {
  const kind = target?.kind ?? "docker";
  switch (kind) {
    case "docker":
      // The spec's host wins; else DOCKER_HOST, as every Docker tool does; else the local socket.
      return new DockerBackend(engineAddressFromEnv(target?.host ? { DOCKER_HOST: target.host } : process.env));
    default:
      throw new Error(`reseat: engine.kind "${String(kind)}" is not supported here (expected "docker")`);
  }
}
