// Issue 19, item 4: `pulumi preview` (and `reseat preview`) changes nothing on any engine. Plain
// `pulumi` (the real CLI and Node.js language host) runs reseat's bundled programs in a project of the
// test's own. While a preview runs, the test follows the Docker Engine's event stream (every event, then
// a marker event of its own after the preview: events arrive in engine order, so once the marker is
// there, so is everything the preview caused), and on Kubernetes it watches the namespace's pods,
// claims, secrets, config maps and leases the same way (a marker object of each kind at the end).
// An image the engine lacks comes from a private registry on 127.0.0.1 (test/support/remoteEngines).
import * as fs from "node:fs";
import * as path from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABELS } from "../../src/backend/backend";
import { EngineEvent, followEvents } from "../../src/backend/docker/events";
import {
  ROOT,
  Project,
  cleanup,
  connection,
  containersOf,
  demoSpec,
  docker,
  httpJson,
  makeProject,
  orUndefined,
  reseatCli,
  setSpecs,
  volumeExists,
} from "../support/harness";
import { FleetOutputs, demoGroupSpec, setFleets } from "../support/group";
import { api, k8sSessionSpec, loadImages, makeTestNamespace, podsOfPe, useCluster } from "../support/kubernetesPe";
import { PrivateRegistry } from "../support/remoteEngines/privateRegistry";
import { Ran, freePort, mustRun, runIn, userEnv } from "../support/userProject";

const PID = process.pid;
const PE = `it-ro-${PID}`;
const NEW_PE = `it-ro-new-${PID}`;
const FLEET = `itro${PID % 100000}`;
const FLEET_MEMBERS = [`${FLEET}-0`, `${FLEET}-1`];
// Two ports per run, away from the fleet (18000+) and group (19000+) tests' and the ephemeral range.
const FLEET_PORT = 17000 + (PID % 100) * 10;
const STACK = "test";
const STAND_IN = /^resolved at up \(not on the engine; /;

// --- plain `pulumi` in a project of the test's own -------------------------------------------------

/** A harness project whose Pulumi.yaml names one of reseat's bundled programs (dist/stacks/…) as `main`. */
function plainProject(name: string, program: "index.js" | "groups.js"): Project {
  const project = makeProject(name, []);
  const main = path.relative(project.dir, path.join(ROOT, "dist", "stacks", program));
  fs.appendFileSync(path.join(project.dir, "Pulumi.yaml"), `main: ${main}\n`);
  return project;
}

/** The registry's credentials in a Docker config of the test's own (the engine's pulls, and its registry look-ups, read it). */
let dockerConfig: string | undefined;
const env = (project: Project, extra: NodeJS.ProcessEnv = {}) => userEnv(project.dir, { ...(dockerConfig ? { DOCKER_CONFIG: dockerConfig } : {}), ...extra });
const pulumi = (project: Project, ...args: string[]): Promise<Ran> =>
  runIn(project.dir, "pulumi", [...args, "--stack", project.stack, "--non-interactive"], env(project));
/** As on a remote engine: the provider reads volume files through the Engine API, never the host's file system. */
const pulumiEngineAccess = (project: Project, ...args: string[]): Promise<Ran> =>
  runIn(project.dir, "pulumi", [...args, "--stack", project.stack, "--non-interactive"], env(project, { RESEAT_VOLUME_ACCESS: "engine" }));
const mustPulumi = (project: Project, ...args: string[]): Promise<Ran> =>
  mustRun(project.dir, "pulumi", [...args, "--stack", project.stack, "--non-interactive"], env(project));
const initStack = (project: Project): Promise<Ran> => mustRun(project.dir, "pulumi", ["stack", "init", project.stack, "--non-interactive"], env(project));

interface PreviewStep {
  op: string;
  urn: string;
  newState?: { type: string; inputs?: Record<string, unknown> };
  oldState?: { type: string };
}

async function previewJson(project: Project): Promise<{ steps: PreviewStep[]; changeSummary: Record<string, number> }> {
  const ran = await mustPulumi(project, "preview", "--json");
  return JSON.parse(ran.stdout) as { steps: PreviewStep[]; changeSummary: Record<string, number> };
}

/** "<op> <type> <name>" of each step that is not "same". */
function changes(steps: PreviewStep[]): string[] {
  return steps.filter((s) => s.op !== "same").map((s) => `${s.op} ${s.newState?.type ?? s.oldState?.type} ${s.urn.split("::").at(-1)}`);
}

function executableStep(steps: PreviewStep[], peId: string): PreviewStep | undefined {
  return steps.find((s) => s.op === "replace" && s.urn.endsWith(`::${peId}-executable`));
}

// --- Docker: what the engine did while a preview ran ---------------------------------------------

let markers = 0;

/** Every engine event from now until stop(), which closes with a marker of its own (a volume created and removed). */
async function recordEngine(): Promise<{ stop: () => Promise<EngineEvent[]> }> {
  const marker = `reseat-it-ro-marker-${PID}-${++markers}`;
  const events: EngineEvent[] = [];
  let markerSeen: () => void = () => undefined;
  const subscription = await followEvents(docker, connection.address, {}, (event) => {
    if (event.Type === "volume" && event.Actor?.ID === marker) markerSeen();
    else events.push(event);
  });
  return {
    stop: async () => {
      const seen = new Promise<void>((resolve) => (markerSeen = resolve));
      await docker.createVolume({ Name: marker });
      await seen;
      subscription.close();
      await docker.getVolume(marker).remove();
      return events;
    },
  };
}

/**
 * The events that concern these PEs or images: containers (executables, leases) by label or name,
 * volumes by name, images by a name starting with one of `images` (a reference, or a repository of the
 * test's own). The engine is shared with other tests, whose events are left out.
 */
function eventsOf(events: EngineEvent[], peIds: string[], images: string[] = []): string[] {
  return events
    .filter((e) => {
      const attributes = e.Actor?.Attributes ?? {};
      const names = [e.Actor?.ID ?? "", attributes.name ?? "", attributes[LABELS.peId] ?? "", attributes[LABELS.volume] ?? ""];
      if (e.Type === "image") return images.some((image) => names.some((n) => n.startsWith(image)));
      return peIds.some((id) => names.some((n) => n.includes(id)));
    })
    .map((e) => `${e.Type} ${e.Action} ${e.Actor?.Attributes?.name ?? e.Actor?.ID}`);
}

async function imageOnEngine(ref: string): Promise<string | undefined> {
  return (await orUndefined(docker.getImage(ref).inspect()))?.Id;
}

/** A preview with the engine's events recorded around it: what Pulumi plans, and what the engine saw. */
async function recordedPreview<T>(preview: () => Promise<T>): Promise<{ result: T; events: EngineEvent[] }> {
  const recording = await recordEngine();
  const result = await preview();
  return { result, events: await recording.stop() };
}

/** The manifest digest the registry itself serves for a tag (asked directly, not through the engine). */
async function registryDigest(registry: PrivateRegistry, repository: string, tag: string): Promise<string> {
  const res = await fetch(`http://${registry.server}/v2/${repository}/manifests/${tag}`, {
    method: "HEAD",
    headers: {
      authorization: `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString("base64")}`,
      accept: [
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
      ].join(", "),
    },
  });
  const digest = res.headers.get("docker-content-digest");
  if (!res.ok || !digest) throw new Error(`the registry has no manifest ${repository}:${tag} (${res.status})`);
  return digest;
}

describe("preview is read-only on Docker", () => {
  let registry: PrivateRegistry;
  let project: Project;
  let port: number;
  /** Pushed to the registry; the engine has it under another name only (reseat-demo-workload:v2). */
  let remoteRef: string;
  let remoteFleetRef: string;
  let runningId: string;

  beforeAll(async () => {
    await cleanup([PE, NEW_PE]);
    registry = await PrivateRegistry.start();
    remoteRef = await registry.push("reseat-demo-workload:v2", `reseat/ro-${PID}:v2`);
    remoteFleetRef = await registry.push("reseat-demo-workload:v2", `reseat/ro-fleet-${PID}:v2`);
    dockerConfig = path.join(registry.dir, "reader-config");
    fs.mkdirSync(dockerConfig, { recursive: true, mode: 0o700 });
    const auth = Buffer.from(`${registry.username}:${registry.password}`).toString("base64");
    fs.writeFileSync(path.join(dockerConfig, "config.json"), JSON.stringify({ auths: { [registry.server]: { auth } } }), { mode: 0o600 });
    port = await freePort();
    project = plainProject("read-only-preview", "index.js");
    setSpecs(project, [demoSpec(PE, port)]);
    await initStack(project);
    await mustPulumi(project, "up", "--yes", "--skip-preview");
    runningId = (await containersOf(PE, false))[0]!.Id;
    await httpJson(port, "/append?line=before-previews", "POST");
  });
  afterAll(async () => {
    await cleanup([PE, NEW_PE, ...FLEET_MEMBERS]);
    for (const ref of [remoteRef, remoteFleetRef])
      if (ref)
        await docker
          .getImage(ref)
          .remove()
          .catch(() => undefined); // the tag only
    await registry?.stop();
    dockerConfig = undefined;
  });

  it("an image change and a new PE: pulumi preview and reseat preview plan them; the engine saw nothing of theirs", async () => {
    setSpecs(project, [demoSpec(PE, port, { image: "reseat-demo-workload:v2" }), demoSpec(NEW_PE, await freePort())]);
    const { result: preview, events } = await recordedPreview(() => previewJson(project));
    expect(changes(preview.steps).sort()).toEqual(
      [
        `create pulumi-nodejs:dynamic/reseat:Executable ${NEW_PE}-executable`,
        `create pulumi-nodejs:dynamic/reseat:StateVolume ${NEW_PE}-volume`,
        `create reseat:index:ProcessingElement ${NEW_PE}`,
        `replace pulumi-nodejs:dynamic/reseat:Executable ${PE}-executable`,
      ].sort(),
    );
    expect(eventsOf(events, [PE, NEW_PE], ["reseat-demo-workload:v2"])).toEqual([]);

    // The reseat CLI's preview (Automation API on the same CLI): the same plan, the same silence.
    const { result: cli, events: cliEvents } = await recordedPreview(() => reseatCli(project, "preview"));
    expect(cli.code, cli.doc.error ?? cli.stderr.slice(-2000)).toBe(0);
    expect(cli.doc.changeSummary).toMatchObject({ create: 3, replace: 1 });
    expect(eventsOf(cliEvents, [PE, NEW_PE], ["reseat-demo-workload:v2"])).toEqual([]);

    expect((await containersOf(PE)).map((c) => c.Id)).toEqual([runningId]);
    expect(await containersOf(NEW_PE)).toEqual([]);
    expect(await volumeExists(`reseat-${NEW_PE}-state`)).toBe(false);
  });

  it("an image not on the engine: preview shows the replacement, its image id resolved at up (the registry's digest), and pulls nothing", async () => {
    setSpecs(project, [demoSpec(PE, port, { image: remoteRef })]);
    expect(await imageOnEngine(remoteRef)).toBeUndefined();
    // `--json` for the plan, `--diff` for what a person sees.
    const { result: previews, events } = await recordedPreview(async () => ({
      json: await previewJson(project),
      shown: (await mustPulumi(project, "preview", "--diff")).stdout,
    }));
    const preview = previews.json;
    expect(changes(preview.steps)).toEqual([`replace pulumi-nodejs:dynamic/reseat:Executable ${PE}-executable`]);
    const digest = await registryDigest(registry, `reseat/ro-${PID}`, "v2");
    expect(executableStep(preview.steps, PE)?.newState?.inputs?.imageId).toBe(`resolved at up (not on the engine; registry manifest ${digest})`);
    expect(previews.shown).toContain(`resolved at up (not on the engine; registry manifest ${digest})`);
    console.log(`--- pulumi preview --diff of an image not on the engine ---\n${previews.shown}`);
    expect(eventsOf(events, [PE], [`${registry.server}/reseat/ro-${PID}`])).toEqual([]);
    expect(await imageOnEngine(remoteRef)).toBeUndefined();
    expect((await containersOf(PE)).map((c) => c.Id)).toEqual([runningId]);
  });

  it("up pulls that image, then replaces; state records the image's real id; the next preview is clean", async () => {
    await mustPulumi(project, "up", "--yes", "--skip-preview");
    const pulled = await imageOnEngine(remoteRef);
    expect(pulled).toBeDefined();
    const outputs = JSON.parse((await mustPulumi(project, "stack", "output", "--json")).stdout) as {
      processingElements: Record<string, { imageId: string; executableId: string; generation: number }>;
    };
    const pe = outputs.processingElements[PE]!;
    expect(pe.imageId).toBe(pulled);
    expect(pe.generation).toBe(2);
    expect((await docker.getContainer(pe.executableId).inspect()).Image).toBe(pulled);
    const state = await httpJson<{ version: string; lines: string[] }>(port, "/state");
    expect(state).toMatchObject({ version: "v2", lines: ["before-previews"] });
    runningId = pe.executableId;
    const { result: clean, events } = await recordedPreview(() => pulumi(project, "preview", "--expect-no-changes"));
    expect(clean.code, clean.stdout.slice(-3000)).toBe(0);
    expect(eventsOf(events, [PE], [`${registry.server}/reseat/ro-${PID}`])).toEqual([]);
  });

  it("a refresh in a preview, reading the volume through the Engine API (as on a remote engine), creates and removes nothing", async () => {
    const { result: refreshed, events } = await recordedPreview(() => pulumiEngineAccess(project, "preview", "--refresh", "--expect-no-changes"));
    expect(refreshed.code, refreshed.stdout.slice(-3000)).toBe(0);
    // Read through the running executable (GET …/archive: "archive-path", for which the engine mounts the
    // volume for a moment), never a volume-access container (which would be created and destroyed).
    const reads = /^(container archive-path|volume mount|volume unmount) /;
    expect(eventsOf(events, [PE]).filter((e) => !reads.test(e))).toEqual([]);
    expect((await containersOf(PE)).map((c) => c.Id)).toEqual([runningId]);
  });

  it("an image that exists nowhere: preview succeeds (resolved at up, with the registry's answer); up fails naming the image and the field, before anything stops", async () => {
    const nowhere = `${registry.server}/reseat/ro-${PID}:nowhere`;
    setSpecs(project, [demoSpec(PE, port, { image: nowhere })]);
    const { result: preview, events } = await recordedPreview(() => previewJson(project));
    expect(changes(preview.steps)).toEqual([`replace pulumi-nodejs:dynamic/reseat:Executable ${PE}-executable`]);
    const standIn = String(executableStep(preview.steps, PE)?.newState?.inputs?.imageId);
    expect(standIn).toMatch(STAND_IN);
    expect(standIn).toMatch(/the registry did not name its manifest: .*(manifest unknown|not found)/i);
    console.log(`--- the image id a preview shows for an image that exists nowhere ---\n${standIn}`);
    expect(eventsOf(events, [PE], [`${registry.server}/reseat/ro-${PID}`])).toEqual([]);

    const up = await pulumi(project, "up", "--yes", "--skip-preview");
    expect(up.code).not.toBe(0);
    expect(up.stdout + up.stderr).toContain(`reseat: processing element "${PE}": image: image "${nowhere}" is not on the engine`);
    expect(up.stdout + up.stderr).toContain("nothing was stopped or created");
    console.log(
      `--- pulumi up of an image that exists nowhere ---\n${(up.stdout + up.stderr)
        .split("\n")
        .filter((line) => line.includes("reseat: processing element"))
        .join("\n")}`,
    );
    expect((await containersOf(PE)).map((c) => c.Id)).toEqual([runningId]);
    expect((await httpJson<{ version: string }>(port, "/state")).version).toBe("v2");

    setSpecs(project, [demoSpec(PE, port, { image: remoteRef })]);
    const clean = await pulumi(project, "preview", "--expect-no-changes");
    expect(clean.code, clean.stdout.slice(-3000)).toBe(0);
  });

  it("a fleet: its preview lines for an image not on the engine pull nothing and touch no member; up pulls before any member stops", async () => {
    const fleetProject = plainProject("read-only-preview-fleet", "groups.js");
    setFleets(fleetProject, [demoGroupSpec(FLEET, FLEET_PORT, 2)]);
    await initStack(fleetProject);
    await mustPulumi(fleetProject, "up", "--yes", "--skip-preview");
    const before = await Promise.all(FLEET_MEMBERS.map(async (id) => (await containersOf(id, false)).map((c) => c.Id)));

    setFleets(fleetProject, [demoGroupSpec(FLEET, FLEET_PORT, 2, { image: remoteFleetRef })]);
    const { result: preview, events } = await recordedPreview(() => mustPulumi(fleetProject, "preview"));
    for (const [i, id] of [...FLEET_MEMBERS].reverse().entries()) {
      expect(preview.stdout).toContain(`replacing member ${id} (${i + 1} of 2): image reseat-demo-workload:v1 -> ${remoteFleetRef}`);
    }
    expect(eventsOf(events, FLEET_MEMBERS, [`${registry.server}/reseat/ro-fleet-${PID}`])).toEqual([]);
    expect(await imageOnEngine(remoteFleetRef)).toBeUndefined();
    expect(await Promise.all(FLEET_MEMBERS.map(async (id) => (await containersOf(id)).map((c) => c.Id)))).toEqual(before);

    await mustPulumi(fleetProject, "up", "--yes", "--skip-preview");
    const pulled = await imageOnEngine(remoteFleetRef);
    expect(pulled).toBeDefined();
    const fleet = (JSON.parse((await mustPulumi(fleetProject, "stack", "output", "--json")).stdout) as { fleets: Record<string, FleetOutputs> }).fleets[FLEET]!;
    expect(fleet.members.map((m) => [m.imageRef, m.generation])).toEqual(FLEET_MEMBERS.map(() => [remoteFleetRef, 2]));
    for (const m of fleet.members) expect((await docker.getContainer(m.executableId).inspect()).Image).toBe(pulled);
    const clean = await pulumi(fleetProject, "preview", "--expect-no-changes");
    expect(clean.code, clean.stdout.slice(-3000)).toBe(0);
    await mustPulumi(fleetProject, "destroy", "--yes", "--skip-preview");
  });
});

// --- Kubernetes: what the API server saw while a preview ran -----------------------------------

interface WatchedKind {
  kind: string;
  path: string;
  resourceVersion: () => Promise<string | undefined>;
  createMarker: (name: string) => Promise<unknown>;
}

/**
 * Watches pods, claims, secrets, config maps and leases of the namespace from now on; stop() creates
 * a marker object of each kind and returns every other event once each watch has delivered its marker.
 */
async function watchNamespace(namespace: string, storageClass: string): Promise<{ stop: () => Promise<string[]> }> {
  const { core, config } = api();
  const coordination = config.makeApiClient(k8s.CoordinationV1Api);
  const marker = `reseat-ro-marker-${++markers}`;
  const kinds: WatchedKind[] = [
    {
      kind: "pod",
      path: `/api/v1/namespaces/${namespace}/pods`,
      resourceVersion: async () => (await core.listNamespacedPod({ namespace })).metadata?.resourceVersion,
      // Gated: never scheduled, nothing pulled or run.
      createMarker: (name) =>
        core.createNamespacedPod({
          namespace,
          body: {
            metadata: { name },
            spec: { schedulingGates: [{ name: "reseat.test/marker" }], containers: [{ name: "marker", image: "reseat-session-workload:v1" }] },
          },
        }),
    },
    {
      kind: "claim",
      path: `/api/v1/namespaces/${namespace}/persistentvolumeclaims`,
      resourceVersion: async () => (await core.listNamespacedPersistentVolumeClaim({ namespace })).metadata?.resourceVersion,
      // WaitForFirstConsumer: never bound, no volume made.
      createMarker: (name) =>
        core.createNamespacedPersistentVolumeClaim({
          namespace,
          body: { metadata: { name }, spec: { accessModes: ["ReadWriteOnce"], storageClassName: storageClass, resources: { requests: { storage: "1Mi" } } } },
        }),
    },
    {
      kind: "secret",
      path: `/api/v1/namespaces/${namespace}/secrets`,
      resourceVersion: async () => (await core.listNamespacedSecret({ namespace })).metadata?.resourceVersion,
      createMarker: (name) => core.createNamespacedSecret({ namespace, body: { metadata: { name } } }),
    },
    {
      kind: "configmap",
      path: `/api/v1/namespaces/${namespace}/configmaps`,
      resourceVersion: async () => (await core.listNamespacedConfigMap({ namespace })).metadata?.resourceVersion,
      createMarker: (name) => core.createNamespacedConfigMap({ namespace, body: { metadata: { name } } }),
    },
    {
      kind: "lease",
      path: `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
      resourceVersion: async () => (await coordination.listNamespacedLease({ namespace })).metadata?.resourceVersion,
      createMarker: (name) => coordination.createNamespacedLease({ namespace, body: { metadata: { name }, spec: {} } }),
    },
  ];
  const events: string[] = [];
  const seen = new Map<string, () => void>();
  const markerSeen = new Map(kinds.map((k) => [k.kind, new Promise<void>((resolve) => seen.set(k.kind, resolve))]));
  const controllers: AbortController[] = [];
  const ended: string[] = [];
  for (const watched of kinds) {
    const resourceVersion = await watched.resourceVersion();
    controllers.push(
      await new k8s.Watch(config).watch(
        watched.path,
        { resourceVersion },
        (type: string, object: { metadata?: { name?: string } }) => {
          const name = object?.metadata?.name;
          if (name === marker && type === "ADDED") seen.get(watched.kind)!();
          else if (name !== marker) events.push(`${watched.kind} ${type} ${name}`);
        },
        (error: unknown) => {
          if (error) ended.push(`${watched.kind}: ${String(error)}`);
        },
      ),
    );
  }
  return {
    stop: async () => {
      for (const watched of kinds) await watched.createMarker(marker);
      await Promise.all(markerSeen.values());
      for (const controller of controllers) controller.abort();
      expect(ended).toEqual([]); // no watch ended early (it would have missed events)
      return events;
    },
  };
}

describe("preview is read-only on Kubernetes", () => {
  const K_PE = `kro-${PID}`;
  const K_NEW = `kro-new-${PID}`;
  const NAMESPACE = `reseat-it-kro-${PID}`;
  let cluster: Awaited<ReturnType<typeof makeTestNamespace>>;
  let project: Project;

  beforeAll(async () => {
    useCluster();
    await loadImages("reseat-session-workload:v1");
    cluster = await makeTestNamespace(NAMESPACE);
    project = plainProject("read-only-preview-k8s", "index.js");
    setSpecs(project, [k8sSessionSpec(K_PE, NAMESPACE, cluster.storageClass)]);
    await initStack(project);
    await mustPulumi(project, "up", "--yes", "--skip-preview");
  });
  afterAll(async () => {
    if (project) await pulumi(project, "destroy", "--yes", "--skip-preview").catch(() => undefined);
    await cluster?.remove();
  });

  it("an image change and a new PE: the preview plans them; the API server saw no write to pods, claims, secrets, config maps or leases", async () => {
    const podsBefore = (await podsOfPe(NAMESPACE, K_PE)).map((p) => p.metadata?.uid);
    setSpecs(project, [
      k8sSessionSpec(K_PE, NAMESPACE, cluster.storageClass, { image: "reseat-session-workload:v2" }),
      k8sSessionSpec(K_NEW, NAMESPACE, cluster.storageClass),
    ]);
    const watch = await watchNamespace(NAMESPACE, cluster.storageClass);
    const preview = await previewJson(project);
    const events = await watch.stop();
    expect(events).toEqual([]);
    const planned = changes(preview.steps);
    expect(planned).toContain(`replace pulumi-nodejs:dynamic/reseat:Executable ${K_PE}-executable`);
    expect(planned).toContain(`create pulumi-nodejs:dynamic/reseat:Executable ${K_NEW}-executable`);
    expect(planned).toContain(`create kubernetes:core/v1:PersistentVolumeClaim ${K_NEW}-claim`);
    // On Kubernetes the reference is the image's identity (nodes pull): nothing to resolve, nothing asked.
    expect(executableStep(preview.steps, K_PE)?.newState?.inputs?.imageId).toBe("reseat-session-workload:v2");
    expect((await podsOfPe(NAMESPACE, K_PE)).map((p) => p.metadata?.uid)).toEqual(podsBefore);
    expect(await podsOfPe(NAMESPACE, K_NEW)).toEqual([]);
  });
});
