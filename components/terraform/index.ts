// The Terraform flavour (cdktf): constructs over the shared PE spec. See components/terraform/processingElement.ts.
export {
  DOCKER_PROVIDER_SOURCE,
  DOCKER_PROVIDER_VERSION,
  ProcessingElement,
  type ProcessingElementProps,
  executableEnv,
  literal,
  resourceName,
  terraformExecutableName,
  validateTerraformProcessingElement,
} from "./processingElement";
export { ReseatStatusFile, STATUS_FIELDS, STATUS_FILE_NAME, STATUS_VARIABLE } from "./status";
export { ReseatTerraformStack, type ReseatTerraformStackProps, parseStackConfig } from "./stack";
