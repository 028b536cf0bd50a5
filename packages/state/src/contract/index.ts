// The workload contract: everything reseat and a workload agree on, in one leaf module (it imports only
// its own files). The state library (inside the workload) and reseat's provider, controller and engines
// both read it; nothing else spells a record's path or an env name.
//
//   domain.ts   the domain's types: a PE, its generation, what it is asked to run
//   records.ts  each record beside the state volume: typed value, encoding, version, corrupt → typed error
//   env.ts      the RESEAT_* environment: its names, the one function building it, the reserved names
//   outputs.ts  the output fields of a PE
//   lock.ts     the volume's writer lock (a kernel lock on a file in the volume) and the parked/serving phase
export * from "./domain";
export * from "./records";
export * from "./env";
export * from "./outputs";
export * from "./lock";
