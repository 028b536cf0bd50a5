export type { ProcessingElementOutputs } from "./processingElement";
export { ProcessingElement, PROCESSING_ELEMENT_TYPE, validateProcessingElement } from "./processingElement";
export { ProcessingElementGroup, PROCESSING_ELEMENT_GROUP_TYPE, validateProcessingElementGroup } from "./processingElementGroup";
export { ProcessingElementFleet, PROCESSING_ELEMENT_FLEET_TYPE, validateProcessingElementFleet } from "./processingElementFleet";
export type { ProcessingElementFleetArgs } from "./processingElementFleet";
