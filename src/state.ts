// "reseat/state": the workload-side state library, which is its own package (@reseat/state, packages/state).
// Re-exported so the import users already have keeps resolving; a workload image needs only @reseat/state.
export * from "@reseat/state";
