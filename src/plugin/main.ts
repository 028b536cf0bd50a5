#!/usr/bin/env node
// pulumi-resource-reseat: the `reseat` provider plugin (the engine starts it, passing its address).
// Resources the components declare in this process are the `reseat` package's, served here.
import * as provider from "@pulumi/pulumi/provider";
import { usePackageFace } from "../provider/reseatResource";
import { packageSchema } from "./schema";
import { reseatProvider } from "./provider";
import { packageVersion } from "../util/packageVersion";

const version = packageVersion();
const schema = () => JSON.stringify(packageSchema(version), null, 2);
if (process.argv[2] === "schema") {
  // `pulumi-resource-reseat schema`: the package schema, for building the package (scripts/plugin.sh).
  process.stdout.write(`${schema()}\n`);
} else {
  usePackageFace(version);
  provider.main(reseatProvider(version, schema), process.argv.slice(2)).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
