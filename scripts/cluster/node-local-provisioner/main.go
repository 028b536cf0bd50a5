// node-local-provisioner: dynamic provisioning of node-local volumes for the local two-node cluster.
//
// A claim of a StorageClass whose provisioner is "reseat.local/node-local" (volumeBindingMode
// WaitForFirstConsumer) is provisioned after the scheduler has picked a node for its first pod: this makes a
// directory <root>/<node>/<pv-name> and a `local` PersistentVolume pinned to that node by node affinity, so the
// claim — and every later pod using it — stays on that node. The claim/PV protocol (watching claims, retries,
// events, leader election) is the Kubernetes SIG Storage library's; this file only makes and removes the
// directory. It runs as a host process: all nodes of the local cluster share this machine's filesystem.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
)

const provisionerName = "reseat.local/node-local"

type nodeLocalProvisioner struct {
	root string // <root>/<node>/<pv-name> holds each volume
}

func (p *nodeLocalProvisioner) Provision(_ context.Context, options controller.ProvisionOptions) (*v1.PersistentVolume, controller.ProvisioningState, error) {
	node := options.SelectedNodeName
	if node == "" {
		return nil, controller.ProvisioningFinished, errors.New("node-local volumes need volumeBindingMode WaitForFirstConsumer (no node was selected for the claim)")
	}
	if options.PVC.Spec.Selector != nil {
		return nil, controller.ProvisioningFinished, errors.New("claims with a selector are not supported by node-local volumes")
	}
	path := filepath.Join(p.root, node, options.PVName)
	if err := os.MkdirAll(path, 0o777); err != nil {
		return nil, controller.ProvisioningInBackground, fmt.Errorf("making %s: %w", path, err)
	}
	// Any workload user may write its own state volume (as with Docker's named volumes).
	if err := os.Chmod(path, 0o777); err != nil {
		return nil, controller.ProvisioningInBackground, err
	}
	reclaim := v1.PersistentVolumeReclaimRetain
	if options.StorageClass.ReclaimPolicy != nil {
		reclaim = *options.StorageClass.ReclaimPolicy
	}
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        options.PVName,
			Annotations: map[string]string{"reseat.local/node": node},
		},
		Spec: v1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: reclaim,
			AccessModes:                   options.PVC.Spec.AccessModes,
			VolumeMode:                    options.PVC.Spec.VolumeMode,
			MountOptions:                  options.StorageClass.MountOptions,
			Capacity:                      v1.ResourceList{v1.ResourceStorage: options.PVC.Spec.Resources.Requests[v1.ResourceStorage]},
			PersistentVolumeSource:        v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: path}},
			NodeAffinity: &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
				MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{node}}},
			}}}},
		},
	}, controller.ProvisioningFinished, nil
}

// Delete is called only for reclaimPolicy Delete: removes the volume's directory.
func (p *nodeLocalProvisioner) Delete(_ context.Context, pv *v1.PersistentVolume) error {
	if pv.Spec.Local == nil {
		return &controller.IgnoredError{Reason: "not a node-local volume"}
	}
	path := filepath.Clean(pv.Spec.Local.Path)
	if rel, err := filepath.Rel(p.root, path); err != nil || rel == "." || filepath.IsAbs(rel) || rel[0] == '.' {
		return &controller.IgnoredError{Reason: fmt.Sprintf("%s is outside %s", path, p.root)}
	}
	return os.RemoveAll(path)
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the provisioner's identity")
	root := flag.String("root", "", "directory holding <node>/<pv-name> volume directories")
	klog.InitFlags(nil)
	flag.Parse()
	if *kubeconfig == "" || *root == "" {
		klog.Fatal("--kubeconfig and --root are required")
	}
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		klog.Fatalf("kubeconfig: %v", err)
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		klog.Fatalf("client: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	controller.NewProvisionController(ctx, client, provisionerName, &nodeLocalProvisioner{root: filepath.Clean(*root)},
		controller.LeaderElection(false), // one instance per cluster, started by scripts/cluster.sh
	).Run(ctx)
}
