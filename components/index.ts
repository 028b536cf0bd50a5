export { ProcessingElement, PROCESSING_ELEMENT_TYPE, validateProcessingElement } from "./processingElement";
