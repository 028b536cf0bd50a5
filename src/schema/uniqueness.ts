// One program must not declare two PEs that would share what only one may have: a PE id, a state
// volume, a host port. Checked over every spec before anything is registered, so the error names the
// field instead of surfacing as Pulumi's "Duplicate resource URN" or a port clash at start. The
// engine-side volume claim is what holds across stacks and machines; this is the early, clear error.
import type { ProcessingElementSpec } from "./processingElement";
import { volumeNameOf } from "./processingElement";

export interface DeclaredPe {
  /** How the error names the spec: `processingElements[2]`, `group "web" member web-1`, `"pe-a"`. */
  subject: string;
  spec: ProcessingElementSpec;
}

export interface DuplicateProblem {
  field: string;
  expected: string;
}

/** Every collision among the declared PEs, each named by the later spec's field. */
export function findDuplicates(declared: DeclaredPe[]): DuplicateProblem[] {
  const problems: DuplicateProblem[] = [];
  const peIds = new Map<string, string>();
  const volumes = new Map<string, string>();
  const hostPorts = new Map<string, string>();
  const claim = (seen: Map<string, string>, key: string, field: string, expected: (first: string) => string) => {
    const first = seen.get(key);
    if (first !== undefined) problems.push({ field, expected: expected(first) });
    else seen.set(key, field);
  };
  for (const { subject, spec } of declared) {
    claim(
      peIds,
      spec.peId,
      `${subject}.peId`,
      (first) => `expected a peId unique in the program; "${spec.peId}" is already used by ${first.replace(/\.peId$/, "")}`,
    );
    const volume = `${engineScope(spec)}|${volumeNameOf(spec)}`;
    claim(
      volumes,
      volume,
      `${subject}.volume.name`,
      (first) =>
        `expected a state volume of its own; "${volumeNameOf(spec)}" is already the state volume of ${first.replace(/\.volume\.name$/, "")} (one writer per volume)`,
    );
    spec.ports.forEach((port, index) => {
      if (port.host === undefined || spec.network !== "bridge") return;
      const key = `${engineScope(spec)}|${port.hostIp}:${port.host}/${port.protocol}`;
      claim(
        hostPorts,
        key,
        `${subject}.ports.${index}.host`,
        (first) => `expected a host port used once; ${port.hostIp}:${port.host}/${port.protocol} is already published by ${first}`,
      );
    });
  }
  return problems;
}

/** Names are unique per Docker Engine, or per Kubernetes context and namespace. */
function engineScope(spec: ProcessingElementSpec): string {
  return spec.kubernetes ? `k8s:${spec.kubernetes.context ?? ""}:${spec.kubernetes.namespace}` : (spec.docker?.host ?? "default");
}

/**
 * PEs declared so far by this program (one Node process runs one Pulumi program): lets a component
 * refuse a second PE that collides with an earlier one, for programs that declare PEs one by one.
 */
const declaredInProgram: DeclaredPe[] = [];

/** A new run of the program starts with nothing declared (one process may run a program several times). */
export function forgetDeclaredPes(): void {
  declaredInProgram.length = 0;
}

export function declareInProgram(pe: DeclaredPe): DuplicateProblem[] {
  const problems = findDuplicates([...declaredInProgram, pe]);
  if (!problems.length) declaredInProgram.push(pe);
  return problems;
}

/**
 * A fleet's members take part like PEs: a fleet "orders" and a ProcessingElement "orders-1" would be
 * two owners of one peId and one state volume (the member's), and the fleet's rollout would displace
 * the PE's executable (or the other way round) without a word. Declares every member, or none.
 */
export function declareFleetInProgram(fleet: string, members: { peId: string; spec: ProcessingElementSpec }[]): DuplicateProblem[] {
  const declared = members.map((member) => ({ subject: fleetMemberSubject(fleet, member.peId), spec: member.spec }));
  const problems = findDuplicates([...declaredInProgram, ...declared]);
  if (!problems.length) declaredInProgram.push(...declared);
  return problems.map((problem) => asFleetField(fleet, problem));
}

/** A member's colliding field as the fleet's own field: its peId comes from `name`, the rest from `template`. */
function asFleetField(fleet: string, problem: DuplicateProblem): DuplicateProblem {
  const prefix = `fleet "${fleet}" member `;
  if (!problem.field.startsWith(prefix)) return problem;
  const rest = problem.field.slice(prefix.length);
  const dot = rest.indexOf(".");
  const [peId, field] = [rest.slice(0, dot), rest.slice(dot + 1)];
  return { field: field === "peId" ? "name" : `template.${field}`, expected: `member ${peId}: ${problem.expected}` };
}

/** How a collision names a fleet's member: `fleet "orders" member orders-1`. */
export function fleetMemberSubject(fleet: string, peId: string): string {
  return `fleet "${fleet}" member ${peId}`;
}
