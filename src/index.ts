// reseat's public API. Components live in "reseat/components", the workload-side state library in
// "reseat/state" (it never imports Pulumi).
export { parseProcessingElement, processingElementSchema, SpecError, volumeNameOf } from "./spec/processingElement";
export type { ProcessingElementInput, ProcessingElementSpec } from "./spec/processingElement";
export { parseDuration } from "./spec/duration";
export { planExecutable, specHash, REPLACE_FIELDS, IN_PLACE_FIELDS } from "./plan/executablePlan";
export type { ExecutablePlan } from "./plan/executablePlan";
export { planVolume, VolumeChangeRefused } from "./plan/volumePlan";
export type { Backend, EngineIdentity, EngineTarget, ExecutableDesired, LeaseRecord, ObservedExecutable, VolumeMeta, VolumeInfo } from "./backend/backend";
export { LABELS, executableName } from "./backend/backend";
export { DockerBackend } from "./backend/docker/dockerBackend";
export { reseat, retire, applyControl, ForeignExecutableError } from "./replacement/reseat";
export type { ReseatResult } from "./replacement/reseat";
export { Executable, executableProvider } from "./provider/executable";
export type { ExecutableArgs } from "./provider/executable";
export { StateVolume, stateVolumeProvider } from "./provider/stateVolume";
export type { StateVolumeArgs } from "./provider/stateVolume";
export { openStack } from "./automation/stack";
export type { StackOptions } from "./automation/stack";
export { withPeLock, PE_LEASE_MS, VolumeOwnedError } from "./replacement/reseat";
export { acquireLease, withLease, holderName, LeaseLostError, LeaseBusyError } from "./lease/lease";
export { openBackend } from "./backend/open";
export { FakeBackend } from "./backend/fake/fakeBackend";
export type { ReseatOptions } from "./replacement/reseat";
export { watch, needsReseat } from "./controller/watch";
export type { WatchEvent, WatchOptions, Watcher, ControllerStatus } from "./controller/watch";
export { gatherStatus, formatStatusTable } from "./controller/status";
export type { PeStatus } from "./controller/status";
export { executableDesired } from "./spec/desired";
