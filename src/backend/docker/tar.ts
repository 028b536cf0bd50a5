// Minimal ustar writer/reader: just enough to put small files into (and read them out of) a volume
// through the Engine's /containers/{id}/archive endpoint, without starting a helper container.

const BLOCK = 512;

export interface TarEntry {
  /** Path inside the archive, relative, "/"-separated. Directories end with "/". */
  name: string;
  content?: Buffer;
  mode?: number;
}

function header(entry: TarEntry): Buffer {
  const isDir = entry.name.endsWith("/");
  const size = isDir ? 0 : (entry.content?.length ?? 0);
  if (Buffer.byteLength(entry.name) > 100) throw new Error(`tar: name longer than 100 bytes: ${entry.name}`);
  const block = Buffer.alloc(BLOCK, 0);
  block.write(entry.name, 0, 100, "utf8");
  block.write(octal(entry.mode ?? (isDir ? 0o755 : 0o644), 8), 100);
  block.write(octal(0, 8), 108); // uid
  block.write(octal(0, 8), 116); // gid
  block.write(octal(size, 12), 124);
  block.write(octal(Math.floor(Date.now() / 1000), 12), 136);
  block.write("        ", 148); // checksum placeholder: eight spaces while summing
  block.write(isDir ? "5" : "0", 156);
  block.write("ustar\u0000", 257);
  block.write("00", 263);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(octal(sum, 7) + "\u0000", 148, "latin1");
  return block;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\u0000";
}

export function packTar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    parts.push(header(entry));
    if (!entry.name.endsWith("/") && entry.content?.length) {
      parts.push(entry.content);
      const pad = (BLOCK - (entry.content.length % BLOCK)) % BLOCK;
      if (pad) parts.push(Buffer.alloc(pad, 0));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2, 0));
  return Buffer.concat(parts);
}

/** Reads regular files out of a tar; names as stored (GNU long names are not needed here). */
export function unpackTar(archive: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let offset = 0;
  while (offset + BLOCK <= archive.length) {
    const block = archive.subarray(offset, offset + BLOCK);
    if (block.every((byte) => byte === 0)) break;
    const name = cString(block.subarray(0, 100));
    const prefix = cString(block.subarray(345, 500));
    const size = parseInt(cString(block.subarray(124, 136)).trim() || "0", 8);
    const type = String.fromCharCode(block[156] ?? 0x30);
    offset += BLOCK;
    if (type === "0" || type === "\u0000") {
      files.set(prefix ? `${prefix}/${name}` : name, Buffer.from(archive.subarray(offset, offset + size)));
    }
    offset += Math.ceil(size / BLOCK) * BLOCK;
  }
  return files;
}

function cString(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end === -1 ? bytes.length : end).toString("utf8");
}
