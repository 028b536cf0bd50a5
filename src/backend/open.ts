// Which backend a PE uses comes from its spec (recorded in Pulumi state with the executable), never
// from ambient state alone: the one place that turns an EngineTarget into a Backend.
import type { Backend, EngineTarget } from "./backend";
import { EngineCredentials, resolveConnection } from "./docker/connection";
import { DockerBackend } from "./docker/dockerBackend";
import { KubernetesBackend } from "./kubernetes/kubernetesBackend";

/**
 * @param credentials the secret half of the connection (TLS key, ssh key, registry password), from
 *   the PE's secret inputs; absent for engines reached without them.
 */
export function openBackend(target: EngineTarget | undefined, credentials: EngineCredentials = {}): Backend {
  const kind = target?.kind ?? "docker";
  switch (target?.kind) {
    case undefined:
    case "docker":
      // The spec's host wins; else DOCKER_HOST, as every Docker tool does; else the local socket.
      return new DockerBackend(resolveConnection({ host: target?.host, tls: credentials.tls, ssh: credentials.ssh }), { registryAuth: credentials.registryAuth });
    case "kubernetes":
      // The cluster comes from the ambient kubeconfig (credentials never enter Pulumi state); the
      // namespace and context from the spec.
      return new KubernetesBackend({ namespace: target.namespace, context: target.context });
    default:
      throw new Error(`reseat: engine.kind "${String(kind)}" is not supported here (expected "docker" or "kubernetes")`);
  }
}
