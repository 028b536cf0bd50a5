// A container's log as text, read the way the docker CLI reads it (`docker logs`): a TTY container's log
// is the raw byte stream; any other container's log is Docker's multiplexed stdout/stderr frames, which
// the client library splits (docker-modem's demuxStream, as dockerode documents it). Both streams go to
// one sink, so that stdout and stderr lines keep the order the engine logged them in.
import { Readable, Writable } from "node:stream";
import { finished } from "node:stream/promises";

/** The part of docker-modem this needs (dockerode exposes it as `docker.modem`). */
export interface Demuxer {
  demuxStream(stream: NodeJS.ReadableStream, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): void;
}

/**
 * The text of a log body as the Engine's non-following GET /containers/{id}/logs returns it through
 * docker-modem: a Buffer (or a string, or the parsed JSON when the whole log happens to be JSON).
 * `tty`: the container's Config.Tty, which decides whether the body is framed (as in the docker CLI).
 */
export async function logText(modem: Demuxer, body: unknown, tty: boolean): Promise<string> {
  if (typeof body === "string") return body;
  if (!Buffer.isBuffer(body)) return JSON.stringify(body);
  if (tty) return body.toString("utf8");
  const source = Readable.from([body]);
  const chunks: Buffer[] = [];
  // Written synchronously as demuxStream writes: everything is here once the source has ended.
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  modem.demuxStream(source, sink, sink);
  await finished(source);
  return Buffer.concat(chunks).toString("utf8");
}
