// Command kube is the dev cluster's control plane in one binary: the components share most of
// their dependency graph, so linking once is far cheaper than five separate builds. The first
// argument picks the component; when invoked through a symlink named after a component (e.g.
// hack/cluster/bin/kubectl), the link name picks it, busybox-style.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	_ "time/tzdata" // CronJob time zones, as in the upstream mains

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"

	_ "k8s.io/client-go/plugin/pkg/client/auth"
)

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if !isComponent(name) {
		if len(args) == 0 || !isComponent(args[0]) {
			fmt.Fprintln(os.Stderr, "usage: kube {etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kubectl} [flags]")
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	// Each component parses os.Args itself (cobra, etcd's flag set), so present it the argv it
	// would have had as a standalone binary.
	os.Args = append([]string{name}, args...)
	switch name {
	case "etcd":
		etcdmain.Main(os.Args)
	case "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "kube-scheduler":
		os.Exit(cli.Run(scheduler.NewSchedulerCommand()))
	case "kubectl":
		logs.GlogSetter(kubectl.GetLogVerbosity(os.Args)) //nolint:errcheck
		if err := cli.RunNoErrOutput(kubectl.NewDefaultKubectlCommand()); err != nil {
			kubectlutil.CheckErr(err)
		}
	}
}

func isComponent(s string) bool {
	switch s {
	case "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl":
		return true
	}
	return false
}
