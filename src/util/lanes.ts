// Bounded parallelism: many independent reads against one engine, never more than a few in flight.

/**
 * `work` applied to every item, at most `lanes` at a time; the results in the items' order. The first
 * error is rethrown once every started item has ended (none is left running behind the caller's back).
 */
export async function mapInLanes<T, R>(items: readonly T[], lanes: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  if (!Number.isSafeInteger(lanes) || lanes < 1) throw new Error(`mapInLanes: lanes must be a whole number ≥ 1 (got ${lanes})`);
  const results = new Array<R>(items.length);
  const errors: unknown[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(lanes, items.length) }, async () => {
      while (next < items.length && !errors.length) {
        const index = next++;
        try {
          results[index] = await work(items[index]!, index);
        } catch (error) {
          errors.push(error);
        }
      }
    }),
  );
  if (errors.length) throw errors[0];
  return results;
}
