// ssh:// engines, kept open. docker-modem's own ssh transport opens a new ssh connection, and starts a
// new `docker system dial-stdio` on the remote side, for every single Engine call: ~1 s a call here,
// and a replacement makes dozens of calls. This http.Agent keeps one ssh connection (ssh2, as
// docker-modem uses) and runs one dial-stdio per HTTP connection, which the agent keeps alive and
// reuses: a call then costs what the Engine takes to answer. It speaks no protocol of its own: ssh is
// ssh2's, HTTP is Node's, the Engine API is docker-modem's.
import * as http from "node:http";
import * as net from "node:net";
import type { Duplex } from "node:stream";
import { Client, ClientChannel, ConnectConfig } from "ssh2";

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  privateKey?: string;
  passphrase?: string;
  /** ssh agent socket (SSH_AUTH_SOCK), when no private key is given. */
  agent?: string;
  /** Budget for the ssh handshake, ms. */
  readyTimeoutMs: number;
}

/** The socket methods http.Agent and http.ClientRequest call besides a Duplex's. */
type SocketLike = Duplex & {
  timeout?: number;
  setKeepAlive: () => SocketLike;
  setNoDelay: () => SocketLike;
  setTimeout: (ms: number) => SocketLike;
  ref: () => SocketLike;
  unref: () => SocketLike;
};

/**
 * An idle connection is closed after this long: ssh2's keep-alive timer would otherwise hold the Node
 * process open (it is not unref'd), and an idle ssh connection is worth little.
 */
const IDLE_CLOSE_MS = 5000;

export class SshDialAgent extends http.Agent {
  private client?: Promise<Client>;
  private tcp?: net.Socket;
  /** Channels in use by a request (a free, kept-alive one does not hold the process open). */
  private readonly inUse = new Set<Duplex>();
  private idleTimer?: NodeJS.Timeout;

  constructor(private readonly target: SshTarget) {
    super({ keepAlive: true, maxFreeSockets: 4 });
  }

  override createConnection(_options: unknown, callback: (error: Error | null, socket?: Duplex) => void): undefined {
    this.dial().then(
      (channel) => callback(null, channel),
      (error: Error) => callback(error),
    );
    return undefined;
  }

  override destroy(): void {
    super.destroy();
    this.closeConnection();
  }

  /** Closes the ssh connection; its kept-alive channels are destroyed first, so no request picks one up. */
  private closeConnection(): void {
    for (const sockets of Object.values(this.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
    const client = this.client;
    this.client = undefined;
    this.tcp = undefined;
    void client?.then((c) => c.end()).catch(() => undefined);
  }

  /** A new `docker system dial-stdio` over the shared connection, shaped as the socket http.Agent expects. */
  private async dial(): Promise<Duplex> {
    clearTimeout(this.idleTimer); // a connection about to be used is not idle
    const client = await this.connected();
    const channel = await new Promise<ClientChannel>((resolve, reject) =>
      client.exec("docker system dial-stdio", (error, stream) => (error ? reject(error) : resolve(stream))),
    );
    let stderr = "";
    channel.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    channel.on("exit", (code: number | null) => {
      // The remote side could not reach its engine (or has no docker CLI): say so instead of "socket hang up".
      if (code)
        (channel as unknown as Duplex).destroy(
          new Error(
            `ssh://${this.target.username}@${this.target.host}:${this.target.port}: \`docker system dial-stdio\` exited with ${code}: ${stderr.trim()}`,
          ),
        );
    });
    const socketLike = channel as unknown as SocketLike;
    // What http.Agent and http.ClientRequest call on a socket; a channel has no TCP options of its own.
    socketLike.setKeepAlive = () => socketLike;
    socketLike.setNoDelay = () => socketLike;
    socketLike.setTimeout = (ms: number) => {
      socketLike.timeout = ms;
      return socketLike;
    };
    socketLike.ref = () => {
      this.inUse.add(socketLike);
      this.tcp?.ref();
      clearTimeout(this.idleTimer);
      return socketLike;
    };
    socketLike.unref = () => {
      this.inUse.delete(socketLike);
      if (!this.inUse.size) {
        this.tcp?.unref();
        clearTimeout(this.idleTimer);
        this.idleTimer = setTimeout(() => {
          if (!this.inUse.size) this.closeConnection();
        }, IDLE_CLOSE_MS);
        this.idleTimer.unref();
      }
      return socketLike;
    };
    channel.once("close", () => socketLike.unref());
    socketLike.ref();
    return socketLike;
  }

  private connected(): Promise<Client> {
    if (this.client) return this.client;
    const attempt = new Promise<Client>((resolve, reject) => {
      // No Nagle: every Engine call is a small request waiting for its answer.
      const tcp = net.connect({ host: this.target.host, port: this.target.port, noDelay: true });
      const client = new Client();
      const config: ConnectConfig = {
        sock: tcp,
        username: this.target.username,
        privateKey: this.target.privateKey,
        passphrase: this.target.passphrase,
        agent: this.target.privateKey ? undefined : this.target.agent,
        readyTimeout: this.target.readyTimeoutMs,
        // Notices a dead connection; the next call then connects afresh.
        keepaliveInterval: 10_000,
        keepaliveCountMax: 3,
      };
      let ready = false;
      client.on("ready", () => {
        ready = true;
        this.tcp = tcp;
        if (!this.inUse.size) tcp.unref();
        resolve(client);
      });
      client.on("error", (error: Error) => {
        if (this.client === attempt) this.client = undefined;
        if (!ready) reject(new Error(`cannot reach ssh://${this.target.username}@${this.target.host}:${this.target.port}: ${error.message}`));
      });
      client.on("close", () => {
        if (this.client === attempt) this.client = undefined;
        if (!ready) reject(new Error(`ssh://${this.target.username}@${this.target.host}:${this.target.port} closed the connection during the handshake`));
      });
      tcp.on("error", () => undefined); // reported through the client's "error"
      client.connect(config);
    });
    this.client = attempt;
    return attempt;
  }
}
