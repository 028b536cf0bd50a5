import { crc32 } from "node:zlib";
import { LocalStateCorruptError } from "./errors";
import { readFileIfExists } from "./fsUtil";

/**
 * Reader (only) for the 0.1 format, so that volumes and commits it wrote can be migrated:
 *
 *   data/snapshot.json  {"format":"reseat-snapshot/1","seq":N,"entries":[[key,value],...]}  (also a 0.1 commit's bytes)
 *   data/journal.log    records "RSJ1" | uint32 BE length | uint32 BE crc32(length bytes + payload) | JSON payload
 *                       {seq, op: "put"|"delete", key, value?}
 *
 * A record torn by a crash (damage with nothing valid after it) was never acknowledged and is dropped;
 * damage followed by a valid record means acknowledged writes are unreadable, which is refused.
 */
const SNAPSHOT_FORMAT = "reseat-snapshot/1";
const MAGIC = Buffer.from("RSJ1", "latin1");
const HEADER_BYTES = 12;
const MAX_PAYLOAD_BYTES = 256 * 1024 * 1024;

export interface LegacyState {
  seq: number;
  /** key -> the value's JSON text, in the order 0.1 kept them (Map insertion order). */
  entries: Map<string, string>;
}

type JournalRecord = { seq: number; op: "put"; key: string; valueText: string } | { seq: number; op: "delete"; key: string };

/** The 0.1 state of a volume (snapshot + journal replayed), or null when it holds neither file. */
export async function readLegacyVolume(snapshotFile: string, journalFile: string): Promise<LegacyState | null> {
  const snapshotBytes = await readFileIfExists(snapshotFile);
  const journalBytes = await readFileIfExists(journalFile);
  if (snapshotBytes === null && journalBytes === null) return null;
  const state = snapshotBytes ? parseLegacySnapshot(snapshotBytes, snapshotFile) : { seq: 0, entries: new Map<string, string>() };
  const snapshotSeq = state.seq;
  let previous: number | null = null;
  for (const record of scanJournal(journalBytes ?? Buffer.alloc(0), journalFile)) {
    if (previous !== null && record.seq !== previous + 1)
      throw new LocalStateCorruptError(`journal ${journalFile} jumps from seq ${previous} to ${record.seq}`);
    previous = record.seq;
    if (record.seq <= snapshotSeq) continue; // already in the snapshot (a compaction crashed before truncating)
    if (record.seq !== state.seq + 1) {
      throw new LocalStateCorruptError(`journal ${journalFile} starts at seq ${record.seq} but the snapshot ends at seq ${state.seq}: writes are missing`);
    }
    if (record.op === "put") state.entries.set(record.key, record.valueText);
    else state.entries.delete(record.key);
    state.seq = record.seq;
  }
  return state;
}

export function parseLegacySnapshot(bytes: Uint8Array, source: string): LegacyState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (error) {
    throw new LocalStateCorruptError(`0.1 snapshot ${source} is not valid JSON`, { cause: error });
  }
  const { format, seq, entries } = (parsed ?? {}) as Record<string, unknown>;
  if (format !== SNAPSHOT_FORMAT) throw new LocalStateCorruptError(`0.1 snapshot ${source} has unknown format ${JSON.stringify(format)}`);
  if (!Number.isSafeInteger(seq) || (seq as number) < 0) throw new LocalStateCorruptError(`0.1 snapshot ${source} has an invalid seq`);
  if (!Array.isArray(entries)) throw new LocalStateCorruptError(`0.1 snapshot ${source} has no entries array`);
  const map = new Map<string, string>();
  for (const entry of entries as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== "string" || entry[1] === undefined) {
      throw new LocalStateCorruptError(`0.1 snapshot ${source} has a malformed entry`);
    }
    map.set(entry[0], JSON.stringify(entry[1]));
  }
  return { seq: seq as number, entries: map };
}

function scanJournal(buf: Buffer, file: string): JournalRecord[] {
  const records: JournalRecord[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const decoded = decodeAt(buf, offset);
    if ("error" in decoded) {
      for (let at = buf.indexOf(MAGIC, offset + 1); at !== -1; at = buf.indexOf(MAGIC, at + 1)) {
        if (!("error" in decodeAt(buf, at))) {
          throw new LocalStateCorruptError(`journal ${file} is corrupt at byte ${offset}: ${decoded.error}, yet a valid record follows at byte ${at}`);
        }
      }
      return records; // a torn tail: never acknowledged
    }
    records.push(decoded.record);
    offset = decoded.end;
  }
  return records;
}

function decodeAt(buf: Buffer, offset: number): { record: JournalRecord; end: number } | { error: string } {
  if (buf.length - offset < HEADER_BYTES) return { error: "incomplete header" };
  if (!buf.subarray(offset, offset + 4).equals(MAGIC)) return { error: "bad magic" };
  const length = buf.readUInt32BE(offset + 4);
  if (length === 0 || length > MAX_PAYLOAD_BYTES) return { error: `implausible length ${length}` };
  const end = offset + HEADER_BYTES + length;
  if (end > buf.length) return { error: "incomplete payload" };
  const payload = buf.subarray(offset + HEADER_BYTES, end);
  if (crc32(payload, crc32(buf.subarray(offset + 4, offset + 8))) !== buf.readUInt32BE(offset + 8)) return { error: "checksum mismatch" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString("utf8"));
  } catch {
    return { error: "payload is not JSON" };
  }
  const { seq, op, key, value } = (parsed ?? {}) as Record<string, unknown>;
  if (!Number.isSafeInteger(seq) || (seq as number) < 1 || typeof key !== "string") return { error: "payload is not a journal record" };
  if (op === "put" && value !== undefined) return { record: { seq: seq as number, op, key, valueText: JSON.stringify(value) }, end };
  if (op === "delete") return { record: { seq: seq as number, op, key }, end };
  return { error: "payload is not a journal record" };
}
