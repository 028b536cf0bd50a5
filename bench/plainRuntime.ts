// What the bench's minimal dynamic resource does: one plain container, created and started; no
// volume, no readiness, no generation. The baseline for the cost Pulumi itself adds per resource.
import type Dockerode from "dockerode";
import { dockerClient } from "../src/backend/docker/client";
import { resolveConnection } from "../src/backend/docker/connection";

export interface PlainInputs {
  name: string;
  image: string;
  memoryMiB: number;
}

export const PLAIN_LABEL = "io.reseat.bench-plain";

function engine(): Dockerode {
  return dockerClient(resolveConnection());
}

export async function createPlain(inputs: PlainInputs): Promise<{ id: string; outs: PlainInputs & { containerId: string } }> {
  const docker = engine();
  await docker
    .getContainer(inputs.name)
    .remove({ force: true })
    .catch(() => undefined);
  const created = await docker.createContainer({
    name: inputs.name,
    Image: inputs.image,
    Env: ["PORT=8080"],
    Labels: { [PLAIN_LABEL]: "true" },
    HostConfig: { NetworkMode: "none", Memory: inputs.memoryMiB * 1024 * 1024, RestartPolicy: { Name: "no" } },
  });
  await created.start();
  return { id: created.id, outs: { ...inputs, containerId: created.id } };
}

export async function deletePlain(id: string): Promise<void> {
  await engine()
    .getContainer(id)
    .remove({ force: true })
    .catch(() => undefined);
}
