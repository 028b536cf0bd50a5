// An sshd owned by one test, on a loopback port, with its own host key, its own authorized_keys
// (one key made for the test) and its own config file: nothing of the machine's ssh setup is read or
// changed. Sessions get DOCKER_HOST set, so `docker system dial-stdio` — what docker-modem runs for
// ssh:// engines — reaches the engine the test chooses.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { Daemon, freePort, privateDir, removeTree, startDaemon, uniqueId } from "./daemon";

export interface SshServerOptions {
  /** DOCKER_HOST for the sessions (e.g. a test engine's unix:// address); default: the machine's engine. */
  dockerHost?: string;
}

export class SshServer {
  private constructor(
    readonly id: string,
    readonly dir: string,
    readonly port: number,
    /** The test key's private half (OpenSSH format): what a PE's spec carries as a Pulumi secret. */
    readonly privateKey: string,
    private readonly daemon: Daemon,
  ) {}

  static async start(options: SshServerOptions = {}): Promise<SshServer> {
    const id = uniqueId("sshd");
    const dir = privateDir(id);
    const file = (name: string) => path.join(dir, name);
    const keygen = (name: string, comment: string) =>
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file(name)], { stdio: "ignore" });
    keygen("host_ed25519_key", `reseat ${id} host`);
    keygen("client_key", `reseat ${id} client`);
    fs.copyFileSync(file("client_key.pub"), file("authorized_keys"));
    const port = await freePort();
    const config = [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${file("host_ed25519_key")}`,
      `PidFile ${file("sshd.pid")}`,
      `AuthorizedKeysFile ${file("authorized_keys")}`,
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      "UsePAM no",
      // The files live under the temp dir (world-writable): sshd's ownership walk would refuse them.
      "StrictModes no",
      "AllowTcpForwarding no",
      "X11Forwarding no",
      ...(options.dockerHost ? [`SetEnv DOCKER_HOST=${options.dockerHost}`] : []),
      "LogLevel VERBOSE",
    ].join("\n");
    fs.writeFileSync(file("sshd_config"), `${config}\n`);
    // sshd's privilege-separation directory; the Debian package creates it only when its service starts.
    fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    const daemon = await startDaemon({
      name: id,
      // sshd must be started by its absolute path (it re-executes itself per connection).
      command: "/usr/sbin/sshd",
      args: ["-D", "-e", "-f", file("sshd_config")],
      logFile: file("sshd.log"),
      ready: () => banner(port),
      readyTimeoutMs: 30_000,
      dirs: [dir],
    });
    return new SshServer(id, dir, port, fs.readFileSync(file("client_key"), "utf8"), daemon);
  }

  /** The engine address a PE's spec names: ssh://root@127.0.0.1:<port> (the test runs as root). */
  engineAddress(user = "root"): string {
    return `ssh://${user}@127.0.0.1:${this.port}`;
  }

  logTail(lines = 30): string {
    return this.daemon.tail(lines);
  }

  async stop(): Promise<void> {
    await this.daemon.stop();
    removeTree(this.dir);
  }
}

/** True once something on the port greets with an SSH banner. */
function banner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port, timeout: 2000 });
    socket.once("data", (data) => {
      socket.destroy();
      resolve(data.toString().startsWith("SSH-"));
    });
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
  });
}
