// reseat-sdkgen-python generates a Pulumi package's Python SDK from its schema.json with the Pulumi CLI's own
// codegen (pkg/v3/codegen/python at the CLI's version). Why not `pulumi package gen-sdk --language python`: the
// Python language host built here (sdk/v3 v3.68.0) predates the GeneratePackage RPC the CLI calls.
//
// Usage: reseat-sdkgen-python <schema.json> <out-dir>
// Writes every generated file under out-dir (existing files of the same name are overwritten; others are left).
// A schema the binder rejects: its diagnostics on stderr, exit 1. Bad usage: exit 2.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/blang/semver"
	"github.com/hashicorp/hcl/v2"
	"github.com/pulumi/pulumi/pkg/v3/codegen/python"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

const tool = "reseat-sdkgen-python"

// noExternalPackages is the schema loader: reseat's schema references only the built-in pulumi.json types,
// which the binder resolves itself, so any request for another package is a schema error, not a download.
type noExternalPackages struct{}

func refuse(name string) error {
	return fmt.Errorf("schema references package %q: %s loads no external packages (only pulumi.json#/... types)",
		name, tool)
}

func (noExternalPackages) LoadPackage(pkg string, _ *semver.Version) (*schema.Package, error) {
	return nil, refuse(pkg)
}

func (noExternalPackages) LoadPackageV2(_ context.Context, d *schema.PackageDescriptor) (*schema.Package, error) {
	return nil, refuse(d.Name)
}

func (noExternalPackages) LoadPackageReference(pkg string, _ *semver.Version) (schema.PackageReference, error) {
	return nil, refuse(pkg)
}

func (noExternalPackages) LoadPackageReferenceV2(
	_ context.Context, d *schema.PackageDescriptor,
) (schema.PackageReference, error) {
	return nil, refuse(d.Name)
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintf(os.Stderr, "usage: %s <schema.json> <out-dir>\n", tool)
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", tool, err)
		os.Exit(1)
	}
}

func run(schemaPath, outDir string) error {
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		return err
	}
	var spec schema.PackageSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return fmt.Errorf("%s: not a package schema: %w", schemaPath, err)
	}

	loader := noExternalPackages{}
	pkg, diags, err := schema.BindSpec(spec, loader, schema.ValidationOptions{})
	// Warnings too go to stderr: they name the schema field the CLI would also complain about.
	for _, d := range diags {
		fmt.Fprintln(os.Stderr, describe(schemaPath, d))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", schemaPath, err)
	}
	if diags.HasErrors() {
		return fmt.Errorf("%s: the schema does not bind (diagnostics above)", schemaPath)
	}

	files, err := python.GeneratePackage(tool, pkg, nil, loader)
	if err != nil {
		return fmt.Errorf("generating the Python SDK: %w", err)
	}
	if len(files) == 0 {
		return errors.New("the codegen produced no files")
	}

	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(outDir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// describe renders one binder diagnostic as "schema.json: error: #/resources/...: what is wrong" (hcl's own Error()
// prefixes "<nil>:" because schema diagnostics carry no source range; the JSON path is in the summary).
func describe(schemaPath string, d *hcl.Diagnostic) string {
	severity := "error"
	if d.Severity == hcl.DiagWarning {
		severity = "warning"
	}
	text := d.Summary
	if d.Detail != "" {
		text += ": " + d.Detail
	}
	return fmt.Sprintf("%s: %s: %s", schemaPath, severity, text)
}
