import { crc32 } from "node:zlib";
import { JournalCorruptError } from "./errors";

/**
 * One journal record on disk:
 *
 *   magic "RSJ1" (4 bytes) | payload length (uint32 BE) | crc32 of length bytes + payload (uint32 BE) | payload
 *
 * The payload is UTF-8 JSON. Length + checksum make every record self-checking, so a record torn
 * by a crash mid-append is recognised and dropped on recovery. The magic lets recovery tell a torn
 * tail (nothing valid follows the damage) from damage in the middle (valid records follow it).
 */
const MAGIC = Buffer.from("RSJ1", "latin1");
const HEADER_BYTES = 12;
/** Sanity bound: a length beyond this is garbage from a torn header, not a real record. */
const MAX_PAYLOAD_BYTES = 256 * 1024 * 1024;

export type JournalRecord =
  | { seq: number; op: "put"; key: string; valueText: string }
  | { seq: number; op: "delete"; key: string };

export function encodeRecord(record: JournalRecord): Buffer {
  // The value is already JSON text; splice it in rather than parse + re-stringify it.
  const payloadText =
    record.op === "put"
      ? `{"seq":${record.seq},"op":"put","key":${JSON.stringify(record.key)},"value":${record.valueText}}`
      : `{"seq":${record.seq},"op":"delete","key":${JSON.stringify(record.key)}}`;
  const payload = Buffer.from(payloadText, "utf8");
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(payload.length, 4);
  header.writeUInt32BE(checksum(header.subarray(4, 8), payload), 8);
  return Buffer.concat([header, payload]);
}

function checksum(lengthBytes: Buffer, payload: Buffer): number {
  return crc32(payload, crc32(lengthBytes));
}

type DecodeResult = { record: JournalRecord; end: number } | { error: string };

/** Decode the record starting at `offset`, or say why there is no valid record there. */
function decodeAt(buf: Buffer, offset: number): DecodeResult {
  if (buf.length - offset < HEADER_BYTES) return { error: "incomplete header" };
  if (!buf.subarray(offset, offset + 4).equals(MAGIC)) return { error: "bad magic" };
  const length = buf.readUInt32BE(offset + 4);
  // Length 0 never occurs (payload is a JSON object); it is what a zero-filled tail looks like.
  if (length === 0 || length > MAX_PAYLOAD_BYTES) return { error: `implausible length ${length}` };
  const end = offset + HEADER_BYTES + length;
  if (end > buf.length) return { error: "incomplete payload" };
  const payload = buf.subarray(offset + HEADER_BYTES, end);
  if (checksum(buf.subarray(offset + 4, offset + 8), payload) !== buf.readUInt32BE(offset + 8)) {
    return { error: "checksum mismatch" };
  }
  const record = parsePayload(payload);
  return record ? { record, end } : { error: "checksum ok but payload is not a journal record" };
}

function parsePayload(payload: Buffer): JournalRecord | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString("utf8"));
  } catch {
    return null;
  }
  if (typeof parsed !== "object" || parsed === null) return null;
  const { seq, op, key, value } = parsed as Record<string, unknown>;
  if (!Number.isSafeInteger(seq) || (seq as number) < 1 || typeof key !== "string") return null;
  if (op === "put" && value !== undefined) return { seq: seq as number, op, key, valueText: JSON.stringify(value) };
  if (op === "delete") return { seq: seq as number, op, key };
  return null;
}

export interface JournalScan {
  records: JournalRecord[];
  /** Bytes up to the end of the last valid record; the file should be truncated to this. */
  validBytes: number;
  /** Bytes of torn tail after validBytes (0 for a clean journal). */
  tornBytes: number;
}

/**
 * Read every valid record. Damage that runs to the end of the file is a torn tail (a crash during an
 * unacknowledged append) and is reported for truncation. Damage followed by a valid record means
 * acknowledged data would be lost, so that throws JournalCorruptError instead of silently dropping it.
 */
export function scanJournal(buf: Buffer, filePath: string): JournalScan {
  const records: JournalRecord[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const decoded = decodeAt(buf, offset);
    if ("error" in decoded) {
      const resumesAt = findValidRecordAfter(buf, offset + 1);
      if (resumesAt !== -1) {
        throw new JournalCorruptError(
          filePath,
          offset,
          `${decoded.error}, yet a valid record follows at byte ${resumesAt} (not a torn tail)`,
        );
      }
      return { records, validBytes: offset, tornBytes: buf.length - offset };
    }
    records.push(decoded.record);
    offset = decoded.end;
  }
  return { records, validBytes: offset, tornBytes: 0 };
}

function findValidRecordAfter(buf: Buffer, from: number): number {
  for (let at = buf.indexOf(MAGIC, from); at !== -1; at = buf.indexOf(MAGIC, at + 1)) {
    if (!("error" in decodeAt(buf, at))) return at;
  }
  return -1;
}
