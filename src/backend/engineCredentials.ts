// The secret half of reaching an engine and its registry, whichever engine it is: the provider and the
// components pass it along to src/backend/open.ts without knowing which engine will use it (the layer
// rules keep them out of the engine folders; see .dependency-cruiser.cjs).

/**
 * Resolved from Pulumi secrets: travels as a secret input of the PE's resources (encrypted in state),
 * never in labels, outputs or logs.
 */
export interface EngineCredentials {
  tls?: { ca: string; cert: string; key: string };
  ssh?: { privateKey?: string; passphrase?: string };
  registryAuth?: RegistryCredentials;
}

/** Credentials for one registry, as a spec gives them (the password from a Pulumi secret). */
export interface RegistryCredentials {
  /** Registry host[:port] (e.g. "registry.example.com", "127.0.0.1:5000"); "docker.io" for Docker Hub. */
  server: string;
  username: string;
  password: string;
}
