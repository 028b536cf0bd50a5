// A processing-element group on Kubernetes: the same component and rollout as on Docker, each member
// with its own claim; a template change replaces the members one at a time, each on its claim's node.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Project, makeProject } from "../support/harness";
import { groupCli, groupOutputs, mustGroup, setGroups } from "../support/group";
import { k8sSessionSpec, loadImages, makeTestNamespace, nodeOfClaim, podsOfPe, useCluster } from "../support/kubernetesPe";

const NAMESPACE = `reseat-it-kgroup-${process.pid}`;
const GROUP = `kg${process.pid}`;

describe("a group on Kubernetes", () => {
  let project: Project;
  let cluster: Awaited<ReturnType<typeof makeTestNamespace>>;
  const group = (image: string) => {
    const { peId: _peId, ...template } = k8sSessionSpec("unused", NAMESPACE, cluster.storageClass, { image });
    return { name: GROUP, replicas: 2, template, rollout: { maxUnavailable: 1 } };
  };

  beforeAll(async () => {
    useCluster();
    await loadImages("reseat-session-workload:v1", "reseat-session-workload:v2");
    cluster = await makeTestNamespace(NAMESPACE);
    project = makeProject("k8s-group", []);
    setGroups(project, [group("reseat-session-workload:v1")]);
  });
  afterAll(async () => {
    if (project) await groupCli(project, "destroy").catch(() => undefined);
    await cluster?.remove();
  });

  it("up makes one claim and one pod per member; a template change rolls every member onto a new pod on its own claim's node", async () => {
    const first = groupOutputs(await mustGroup(project, "up"), GROUP);
    expect(first.members.map((m) => [m.peId, m.generation, m.volumeName])).toEqual([
      [`${GROUP}-0`, 1, `reseat-${GROUP}-0-state`],
      [`${GROUP}-1`, 1, `reseat-${GROUP}-1-state`],
    ]);
    const nodes = await Promise.all(first.members.map((m) => nodeOfClaim(NAMESPACE, m.volumeName)));

    setGroups(project, [group("reseat-session-workload:v2")]);
    const rolled = groupOutputs(await mustGroup(project, "up"), GROUP);
    expect(rolled.updatedReplicas).toBe(2);
    for (const [index, member] of rolled.members.entries()) {
      expect(member.generation).toBe(2);
      expect(member.imageRef).toBe("reseat-session-workload:v2");
      const pods = await podsOfPe(NAMESPACE, member.peId);
      expect(pods.map((p) => [p.metadata?.name, p.spec?.nodeName])).toEqual([[`reseat-${member.peId}-g2`, nodes[index]]]);
    }
    // Highest ordinal first, one at a time: member 1 was ready before member 0 was replaced.
    expect(Date.parse(rolled.members[1]!.readyAt)).toBeLessThanOrEqual(Date.parse(rolled.members[0]!.replacedAt));
  });
});
