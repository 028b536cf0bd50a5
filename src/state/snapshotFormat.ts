import { LocalStateCorruptError } from "./errors";

/**
 * A snapshot is every key at one write seq, as JSON:
 *   {"format":"reseat-snapshot/1","seq":N,"entries":[["key",value],...]}
 * Entries are an array of pairs (not an object) so that any string, including "__proto__", is a safe key.
 * The same bytes are the local snapshot.json and the payload of a commit to the persistent store.
 */
const FORMAT = "reseat-snapshot/1";

export interface Snapshot {
  seq: number;
  /** key -> the value's JSON text */
  entries: Map<string, string>;
}

export function serializeSnapshot(seq: number, entries: Iterable<[string, string]>): Buffer {
  const parts: string[] = [];
  for (const [key, valueText] of entries) parts.push(`[${JSON.stringify(key)},${valueText}]`);
  return Buffer.from(`{"format":"${FORMAT}","seq":${seq},"entries":[${parts.join(",")}]}`, "utf8");
}

export function parseSnapshot(bytes: Uint8Array, source: string): Snapshot {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (error) {
    throw new LocalStateCorruptError(`snapshot ${source} is not valid JSON`, { cause: error });
  }
  const { format, seq, entries } = (parsed ?? {}) as Record<string, unknown>;
  if (format !== FORMAT) throw new LocalStateCorruptError(`snapshot ${source} has unknown format ${JSON.stringify(format)}`);
  if (!Number.isSafeInteger(seq) || (seq as number) < 0) throw new LocalStateCorruptError(`snapshot ${source} has an invalid seq`);
  if (!Array.isArray(entries)) throw new LocalStateCorruptError(`snapshot ${source} has no entries array`);
  const map = new Map<string, string>();
  for (const entry of entries as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== "string" || entry[1] === undefined) {
      throw new LocalStateCorruptError(`snapshot ${source} has a malformed entry`);
    }
    map.set(entry[0], JSON.stringify(entry[1]));
  }
  return { seq: seq as number, entries: map };
}
