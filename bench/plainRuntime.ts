// What the bench's minimal dynamic resource does: one plain container, created and started; no
// volume, no readiness, no generation. The baseline for the cost Pulumi itself adds per resource.
import { DockerEngine } from "../src/backend/docker/engine";

export interface PlainInputs {
  name: string;
  image: string;
  memoryMiB: number;
}

export const PLAIN_LABEL = "io.reseat.bench-plain";

export async function createPlain(inputs: PlainInputs): Promise<{ id: string; outs: PlainInputs & { containerId: string } }> {
  const engine = new DockerEngine();
  await engine.request("DELETE", `/containers/${inputs.name}`, { query: { force: true } }).catch(() => undefined);
  const created = await engine.json<{ Id: string }>("POST", "/containers/create", {
    query: { name: inputs.name },
    body: {
      Image: inputs.image,
      Env: ["PORT=8080"],
      Labels: { [PLAIN_LABEL]: "true" },
      HostConfig: { NetworkMode: "none", Memory: inputs.memoryMiB * 1024 * 1024, RestartPolicy: { Name: "no" } },
    },
  });
  await engine.request("POST", `/containers/${created.Id}/start`);
  return { id: created.Id, outs: { ...inputs, containerId: created.Id } };
}

export async function deletePlain(id: string): Promise<void> {
  await new DockerEngine().request("DELETE", `/containers/${id}`, { query: { force: true } }).catch(() => undefined);
}
