export type { DeepInput, ProcessingElementArgs, ProcessingElementOutputs, ReplacementOptions } from "./processingElement";
export { ProcessingElement, PROCESSING_ELEMENT_TYPE, validateProcessingElement } from "./processingElement";
export type { GroupMemberOutputs, GroupTemplateArgs, ProcessingElementGroupArgs, ProcessingElementGroupOptions } from "./processingElementGroup";
export { ProcessingElementGroup, PROCESSING_ELEMENT_GROUP_TYPE, validateProcessingElementGroup } from "./processingElementGroup";
export { ProcessingElementFleet, PROCESSING_ELEMENT_FLEET_TYPE, validateProcessingElementFleet } from "./processingElementFleet";
export type { ProcessingElementFleetArgs } from "./processingElementFleet";
