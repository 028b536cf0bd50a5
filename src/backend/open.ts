// Which backend a PE uses comes from its spec (recorded in Pulumi state with the executable), never
// from ambient state alone: the one place that turns an EngineTarget into a Backend. The Kubernetes
// backend (and its client library, the heaviest module reseat loads) is required only when a PE asks for
// Kubernetes: a Docker-only provider call never loads it (rule kubernetes-client-loads-on-demand in
// .dependency-cruiser.cjs). A plain `require`: openBackend stays synchronous for its callers.
import type { Backend, EngineTarget } from "./backend";
import type { EngineCredentials } from "./engineCredentials";
import { resolveConnection } from "./docker/connection";
import { DockerBackend } from "./docker/dockerBackend";

/**
 * @param credentials the secret half of the connection (TLS key, ssh key, registry password), from
 *   the PE's secret inputs; absent for engines reached without them.
 */
export function openBackend(target: EngineTarget | undefined, credentials: EngineCredentials = {}): Backend {
  const kind = target?.kind ?? "docker";
  switch (target?.kind) {
    case undefined:
    case "docker": {
      // The spec's host wins; else DOCKER_HOST, as every Docker tool does; else the local socket.
      return new DockerBackend(resolveConnection({ host: target?.host, tls: credentials.tls, ssh: credentials.ssh }), {
        registryAuth: credentials.registryAuth,
      });
    }
    case "kubernetes": {
      // The cluster comes from the ambient kubeconfig (credentials never enter Pulumi state); the
      // namespace and context from the spec.
      const { KubernetesBackend }: typeof import("./kubernetes/kubernetesBackend") = require("./kubernetes/kubernetesBackend");
      return new KubernetesBackend({ namespace: target.namespace, context: target.context });
    }
    default:
      throw new Error(`reseat: engine.kind "${String(kind)}" is not supported here (expected "docker" or "kubernetes")`);
  }
}
