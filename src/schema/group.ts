// The processing-element group spec: N members from one template, rolled out in a fixed order with a
// bound on how many members are replaced at once (maxUnavailable) and a partition below which members
// keep the spec they were deployed with — the StatefulSet model, for PEs with kept state volumes.
//
// Members are named `<group>-<ordinal>` (ordinals 0 … replicas-1); that is also each member's peId.
// Strings in the template may use placeholders, so that members differ where they must (ports on a
// host network, shard ids): {{ordinal}}, {{ordinal + N}}, {{ordinal - N}}, {{peId}}, {{group}}.
// In numeric fields (ports, readiness.httpGet.port, …) a string that is exactly one placeholder,
// e.g. "{{ordinal + 18300}}", becomes the number.
//
// Errors use the PE spec's style: one SpecError listing every bad field with its path.
import { z } from "zod";
import { ProcessingElementInput, ProcessingElementSpec, SpecError, parseProcessingElement, problemOf, volumeNameOf } from "./processingElement";
import { SECRET_VALUE_FIELDS, isDeferred, parseKnownProcessingElement } from "./inputs";

/** A group name is the prefix of its members' peIds: a DNS label short enough for `-<ordinal>`. */
const GROUP_NAME = /^[a-z0-9](?:[a-z0-9-]{0,36}[a-z0-9])?$/;
const PE_ID_MAX = 40;
export const MAX_REPLICAS = 1000;

const count = (what: string) => z.number({ error: `expected a whole number of ${what}` }).int(`expected a whole number of ${what}`);

/** What maxUnavailable may be, said in every message about it (the upper bound needs replicas: see expandGroup). */
export const MAX_UNAVAILABLE_BOUNDS = 'a whole number of members from 1 to replicas, or a percentage of replicas from "1%" to "100%"';

const maxUnavailable = z.union(
  [
    count("members").min(1, `expected at least 1 member (a rollout must make progress): ${MAX_UNAVAILABLE_BOUNDS}`),
    z.string().regex(/^(?:100|[1-9][0-9]?)%$/, `expected ${MAX_UNAVAILABLE_BOUNDS} (rounded down, at least 1 member)`),
  ],
  {
    error: `expected ${MAX_UNAVAILABLE_BOUNDS}`,
  },
);

export const groupRolloutSchema = z.strictObject({
  /** At most this many members are without a ready executable at once (number, or "NN%" of replicas rounded down, at least 1). */
  maxUnavailable: maxUnavailable
    .default(1)
    .describe('At most this many members are without a ready executable at once: a number, or "NN%" of replicas (rounded down, at least 1). Default: 1.'),
  /** Only members with ordinal >= partition take a changed template; the others keep what they were deployed with. */
  partition: count("members")
    .min(0, "expected 0 or more")
    .default(0)
    .describe("Only members with ordinal >= partition take a changed template; the others keep what they were deployed with. Default: 0."),
});

export const groupSchema = z.strictObject({
  name: z
    .string({ error: "expected a string" })
    .regex(GROUP_NAME, "expected a lowercase DNS label (a-z, 0-9, '-'), 1-38 characters, not starting or ending with '-'")
    .describe('The group\'s name: members are "<name>-<ordinal>", which is also their peId.'),
  replicas: count("members")
    .min(0, "expected 0 or more members")
    .max(MAX_REPLICAS, `expected at most ${MAX_REPLICAS} members`)
    .describe(`How many members (0 to ${MAX_REPLICAS}); must be known when the program runs.`),
  /** A processing-element spec without peId; strings may use {{ordinal}}, {{ordinal + N}}, {{peId}}, {{group}}. */
  template: z
    .record(z.string(), z.unknown(), { error: "expected a processing element spec (an object; see the README's spec table), without peId" })
    .describe(
      'A processing-element spec without peId. Strings may use {{ordinal}}, {{ordinal + N}}, {{ordinal - N}}, {{peId}}, {{group}}; in a number field, a string that is one placeholder, such as "{{ordinal + 18300}}", becomes the number.',
    ),
  rollout: groupRolloutSchema
    .default({ maxUnavailable: 1, partition: 0 })
    .describe("How a changed template rolls out over the members; must be known when the program runs."),
});

export type GroupInput = z.input<typeof groupSchema>;
/** A number field of a template may also be a placeholder such as "{{ordinal + 18300}}". */
export type Templated<T> = T extends number
  ? number | `{{${string}}}`
  : T extends string | boolean | null | undefined
    ? T
    : T extends PromiseLike<unknown>
      ? T
      : T extends readonly (infer U)[]
        ? Templated<U>[]
        : T extends { apply: unknown }
          ? T
          : T extends object
            ? { [K in keyof T]: Templated<T[K]> }
            : T;
/** A group's template: a PE spec without peId (the group sets it), whose strings may carry placeholders. */
export type GroupTemplateInput = Templated<Omit<ProcessingElementInput, "peId">>;

export interface GroupMember {
  ordinal: number;
  /** `<group>-<ordinal>`: the member's resource name and its peId. */
  name: string;
  peId: string;
  /** The template with placeholders substituted and peId set: what the member's ProcessingElement gets. */
  input: ProcessingElementInput;
  spec: ProcessingElementSpec;
}

export interface GroupSpec {
  name: string;
  replicas: number;
  /** The template as written (placeholders unsubstituted). */
  template: Record<string, unknown>;
  rollout: { maxUnavailable: number; maxUnavailableInput: number | string; partition: number };
  members: GroupMember[];
}

/** A member of a template whose fields may be Outputs: its spec when every field is known now. */
export interface GroupInputMember extends Omit<GroupMember, "spec"> {
  spec?: ProcessingElementSpec;
}

/** A group as a program declares it, fields of its template possibly Outputs (see parseGroupInputs). */
export interface GroupInputs extends Omit<GroupSpec, "members"> {
  members: GroupInputMember[];
}

/**
 * What a member's template value that resolves later becomes: the program's own wrapper (an Output
 * whose placeholders are substituted once it resolves, with `substitute`). `field` is its path.
 */
export type DeferredInTemplate = (value: unknown, field: string[], values: PlaceholderValues) => unknown;

export function memberName(group: string, ordinal: number): string {
  return `${group}-${ordinal}`;
}

/** maxUnavailable as a member count: "NN%" of replicas rounded down (as Kubernetes does), at least 1. */
export function resolveMaxUnavailable(value: number | string, replicas: number): number {
  if (typeof value === "number") return Math.max(1, value);
  const percent = Number(value.replace(/%$/, ""));
  return Math.max(1, Math.floor((replicas * percent) / 100));
}

/** Validates a group spec and expands its members; throws SpecError listing every bad field. */
export function parseGroup(input: unknown, subject?: string): GroupSpec {
  return expandGroup(input, subject) as GroupSpec;
}

/**
 * parseGroup for a program's group, whose template fields (and values inside them) may be Outputs or
 * Promises: what is known is validated now with the same messages, each member's deferred values
 * become `inTemplate`'s (placeholders substituted when they resolve), and a member's spec is there
 * only when every field of it is known. `name`, `replicas` and `rollout` must be known: they decide
 * which members are declared and in which order.
 */
export function parseGroupInputs(input: unknown, subject: string | undefined, inTemplate: DeferredInTemplate): GroupInputs {
  return expandGroup(input, subject, inTemplate);
}

/** A group's or fleet's own fields (the rest of a spec is its template's), strict as the template's and rollout's fields are. */
const groupFieldsSchema = z.strictObject({ name: z.unknown(), replicas: z.unknown(), template: z.unknown(), rollout: z.unknown() });

/**
 * Unknown fields at a group's or fleet's top level, named as unknown fields inside `template` and
 * `rollout` are. For callers that pick the known fields out of a program's args (a fleet) and would
 * otherwise drop a misspelled one without a word.
 */
export function unknownGroupFields(args: unknown): Problem[] {
  const parsed = groupFieldsSchema.safeParse(args);
  if (parsed.success) return [];
  return parsed.error.issues.filter((issue) => issue.code === "unrecognized_keys").map((issue) => problemOf(issue, args, "group"));
}

/**
 * Runs `parse` (a group's or fleet's validation) and adds the args' unknown top-level fields to its
 * problems: one SpecError naming every bad field.
 */
export function withGroupFieldsChecked<T>(args: unknown, subject: string, parse: () => T): T {
  const unknown = unknownGroupFields(args);
  let parsed: T;
  try {
    parsed = parse();
  } catch (error) {
    if (unknown.length && error instanceof SpecError) throw new SpecError(error.subject, [...unknown, ...error.problems]);
    throw error;
  }
  if (unknown.length) throw new SpecError(subject, unknown);
  return parsed;
}

/** Group fields that decide which resources are declared, and in which order. */
const KNOWN_GROUP_FIELDS: Record<string, string> = {
  name: "it names every member",
  replicas: "it decides how many members are declared",
  rollout: "it decides the members' rollout order (their dependencies)",
  "rollout.maxUnavailable": "it decides the members' rollout order (their dependencies)",
  "rollout.partition": "it decides which members keep their deployed spec",
  template: "its fields may be Outputs, but not the template as a whole",
};

function deferredGroupFields(raw: Record<string, unknown>): Problem[] {
  const rollout = raw.rollout && typeof raw.rollout === "object" && !isDeferred(raw.rollout) ? (raw.rollout as Record<string, unknown>) : {};
  const values: Record<string, unknown> = {
    name: raw.name,
    replicas: raw.replicas,
    rollout: raw.rollout,
    template: raw.template,
    "rollout.maxUnavailable": rollout.maxUnavailable,
    "rollout.partition": rollout.partition,
  };
  return Object.entries(KNOWN_GROUP_FIELDS)
    .filter(([field]) => isDeferred(values[field]))
    .map(([field, why]) => ({ field, expected: `expected a value known when the program runs, not an Output or Promise: ${why}` }));
}

function expandGroup(input: unknown, subject?: string, inTemplate?: DeferredInTemplate): GroupInputs {
  const raw: Record<string, unknown> = input && typeof input === "object" && !Array.isArray(input) ? (input as Record<string, unknown>) : {};
  const label = subject ?? (typeof raw.name === "string" ? `group "${raw.name}"` : "group");
  const deferredFields = inTemplate ? deferredGroupFields(raw) : [];
  if (deferredFields.length) throw new SpecError(label, deferredFields);
  const parsed = groupSchema.safeParse(input);
  const problems: Problem[] = parsed.success ? [] : parsed.error.issues.map((issue) => problemOf(issue, input, "group"));
  // Even when the group's own fields are wrong, check the template (with stand-ins), so that one
  // error lists every bad field.
  const group = parsed.success
    ? parsed.data
    : {
        name: typeof raw.name === "string" && GROUP_NAME.test(raw.name) ? raw.name : "group",
        replicas: Number.isInteger(raw.replicas) && (raw.replicas as number) >= 0 && (raw.replicas as number) <= MAX_REPLICAS ? (raw.replicas as number) : 1,
        template: isPlainObject(raw.template) ? raw.template : undefined,
        rollout: undefined,
      };
  const lastOrdinal = Math.max(group.replicas - 1, 0);
  // A count above replicas is a typo or a stale value after a scale-down, not a wish: said, not clamped.
  // (With replicas 0 nothing rolls: any value stays, for the scale back up.)
  const requested = parsed.success ? parsed.data.rollout.maxUnavailable : undefined;
  if (typeof requested === "number" && group.replicas > 0 && requested > group.replicas) {
    problems.push({
      field: "rollout.maxUnavailable",
      expected: `expected at most replicas (${group.replicas}) members, got ${requested}: ${MAX_UNAVAILABLE_BOUNDS} (here 1 to ${group.replicas}, or "100%" for all at once)`,
    });
  }
  if (parsed.success && memberName(group.name, lastOrdinal).length > PE_ID_MAX) {
    problems.push({
      field: "name",
      expected: `expected a name of at most ${PE_ID_MAX - 1 - String(lastOrdinal).length} characters, so that member peIds ("${memberName(group.name, lastOrdinal)}") fit in ${PE_ID_MAX}`,
    });
  }
  const template = group.template;
  const members: GroupInputMember[] = [];
  if (template) {
    if ("peId" in template) {
      problems.push({
        field: "template.peId",
        expected: `set by the group (members are "${group.name}-0" … "${memberName(group.name, lastOrdinal)}"); remove it from the template`,
      });
    }
    // Expand and validate every member (at least one, so a bad template fails even with replicas 0).
    const byProblem = new Map<string, { field: string; expected: string; ordinals: number[] }>();
    const checked = Math.max(group.replicas, 1);
    for (let ordinal = 0; ordinal < checked; ordinal++) {
      const peId = memberName(group.name, ordinal);
      const values = { ordinal, peId, group: group.name };
      const substituted = substitute(template, values, [], inTemplate && ((value, field) => inTemplate(value, field, values)));
      const memberProblems = [...substituted.problems];
      const memberInput = { ...(substituted.value as Record<string, unknown>), peId };
      let spec: ProcessingElementSpec | undefined;
      let valid = false;
      try {
        spec = inTemplate ? parseKnownProcessingElement(memberInput, `"${peId}"`).spec : parseProcessingElement(memberInput, `"${peId}"`);
        valid = true;
      } catch (error) {
        if (!(error instanceof SpecError)) throw error;
        // A field with a bad placeholder is reported once, for the placeholder; the peId is the
        // group's doing (reported for name above).
        memberProblems.push(...error.problems.filter((problem) => problem.field !== "peId" && !substituted.problems.some((p) => p.field === problem.field)));
      }
      for (const problem of memberProblems) {
        const field = problem.field === "(spec)" ? "template" : `template.${problem.field}`;
        const key = `${field}\n${problem.expected}`;
        const entry = byProblem.get(key) ?? { field, expected: problem.expected, ordinals: [] };
        entry.ordinals.push(ordinal);
        byProblem.set(key, entry);
      }
      if (valid && !memberProblems.length && ordinal < group.replicas)
        members.push({ ordinal, name: peId, peId, input: memberInput as ProcessingElementInput, ...(spec ? { spec } : {}) });
    }
    for (const entry of byProblem.values()) {
      const some = entry.ordinals.length < checked;
      problems.push({
        field: entry.field,
        expected: some ? `${entry.expected} (member${entry.ordinals.length > 1 ? "s" : ""} ${entry.ordinals.join(", ")})` : entry.expected,
      });
    }
    if (!byProblem.size) problems.push(...distinctResources(members));
  }
  if (problems.length || !parsed.success) throw new SpecError(label, problems);

  const rollout = parsed.data.rollout;
  return {
    name: parsed.data.name,
    replicas: parsed.data.replicas,
    template: parsed.data.template,
    rollout: {
      maxUnavailable: resolveMaxUnavailable(rollout.maxUnavailable, parsed.data.replicas),
      maxUnavailableInput: rollout.maxUnavailable,
      partition: rollout.partition,
    },
    members,
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return !!value && typeof value === "object" && !Array.isArray(value);
}

export interface Problem {
  field: string;
  expected: string;
}

/**
 * Members that would share a volume, a published host port or a host-network readiness port. Judged on
 * the members known now; those with values that resolve later are judged by each PE against the
 * program's other PEs (volumes and host ports) when they resolve.
 */
function distinctResources(all: GroupInputMember[]): Problem[] {
  const members = all.filter((member): member is GroupMember => member.spec !== undefined);
  const problems: Problem[] = [];
  const clash = (field: string, what: string, key: (m: GroupMember) => (string | number)[], hint: string) => {
    const seen = new Map<string | number, number>();
    for (const member of members) {
      for (const value of key(member)) {
        const first = seen.get(value);
        if (first !== undefined) {
          problems.push({
            field,
            expected: `expected a distinct ${what} per member: members ${first} and ${member.ordinal} both use ${JSON.stringify(value)}; ${hint}`,
          });
          return;
        }
        seen.set(value, member.ordinal);
      }
    }
  };
  clash(
    "template.volume.name",
    "state volume",
    (m) => [volumeNameOf(m.spec)],
    'put {{ordinal}} or {{peId}} in it, or leave it out (default "reseat-<peId>-state")',
  );
  clash(
    "template.ports",
    "published host port",
    (m) => (m.spec.network === "bridge" ? m.spec.ports.filter((p) => p.host !== undefined).map((p) => `${p.hostIp}:${p.host}/${p.protocol}`) : []),
    'use "{{ordinal + N}}" for host, or leave host out (an ephemeral port)',
  );
  clash(
    "template.readiness.httpGet.port",
    "readiness port on the host network",
    (m) => (m.spec.network === "host" && m.spec.readiness?.httpGet ? [m.spec.readiness.httpGet.port] : []),
    'use "{{ordinal + N}}" (and the same port in the workload\'s env)',
  );
  return problems;
}

/** Fields whose value is a number in the PE spec: a string that is exactly one placeholder becomes that number there. */
export const NUMERIC_FIELDS = [
  /^ports\.\d+\.(?:container|host)$/,
  /^readiness\.httpGet\.port$/,
  /^resources\.(?:memoryMiB|cpus)$/,
  /^stop\.graceSeconds$/,
  /^persistentStore\.(?:port|keep)$/,
];
const PLACEHOLDER = /\{\{\s*([^}]*?)\s*\}\}/g;
const WHOLE_PLACEHOLDER = /^\{\{\s*([^}]*?)\s*\}\}$/;

export interface PlaceholderValues {
  ordinal: number;
  peId: string;
  group: string;
}

/**
 * Substitutes placeholders in every string of a template (plain objects and arrays only). A value that
 * resolves later (an Output, a Promise) becomes `inDeferred`'s, if given (the program substitutes in it
 * once it resolves); a secret value (a password, a key) is always passed through untouched. Pure;
 * reports unknown placeholders with their field path.
 */
export function substitute(
  value: unknown,
  values: PlaceholderValues,
  path: string[],
  inDeferred?: (value: unknown, field: string[]) => unknown,
): { value: unknown; problems: Problem[] } {
  const problems: Problem[] = [];
  const walk = (node: unknown, at: string[]): unknown => {
    if (isDeferred(node)) {
      const secret = SECRET_VALUE_FIELDS.some((field) => field.length === at.length && field.every((part, i) => part === at[i]));
      return inDeferred && !secret ? inDeferred(node, at) : node;
    }
    if (typeof node === "string") {
      const field = at.join(".");
      const whole = WHOLE_PLACEHOLDER.exec(node);
      if (whole && NUMERIC_FIELDS.some((pattern) => pattern.test(field))) {
        const evaluated = evaluate(whole[1]!, values);
        if (typeof evaluated === "number") return evaluated;
        if (evaluated === undefined) problems.push({ field: field || "(spec)", expected: unknownPlaceholder(whole[1]!) });
        else problems.push({ field, expected: `expected a number, but {{${whole[1]}}} is the string "${evaluated}"` });
        return node;
      }
      return node.replace(PLACEHOLDER, (text, expression: string) => {
        const evaluated = evaluate(expression, values);
        if (evaluated === undefined) {
          problems.push({ field: field || "(spec)", expected: unknownPlaceholder(expression) });
          return text;
        }
        return String(evaluated);
      });
    }
    if (Array.isArray(node)) return node.map((item, index) => walk(item, [...at, String(index)]));
    if (node && typeof node === "object" && Object.getPrototypeOf(node) === Object.prototype) {
      return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, walk(item, [...at, key])]));
    }
    return node;
  };
  return { value: walk(value, path), problems };
}

function unknownPlaceholder(expression: string): string {
  return `unknown placeholder "{{${expression}}}": expected {{ordinal}}, {{ordinal + N}}, {{ordinal - N}}, {{peId}} or {{group}}`;
}

function evaluate(expression: string, values: PlaceholderValues): number | string | undefined {
  if (expression === "peId") return values.peId;
  if (expression === "group") return values.group;
  const match = /^ordinal(?:\s*([+-])\s*(\d{1,9}))?$/.exec(expression);
  if (!match) return undefined;
  const offset = match[2] ? Number(match[2]) : 0;
  return match[1] === "-" ? values.ordinal - offset : values.ordinal + offset;
}
