// The processing-element spec: one zod schema that every flavour (Pulumi component, provider, CLI,
// Terraform) validates against before anything is created. Each rule carries the message a user
// sees, so an error names the field and what was expected.
import { DEFAULT_STORE_VOLUME, RESERVED_ENV_NAMES, isReservedEnvName } from "@reseat/state/contract";
import { z } from "zod";
import { parseDuration } from "./duration";

/** A PE id is also used in container, volume and label names, so it is a short DNS label. */
const PE_ID = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;
/** Docker's reference grammar, simplified: [registry[:port]/]path[:tag][@sha256:digest], or a bare image id. */
const IMAGE_REFERENCE =
  /^(?:sha256:[a-f0-9]{64}|(?:[a-zA-Z0-9.-]+(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?)$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const SIGNAL = /^SIG[A-Z0-9]+$/;
export const MAX_COMMIT_INTERVAL_MS = 24 * 60 * 60 * 1000;

const port = z
  .number({ error: "expected a port number" })
  .int("expected a whole number")
  .min(1, "expected a port from 1 to 65535")
  .max(65535, "expected a port from 1 to 65535");

const duration = z
  .union([z.string(), z.number()], { error: 'expected a duration such as "30s", "500ms", "2m" or a number of milliseconds' })
  .transform((value, ctx) => {
    const parsed = parseDuration(value);
    if (typeof parsed === "string") {
      ctx.addIssue({ code: "custom", message: parsed });
      return z.NEVER;
    }
    return parsed;
  });

const absolutePath = z
  .string({ error: "expected an absolute path" })
  .regex(/^\/(?:[^\0]*)$/, 'expected an absolute path such as "/state"')
  .refine((value) => !value.split("/").includes(".."), 'expected an absolute path without ".." segments')
  .refine((value) => value !== "/", "expected a directory below /, not / itself");

const portMapping = z.strictObject({
  container: port.describe("The port inside the container."),
  host: port.optional().describe("The host port it is published on (bridge network only); absent: an ephemeral port."),
  /** Host address the published port binds to; loopback by default so that nothing is exposed by accident. */
  hostIp: z
    .ipv4({ error: "expected an IPv4 address" })
    .default("127.0.0.1")
    .describe("The host address the published port binds to; loopback by default, so that nothing is exposed by accident."),
  protocol: z.enum(["tcp", "udp"], { error: 'expected "tcp" or "udp"' }).default("tcp").describe('"tcp" or "udp".'),
});

const readiness = z
  .strictObject({
    httpGet: z
      .strictObject({
        port: port.describe("The container port to request."),
        path: z.string().regex(/^\//, 'expected a path starting with "/"').default("/").describe("The path to request."),
      })
      .optional()
      .describe("Ready once an HTTP GET of this port and path succeeds."),
    logLine: z
      .string()
      .min(1, "expected a non-empty regular expression")
      .refine((value) => {
        try {
          new RegExp(value);
          return true;
        } catch {
          return false;
        }
      }, "expected a valid regular expression")
      .optional()
      .describe("Ready once a log line of the executable matches this regular expression."),
    timeout: duration
      .default(60_000)
      .refine((ms) => ms >= 1000, "expected a timeout of at least 1s")
      .describe('How long a new executable may take to become ready: "30s", "2m" or milliseconds; at least 1s. Default: 60s.'),
  })
  .refine((value) => (value.httpGet === undefined) !== (value.logLine === undefined), {
    message: "expected exactly one of httpGet or logLine",
  });

const userId = z
  .number({ error: "expected a numeric user or group id" })
  .int("expected a whole number")
  .min(0, "expected 0 or more")
  .max(2_147_483_647, "expected at most 2147483647");
const keep = z
  .number({ error: "expected a number of commits" })
  .int("expected a whole number")
  .min(1, "expected to keep at least 1 commit")
  .max(1000, "expected at most 1000")
  .default(5);
const SQL_IDENTIFIER = /^[a-z_][a-z0-9_]{0,46}$/; // room for the store's _chunks/_fences suffixes
/**
 * When the volume is empty and the store lists commits of which none verifies, the workload refuses to
 * start (status: restore-failed) rather than start empty over data it could not read; true allows it.
 */
const allowEmptyStart = z.boolean({ error: "expected true or false" }).default(false);
const KEEP_DESCRIPTION = "How many of the newest commits the store keeps (1 to 1000).";
const ALLOW_EMPTY_START_DESCRIPTION =
  "Start empty when the volume is empty and none of the store's commits verifies; by default the workload refuses to start (restore-failed).";
/** The description of a field naming a secret stack config key instead of giving the secret. */
const CONFIG_KEY_DESCRIPTION = (what: string) => `Or the name of a secret stack config key holding ${what} (\`pulumi config set --secret reseat:<key>\`).`;

/** A secret may arrive as a plain string or as a Pulumi Output (kept secret end to end). */
const secretValue = z.custom<string | { apply: unknown }>(
  (value) =>
    (typeof value === "string" && value.length > 0) ||
    (typeof value === "object" && value !== null && typeof (value as { apply?: unknown }).apply === "function"),
  { error: "expected a non-empty string or a Pulumi secret Output" },
);

const persistentStore = z
  .discriminatedUnion(
    "kind",
    [
      z
        .strictObject({
          kind: z.literal("directory"),
          /** A Docker named volume holding the store (shared by PEs; one sub-folder each). */
          volume: z
            .string()
            .regex(VOLUME_NAME, "expected a Docker volume name")
            .optional()
            .describe(`A Docker named volume holding the store, shared by PEs (one sub-folder each). Default: "${DEFAULT_STORE_VOLUME}".`),
          /** Or a host directory, bind-mounted. */
          hostPath: absolutePath.optional().describe("Or a host directory, bind-mounted (an absolute path)."),
          keep: keep.describe(KEEP_DESCRIPTION),
          allowEmptyStart: allowEmptyStart.describe(ALLOW_EMPTY_START_DESCRIPTION),
        })
        .refine((store) => !(store.volume && store.hostPath), { message: "expected either volume or hostPath, not both" })
        .describe("commits go to a directory: a Docker named volume or a host directory"),
      z
        .strictObject({
          kind: z.literal("postgres"),
          host: z.string().min(1, "expected a host name or address").default("127.0.0.1").describe("The PostgreSQL server's host name or address."),
          port: port.default(5432).describe("The PostgreSQL server's port."),
          database: z.string({ error: "expected a database name" }).min(1, "expected a database name").describe("The database holding the commits."),
          user: z.string({ error: "expected a user name" }).min(1, "expected a user name").describe("The database user."),
          /** The password itself (wrapped as a Pulumi secret), for programs. */
          password: secretValue.optional().describe("The user's password (a secret). Give it or passwordSecret."),
          /** Or the name of a secret stack config key holding it (`pulumi config set --secret`). */
          passwordSecret: z
            .string()
            .regex(/^[A-Za-z][A-Za-z0-9_.-]*$/, "expected a config key name")
            .optional()
            .describe(CONFIG_KEY_DESCRIPTION("the password")),
          table: z
            .string()
            .regex(SQL_IDENTIFIER, "expected a lowercase SQL identifier")
            .default("reseat_commits")
            .describe("The table of commits (a lowercase SQL identifier)."),
          keep: keep.describe(KEEP_DESCRIPTION),
          allowEmptyStart: allowEmptyStart.describe(ALLOW_EMPTY_START_DESCRIPTION),
        })
        .refine((store) => (store.password === undefined) !== (store.passwordSecret === undefined), {
          message: "expected exactly one of password or passwordSecret",
        })
        .describe("commits go to a PostgreSQL table"),
      z.strictObject({ kind: z.literal("none") }).describe("no persistent store: the state lives on the state volume only"),
    ],
    { error: 'expected kind "directory", "postgres" or "none"' },
  )
  .default({ kind: "directory", keep: 5, allowEmptyStart: false });

const configKey = z.string({ error: "expected a config key name" }).regex(/^[A-Za-z][A-Za-z0-9_.-]*$/, "expected a config key name");
const pem = (what: string) =>
  z.string({ error: `expected PEM contents (${what})` }).regex(/-----BEGIN [A-Z0-9 ]+-----/, `expected PEM contents (${what}: -----BEGIN …)`);

/**
 * The Docker Engine a PE lives on, and the secrets to reach it and its registry. Each secret is given
 * either as a value (programs: a Pulumi secret Output) or as the name of a secret stack config key
 * (`pulumi config set --secret reseat:<key>`); it travels as a Pulumi secret, never in plain text.
 */
const dockerEngine = z
  .strictObject({
    host: z
      .string({ error: "expected an engine address" })
      .regex(/^(unix:\/\/\/.+|tcp:\/\/[^\s/]+:\d+|ssh:\/\/[^\s]+)$/, 'expected "unix:///path", "tcp://host:port" or "ssh://user@host[:port]"')
      .refine(
        (host) => !/^ssh:\/\/[^@/]*:[^@/]*@/.test(host),
        "expected no password in the address (it would be stored in plain text): use ssh.privateKeySecret",
      )
      .optional()
      .describe('The engine\'s address: "unix:///path", "tcp://host:port" or "ssh://user@host[:port]". Default: DOCKER_HOST, else the local socket.'),
    /** Mutual TLS for tcp://: the CA and client certificate (PEM), the client key as a secret. */
    tls: z
      .strictObject({
        ca: pem("the CA certificate").describe("The CA certificate (PEM contents)."),
        cert: pem("the client certificate").describe("The client certificate (PEM contents)."),
        key: secretValue.optional().describe("The client key (PEM contents, a secret). Give it or keySecret."),
        keySecret: configKey.optional().describe(CONFIG_KEY_DESCRIPTION("the client key")),
      })
      .refine((tls) => (tls.key === undefined) !== (tls.keySecret === undefined), { message: "expected exactly one of key or keySecret" })
      .optional()
      .describe("Mutual TLS for a tcp:// engine."),
    /** ssh:// authentication: a private key as a secret, or (when absent) the ssh agent. */
    ssh: z
      .strictObject({
        privateKey: secretValue.optional().describe("The private key (a secret). Give it, privateKeySecret, or neither (the ssh agent)."),
        privateKeySecret: configKey.optional().describe(CONFIG_KEY_DESCRIPTION("the private key")),
      })
      .refine((ssh) => !(ssh.privateKey !== undefined && ssh.privateKeySecret !== undefined), {
        message: "expected at most one of privateKey or privateKeySecret",
      })
      .optional()
      .describe("ssh:// authentication: a private key, or (when absent) the ssh agent."),
    /** Credentials for the registry of the PE's image (sent to that registry only). */
    registryAuth: z
      .strictObject({
        server: z
          .string({ error: "expected a registry host[:port]" })
          .regex(/^[A-Za-z0-9.-]+(?::\d+)?$/, 'expected a registry host[:port] such as "registry.example.com" or "127.0.0.1:5000"')
          .describe('The registry\'s host[:port], such as "registry.example.com".'),
        username: z.string({ error: "expected a user name" }).min(1, "expected a user name").describe("The registry user."),
        password: secretValue.optional().describe("The registry password (a secret). Give it or passwordSecret."),
        passwordSecret: configKey.optional().describe(CONFIG_KEY_DESCRIPTION("the registry password")),
      })
      .refine((auth) => (auth.password === undefined) !== (auth.passwordSecret === undefined), {
        message: "expected exactly one of password or passwordSecret",
      })
      .optional()
      .describe("Credentials for the registry of the PE's image, sent to that registry only. Default: the user's ~/.docker/config.json."),
  })
  .superRefine((docker, ctx) => {
    const scheme = /^([a-z]+):\/\//.exec(docker.host ?? "")?.[1];
    if (docker.tls && scheme !== "tcp")
      ctx.addIssue({ code: "custom", path: ["tls"], message: 'expected docker.host to be a "tcp://host:port" address when tls is given' });
    if (docker.ssh && scheme !== "ssh")
      ctx.addIssue({ code: "custom", path: ["ssh"], message: 'expected docker.host to be an "ssh://user@host[:port]" address when ssh is given' });
  });

/** A Kubernetes object name that also fits in a label value and leaves room for reseat's suffixes. */
const K8S_NAME = /^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$/;
/** Kubernetes resource quantities for storage: "512Mi", "1Gi", "10G", or plain bytes. */
const STORAGE_QUANTITY = /^[1-9][0-9]*(?:Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$/;
/** Label keys: optional DNS-subdomain prefix and "/", then a name of at most 63 characters. */
const LABEL_KEY = /^(?:[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

const storageSize = z
  .string({ error: 'expected a storage size such as "1Gi"' })
  .regex(STORAGE_QUANTITY, 'expected a storage size such as "512Mi", "1Gi" or "10G"');
const storageClassName = z
  .string({ error: "expected a StorageClass name" })
  .regex(/^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$/, "expected a StorageClass name (lowercase letters, digits, '-', '.')");

const kubernetesSection = z.strictObject({
  /** The namespace holding the PE's claim, pods, lease and records. */
  namespace: z
    .string({ error: "expected a namespace name" })
    .regex(/^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/, "expected a namespace name (a lowercase DNS label, at most 63 characters)")
    .default("default")
    .describe("The namespace holding the PE's claim, pods, lease and records."),
  /** A context of the ambient kubeconfig (KUBECONFIG); default: its current context. */
  context: z
    .string({ error: "expected a kubeconfig context name" })
    .min(1, "expected a kubeconfig context name")
    .optional()
    .describe("A context of the ambient kubeconfig (KUBECONFIG). Default: its current context."),
  /** The state claim's StorageClass (default: the cluster's default class). */
  storageClassName: storageClassName.optional().describe("The state claim's StorageClass. Default: the cluster's default class."),
  /** The state claim's requested size. */
  size: storageSize.default("1Gi").describe('The state claim\'s requested size, such as "1Gi".'),
  /** Extra node labels every pod of the PE requires (the claim's node is required anyway). */
  nodeSelector: z
    .record(
      z.string().regex(LABEL_KEY, 'expected label keys such as "disktype" or "example.com/zone"'),
      z.string({ error: "expected a label value" }).regex(LABEL_VALUE, "expected a label value (at most 63 letters, digits, '-', '_', '.')"),
      {
        error: "expected a map of node label keys to values",
      },
    )
    .optional()
    .describe("Extra node labels every pod of the PE requires (the claim's node is required anyway)."),
  /**
   * Where the workload publishes its commit status (the state library's status document, as JSON):
   * read by reseat through the API server's pod proxy, never by exec. Without it the commit outputs are null.
   */
  status: z
    .strictObject({
      port: port.describe("The container port serving the status."),
      path: z.string().regex(/^\//, 'expected a path starting with "/"').default("/status").describe("The path serving the status."),
    })
    .optional()
    .describe("Where the workload publishes its commit status (JSON), read through the API server's pod proxy. Without it the commit outputs are null."),
  /** The directory store's own claim (one per PE), when persistentStore.kind is "directory". */
  store: z
    .strictObject({
      storageClassName: storageClassName.optional().describe("The store claim's StorageClass. Default: the cluster's default class."),
      size: storageSize.default("1Gi").describe("The store claim's requested size."),
    })
    .optional()
    .describe('The directory store\'s own claim (one per PE), when persistentStore.kind is "directory".'),
});

export const processingElementSchema = z
  .strictObject({
    peId: z
      .string({ error: "expected a string" })
      .regex(PE_ID, "expected a lowercase DNS label (a-z, 0-9, '-'), 1-40 characters, not starting or ending with '-'")
      .describe("The PE's identity for its whole life: a lowercase DNS label, 1-40 characters. Default: the resource name."),
    image: z
      .string({ error: "expected a Docker image reference" })
      .regex(IMAGE_REFERENCE, 'expected a Docker image reference such as "repo/name:tag" (lowercase path, optional tag or digest)')
      .describe('The image: "repo/name:tag", a "@sha256:" digest, or an image id; pulled if absent.'),
    command: z
      .array(z.string().min(1, "expected a non-empty argument"), { error: "expected a list of strings" })
      .min(1, "expected at least one argument")
      .optional()
      .describe("The command and its arguments. Default: the image's."),
    env: z
      .record(
        z.string().regex(ENV_NAME, "expected environment variable names of letters, digits and '_', not starting with a digit"),
        z.string({ error: "expected a string value" }),
        {
          error: "expected a map of environment variable names to strings",
        },
      )
      .superRefine((env, ctx) => {
        // reseat sets these for every workload (the contract's env): a spec's value would be silently overridden.
        for (const name of Object.keys(env).filter(isReservedEnvName)) {
          ctx.addIssue({
            code: "custom",
            path: [name],
            message: `reserved: reseat sets ${name} for every workload (${RESERVED_ENV_NAMES.join(", ")} are reseat's); choose another name`,
          });
        }
      })
      .default({})
      .describe("Environment variables of the workload. Names reseat sets (RESEAT_PE_ID, RESEAT_STATE_DIR, …) are refused."),
    ports: z
      .array(portMapping, { error: "expected a list of port mappings" })
      .default([])
      .superRefine((ports, ctx) => {
        // Two mappings of one host port fail only when the container starts: refuse them up front.
        const seen = new Map<string, number>();
        ports.forEach((p, index) => {
          if (p.host === undefined) return;
          const key = `${p.hostIp}:${p.host}/${p.protocol}`;
          const first = seen.get(key);
          if (first !== undefined)
            ctx.addIssue({ code: "custom", path: [index, "host"], message: `expected a host port used once; ${key} is already mapped by ports.${first}` });
          else seen.set(key, index);
        });
      })
      .describe("Ports to publish (with network bridge); a host port once per program."),
    network: z
      .enum(["bridge", "host", "none"], { error: 'expected "bridge", "host" or "none"' })
      .default("bridge")
      .describe('The container\'s network: "bridge", "host" or "none" (Docker only).'),
    resources: z
      .strictObject({
        memoryMiB: z
          .number({ error: "expected a number of MiB" })
          .int("expected a whole number of MiB")
          .min(6, "expected at least 6 MiB (Docker's minimum)")
          .optional()
          .describe("The memory limit in MiB (at least 6)."),
        cpus: z
          .number({ error: "expected a number of CPUs" })
          .positive("expected a positive number of CPUs")
          .max(256, "expected at most 256 CPUs")
          .optional()
          .describe("The CPU limit, in CPUs (may be fractional)."),
      })
      .default({})
      .describe("Resource limits of the executable."),
    volume: z
      .strictObject({
        name: z
          .string()
          .regex(VOLUME_NAME, "expected a Docker volume name: letters, digits, '_', '.', '-', starting with a letter or digit")
          .optional()
          .describe('The state volume\'s name; one PE per volume, ever. Default: "reseat-<peId>-state".'),
        driver: z.string().min(1, "expected a volume driver name").default("local").describe("The volume driver."),
        mountPath: absolutePath.default("/state").describe("Where the volume is mounted in the container (an absolute path)."),
        /** Kept on `pulumi destroy` unless explicitly set to false. */
        retainOnDestroy: z.boolean({ error: "expected true or false" }).default(true).describe("Keep the volume and its data on destroy; false deletes it."),
      })
      .default({ driver: "local", mountPath: "/state", retainOnDestroy: true })
      .describe("The PE's state volume, kept across replacements."),
    commitInterval: duration
      .default(30_000)
      .refine((ms) => ms >= 100, "expected a commit interval of at least 100ms")
      // Node timers overflow past 2^31-1 ms (~24.8 days) and then fire at once, in a loop.
      .refine((ms) => ms <= MAX_COMMIT_INTERVAL_MS, "expected a commit interval of at most 24h")
      .describe('How often the workload commits its state: "500ms", "30s", "2m" or milliseconds; 100ms to 24h. Default: 30s.'),
    stop: z
      .strictObject({
        signal: z
          .string()
          .regex(SIGNAL, 'expected a signal name such as "SIGTERM"')
          .default("SIGTERM")
          .describe("The signal sent first when the executable is stopped."),
        graceSeconds: z
          .number({ error: "expected a number of seconds" })
          .int("expected a whole number of seconds")
          .min(0, "expected 0 or more seconds")
          .max(3600, "expected at most 3600 seconds")
          .default(10)
          .describe("Seconds to wait after the signal before SIGKILL (0 to 3600)."),
      })
      .default({ signal: "SIGTERM", graceSeconds: 10 })
      .describe("How the executable is stopped."),
    readiness: readiness.optional().describe("When a new executable counts as ready: httpGet or logLine, within timeout. Default: as soon as it runs."),
    /** How `reseat watch` paces re-creation after repeated failures (the first is immediate). */
    failureBackoff: z
      .strictObject({
        initial: duration.default(1000).describe("The first delay after repeated failures. Default: 1s."),
        max: duration.default(60_000).describe("The longest delay (at least initial). Default: 1m."),
        resetAfter: duration.default(120_000).describe("Running this long resets the delay to initial. Default: 2m."),
      })
      .refine((b) => b.max >= b.initial, { message: "expected max to be at least initial" })
      .default({ initial: 1000, max: 60_000, resetAfter: 120_000 })
      .describe("How `reseat watch` paces re-creation after repeated failures (the first is immediate); durations as strings or milliseconds."),
    /** Where commits go; the state volume itself is never the store. Default: the `reseat-store` volume. */
    persistentStore: persistentStore.describe(
      `Where commits go; the state volume itself is never the store. Default: a directory store on the "${DEFAULT_STORE_VOLUME}" volume.`,
    ),
    /** A replacement whose new executable does not become ready: serve the previous spec again, or leave the PE stopped. */
    onFailedReplacement: z
      .enum(["revert", "leave-stopped"], { error: 'expected "revert" or "leave-stopped"' })
      .default("revert")
      .describe('A replacement whose new executable does not become ready: "revert" serves the previous spec again, "leave-stopped" leaves the PE stopped.'),
    /**
     * How a replacement hands the state volume over: "standby" starts the next executable before the old one
     * stops, parked on the volume's writer lock (a workload using the state library), and stops the old one
     * only once it parked; "staged" starts it after the old one stopped.
     */
    handover: z
      .enum(["standby", "staged"], { error: 'expected "standby" or "staged"' })
      .default("staged")
      .describe(
        'How a replacement hands the state volume over: "staged" starts the next executable after the old one stopped; "standby" starts it before, parked on the volume\'s writer lock.',
      ),
    /**
     * The workload's user and group (numeric, as in Kubernetes' securityContext): the container runs as them and
     * everything reseat writes into the volume belongs to them. Default: the image's USER (root when it has none).
     */
    runAsUser: userId.optional().describe("The numeric user the workload runs as; what reseat writes into the volume is theirs. Default: the image's USER."),
    /** Default: runAsUser. */
    runAsGroup: userId.optional().describe("The numeric group the workload runs as (needs runAsUser). Default: runAsUser."),

    /** Run the PE on Kubernetes instead of Docker: a claim (PVC) and a pod per generation. See docs/kubernetes.md. */
    kubernetes: kubernetesSection.optional().describe("Run the PE on Kubernetes instead of Docker: a claim (PVC) and a pod per generation."),
    /** The Docker Engine the PE lives on (default: DOCKER_HOST, else the local socket). */
    docker: dockerEngine.optional().describe("The Docker Engine the PE lives on, and the secrets to reach it and its registry."),
  })
  .superRefine((spec, ctx) => {
    if (spec.runAsGroup !== undefined && spec.runAsUser === undefined) {
      ctx.addIssue({ code: "custom", path: ["runAsGroup"], message: "expected runAsUser too (a group alone does not choose the user)" });
    }
  });

/** What users write (durations as strings, defaults omitted). */
export type ProcessingElementInput = z.input<typeof processingElementSchema>;
/** The validated, defaulted spec. `commitInterval` and `readiness.timeout` are milliseconds. */
export type ProcessingElementSpec = z.output<typeof processingElementSchema>;

export class SpecError extends Error {
  constructor(
    readonly subject: string,
    readonly problems: { field: string; expected: string }[],
  ) {
    super(`reseat: invalid processing element ${subject}:\n` + problems.map((problem) => `  - ${problem.field}: ${problem.expected}`).join("\n"));
    this.name = "SpecError";
    // About the user's input, not the code: its "stack" is the message. Pulumi prints the stack of an
    // error raised once the program's top level has run (a value that resolved invalid during `up`);
    // this way that, too, is the one message naming every bad field.
    this.stack = this.message;
  }

  /**
   * Pulumi's brand for a RunError (@pulumi/pulumi's RunError.isInstance reads it, across SDK copies):
   * a program that throws one — at construction, or when an Output resolves — prints just the message
   * above ("error: reseat: invalid processing element …"), not "failed with an unhandled exception"
   * and a stack. Set here, not by subclassing, because the spec does not depend on Pulumi.
   */
  readonly __pulumiRunError = true;
}

/** Validates a PE spec; throws SpecError listing every bad field (path and expectation). */
export function parseProcessingElement(input: unknown, subject = "spec"): ProcessingElementSpec {
  const result = processingElementSchema.safeParse(input);
  const problems = [...(result.success ? [] : result.error.issues.map((issue) => problemOf(issue, input, "spec"))), ...engineProblems(input)];
  if (result.success && !problems.length) return result.data;
  throw new SpecError(subject, problems);
}

/**
 * Fields that only one engine understands, judged on what the user wrote (defaults are engine-neutral):
 * under `kubernetes`, Docker's network modes, host ports, log-line readiness, volume drivers and Docker
 * store volumes are refused, and Docker-style names must also be Kubernetes object names.
 */
export function engineProblems(input: unknown): { field: string; expected: string }[] {
  if (!isRecord(input) || input.kubernetes === undefined) return [];
  const problems: { field: string; expected: string }[] = [];
  const dockerOnly = (field: string, instead: string) => problems.push({ field, expected: `a Docker-only field, not allowed with kubernetes (${instead})` });
  if (input.docker !== undefined)
    problems.push({ field: "docker", expected: "not allowed with kubernetes: a PE runs on one engine (remove docker or kubernetes)" });
  if (input.network !== undefined) dockerOnly("network", "pods use the cluster network; remove network");
  if (Array.isArray(input.ports)) {
    input.ports.forEach((mapping, index) => {
      if (!isRecord(mapping)) return;
      if (mapping.host !== undefined) dockerOnly(`ports.${index}.host`, "expose the pod through a Service; keep only ports.container");
      if (mapping.hostIp !== undefined) dockerOnly(`ports.${index}.hostIp`, "expose the pod through a Service; keep only ports.container");
    });
  }
  if (isRecord(input.readiness) && input.readiness.logLine !== undefined)
    dockerOnly("readiness.logLine", "use readiness.httpGet: it becomes the pod's readinessProbe");
  if (isRecord(input.volume)) {
    if (input.volume.driver !== undefined) dockerOnly("volume.driver", "use kubernetes.storageClassName");
    if (typeof input.volume.name === "string" && !K8S_NAME.test(input.volume.name)) {
      problems.push({
        field: "volume.name",
        expected: "expected a Kubernetes claim name: lowercase letters, digits and '-', 1-50 characters, starting and ending with a letter or digit",
      });
    }
  }
  if (isRecord(input.stop) && input.stop.signal !== undefined && input.stop.signal !== "SIGTERM") {
    problems.push({
      field: "stop.signal",
      expected: 'expected "SIGTERM" with kubernetes: the kubelet always stops a pod with SIGTERM (then SIGKILL after stop.graceSeconds)',
    });
  }
  // A standby's parked report is read at its pod's status endpoint (its readiness gate keeps it out of Ready meanwhile).
  if (input.handover === "standby" && (!isRecord(input.kubernetes) || input.kubernetes.status === undefined)) {
    problems.push({
      field: "kubernetes.status",
      expected: 'required with handover "standby" on kubernetes: reseat reads the parked standby\'s report there',
    });
  }
  if (isRecord(input.persistentStore)) {
    if (input.persistentStore.volume !== undefined)
      dockerOnly("persistentStore.volume", "the directory store is a claim of its own per PE on Kubernetes: see kubernetes.store");
    if (input.persistentStore.hostPath !== undefined)
      dockerOnly("persistentStore.hostPath", "the directory store is a claim of its own per PE on Kubernetes: see kubernetes.store");
  }
  return problems;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * One zod issue as a user reads it: the field's dotted path and what was expected there. `table`
 * names the README table that lists the fields (for unknown fields).
 */
export function problemOf(issue: z.core.$ZodIssue, input: unknown, table: "spec" | "group"): { field: string; expected: string } {
  if (issue.code === "unrecognized_keys") {
    const prefix = issue.path.length ? `${issue.path.map(String).join(".")}.` : "";
    return { field: issue.keys.map((key) => prefix + key).join(", "), expected: `unknown field (check the spelling; see the README's ${table} table)` };
  }
  const field = issue.path.length ? issue.path.map(String).join(".") : `(${table})`;
  if (issue.code === "invalid_type" && valueAt(input, issue.path) === undefined) return { field, expected: `required (${issue.message})` };
  return { field, expected: issue.message };
}

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

export { DEFAULT_STORE_VOLUME };

export function volumeNameOf(spec: Pick<ProcessingElementSpec, "peId" | "volume">): string {
  return spec.volume.name ?? `reseat-${spec.peId}-state`;
}
