// Issue 23, item 5: two stacks declaring PEs on one claim at the same moment, on the local Kubernetes
// cluster, as two teams' pipelines would. Always exactly one winner, never two pods, and the loser is
// told which volume and whose it is (reseat's error), never @pulumi/kubernetes' "Server-Side Apply
// field conflict" on the claim. Real reseat CLI (Automation API on the real Pulumi CLI), the real
// @pulumi/kubernetes plugin, two project folders with their own state backends; pods observed through
// the API server's own watch.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeProject, reseatCli } from "../support/harness";
import { claimOf, k8sSessionSpec, loadImages, makeTestNamespace, observePods, podsOfPe, useCluster } from "../support/kubernetesPe";
import { LABELS } from "../../src/backend/backend";

const PE = `kcr-${process.pid}`;
const NAMESPACE = `reseat-it-kcr-${process.pid}`;
// Each round is two `up`s, the winner's to a ready pod: 3 rounds keep the file near 90 s on this machine.
const ROUNDS = 3;

describe("two stacks racing for one claim on Kubernetes", () => {
  let cluster: Awaited<ReturnType<typeof makeTestNamespace>>;

  beforeAll(async () => {
    useCluster();
    await loadImages("reseat-session-workload:v1");
    cluster = await makeTestNamespace(NAMESPACE);
  });
  afterAll(async () => {
    // The namespace goes with every claim and pod the rounds made (the class deletes their volumes).
    await cluster?.remove();
  });

  it(`exactly one winner and one pod per round; the loser's error names the volume and its owner (${ROUNDS} rounds)`, async () => {
    const winners: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const claim = `${PE}-r${round}`;
      const pes = { a: `${PE}-${round}a`, b: `${PE}-${round}b` };
      // Two PEs (their own peIds) naming one state volume, in two projects' stacks "a" and "b".
      const spec = (peId: string) =>
        k8sSessionSpec(peId, NAMESPACE, cluster.storageClass, {
          volume: { name: claim },
          readiness: { httpGet: { port: 8080, path: "/healthz" }, timeout: "60s" },
        });
      const stacks = { a: makeProject("kcr-a", [spec(pes.a)], "a"), b: makeProject("kcr-b", [spec(pes.b)], "b") };
      const observers = await Promise.all([observePods(NAMESPACE, pes.a), observePods(NAMESPACE, pes.b)]);
      const [ra, rb] = await Promise.all([reseatCli(stacks.a, "up"), reseatCli(stacks.b, "up")]);
      const seen = await Promise.all(observers.map((o) => o.stop()));

      const won = [ra, rb].map((r) => r.code === 0 && r.doc.ok);
      expect(won.filter(Boolean), `round ${round}: a: ${ra.doc.error ?? "ok"}\nb: ${rb.doc.error ?? "ok"}`).toHaveLength(1);
      const [winner, loserName, loser] = won[0] ? (["a", "b", rb] as const) : (["b", "a", ra] as const);
      winners.push(winner);
      // The loser learns which volume (the state claim, or the store claim beside it) and whose it is.
      expect(loser.doc.error).toMatch(
        new RegExp(`state volume "${claim}(-store)?" belongs to reseat/${winner}/${pes[winner]}; refusing to bind it to reseat/${loserName}/${pes[loserName]}`),
      );
      expect(loser.doc.error).not.toMatch(/Server-Side Apply|field conflict/i);
      // Never two pods: only the winner's ever ran, one pod, on the claim, which is the winner's.
      expect(seen.map((s) => s.podsSeenRunning.length)).toEqual(winner === "a" ? [1, 0] : [0, 1]);
      expect(await podsOfPe(NAMESPACE, pes[loserName])).toHaveLength(0);
      const [pod] = await podsOfPe(NAMESPACE, pes[winner]);
      expect(pod?.spec?.volumes?.find((v) => v.name === "state")?.persistentVolumeClaim?.claimName).toBe(claim);
      const recorded = await claimOf(NAMESPACE, claim);
      expect(recorded?.metadata?.labels?.[LABELS.peId]).toBe(pes[winner]);
      expect(recorded?.metadata?.annotations?.[LABELS.owner]).toBe(`reseat/${winner}/${pes[winner]}`);
    }
    // Who wins is the race's business; that the loser always hears why is the test's.
    expect(winners).toHaveLength(ROUNDS);
  });
});
