// One writer per state volume, whatever races: two PEs naming one volume — in one program, or in two
// stacks run at the same moment — never run two executables on it. One wins; the other fails naming
// the volume and its owner. Real Pulumi CLI, real Docker Engine, an independent observer polling it.
import { afterAll, describe, expect, it } from "vitest";
import { containersOf, demoSpec, docker, makeProject, reseatCli } from "../support/harness";

const PE = `it-sw-${process.pid}`;
const ROUNDS = 20;

/** Polls the engine for running containers mounting the volume; remembers the most seen at once. */
function observeVolume(volume: string): { stop: () => Promise<number> } {
  let max = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const running = await docker.listContainers({ filters: { volume: [volume] } }).catch(() => []);
      max = Math.max(max, running.length);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return max;
    },
  };
}

const made = new Set<string>();
async function removeAll(): Promise<void> {
  for (const peId of made)
    for (const c of await containersOf(peId))
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined);
  for (let i = 0; i < ROUNDS; i++) {
    await docker
      .getVolume(`${PE}-one-${i}`)
      .remove()
      .catch(() => undefined);
    await docker
      .getVolume(`${PE}-two-${i}`)
      .remove()
      .catch(() => undefined);
  }
}

describe("single writer per state volume", () => {
  afterAll(removeAll);

  it(`two PEs of one program naming one volume: refused before anything starts (${ROUNDS} rounds)`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const volume = `${PE}-one-${round}`;
      const [a, b] = [`${PE}-p${round}a`, `${PE}-p${round}b`];
      made.add(a).add(b);
      const project = makeProject("sw-program", [demoSpec(a, 18801, { volume: { name: volume } }), demoSpec(b, 18802, { volume: { name: volume } })]);
      const observer = observeVolume(volume);
      const result = await reseatCli(project, "up");
      expect(await observer.stop()).toBe(0);
      expect(result.code).not.toBe(0);
      expect(result.doc.error).toContain(`"${volume}" is already the state volume of processingElements[0]`);
      expect(await containersOf(a)).toHaveLength(0);
      expect(await containersOf(b)).toHaveLength(0);
    }
  });

  it(`two stacks naming one volume, run at the same moment: one wins, the other fails naming volume and owner (${ROUNDS} rounds)`, async () => {
    const winners: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const volume = `${PE}-two-${round}`;
      const [a, b] = [`${PE}-s${round}a`, `${PE}-s${round}b`];
      made.add(a).add(b);
      // Two projects (two folders, two state backends), as two teams' pipelines would be.
      // Ports of their own each round: nothing of an earlier round can answer a later round's readiness.
      const stackA = makeProject("sw-stack-a", [demoSpec(a, 18803 + 2 * round, { volume: { name: volume } })], "a");
      const stackB = makeProject("sw-stack-b", [demoSpec(b, 18804 + 2 * round, { volume: { name: volume } })], "b");
      const observer = observeVolume(volume);
      const [ra, rb] = await Promise.all([reseatCli(stackA, "up"), reseatCli(stackB, "up")]);
      expect(await observer.stop()).toBeLessThanOrEqual(1);
      const outcomes = [ra, rb].map((r) => r.code === 0 && r.doc.ok);
      expect(outcomes.filter(Boolean)).toHaveLength(1);
      const [winner, loser, loserPe] = outcomes[0] ? ["a", rb, b] : ["b", ra, a];
      const winnerPe = winner === "a" ? a : b;
      winners.push(winner);
      expect(loser.doc.error).toMatch(
        new RegExp(`state volume "${volume}" belongs to reseat/${winner}/${winnerPe}; refusing to bind it to reseat/${winner === "a" ? "b" : "a"}/${loserPe}`),
      );
      expect(await containersOf(loserPe)).toHaveLength(0);
      const running = await docker.listContainers({ filters: { volume: [volume] } });
      expect(running.map((c) => c.Labels["io.reseat.pe-id"])).toEqual([winnerPe]);
      // Free the machine for the next round: the winner's executable stops (its volume stays until afterAll).
      for (const c of await containersOf(winnerPe)) await docker.getContainer(c.Id).remove({ force: true });
    }
    // Both sides won sometimes or not: the race is real either way; report who won for the record.
    console.log(`single-writer race winners: ${winners.join("")}`);
  });
});
