import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { packTar, unpackTar } from "../../../src/backend/docker/tar";
import { demultiplex } from "../../../src/backend/docker/dockerBackend";
import { executableName, generationFromName } from "../../../src/backend/backend";

describe("tar", () => {
  it("round-trips files and directories", () => {
    const archive = packTar([{ name: ".reseat/" }, { name: ".reseat/meta.json", content: Buffer.from('{"generation":3}') }]);
    expect(archive.length % 512).toBe(0);
    expect(unpackTar(archive).get(".reseat/meta.json")?.toString()).toBe('{"generation":3}');
  });

  it("writes archives GNU tar reads", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-tar-"));
    const content = Buffer.alloc(1300, "x");
    fs.writeFileSync(path.join(dir, "a.tar"), packTar([{ name: "d/" }, { name: "d/f.txt", content }]));
    execFileSync("tar", ["-xf", "a.tar"], { cwd: dir });
    expect(fs.readFileSync(path.join(dir, "d", "f.txt"))).toEqual(content);
  });

  it("reads archives GNU tar writes", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "reseat-tar-"));
    fs.writeFileSync(path.join(dir, "meta.json"), "hello");
    const archive = execFileSync("tar", ["-cf", "-", "meta.json"], { cwd: dir });
    expect(unpackTar(archive).get("meta.json")?.toString()).toBe("hello");
  });
});

describe("engine helpers", () => {
  it("demultiplexes Docker's stdout/stderr frames", () => {
    const frame = (stream: number, text: string) => {
      const head = Buffer.alloc(8);
      head[0] = stream;
      head.writeUInt32BE(Buffer.byteLength(text), 4);
      return Buffer.concat([head, Buffer.from(text)]);
    };
    expect(demultiplex(Buffer.concat([frame(1, "out\n"), frame(2, "err\n")]))).toBe("out\nerr\n");
  });

  it("names carry the generation", () => {
    expect(executableName("orders-0", 12)).toBe("reseat-orders-0-g12");
    expect(generationFromName("/reseat-orders-0-g12")).toBe(12);
    expect(generationFromName("reseat-orders-0-next-abc")).toBe(0);
  });
});
