// Command node is the dev cluster's process node: it registers a Node, keeps it Ready, and runs
// the pods scheduled to it as local processes (one per container) in their own network
// namespaces on a bridge, for a table of known images mapped to local commands. A real kubelet
// cannot run here (no container runtime images, cgroup v1), and the point is only that
// everything Kubernetes-facing — scheduling, EndpointSlices, probes, service-account tokens —
// is real.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

type config struct {
	kubeconfig, nodeName, stateDir, logsDir string
	bridge, bridgeIP, podCIDR, serviceCIDR  string
	netnsPrefix, vethPrefix                 string
	apiserverHost, apiserverPort            string
	ipFirst, ipLast                         int
	imageFiles                              []string
	programServices                         bool
	gatewayPool                             netip.Prefix
	clientCAFile                            string
	kubeletPort                             int
}

func main() {
	// container-init runs inside a pod's namespaces just before exec'ing the container command.
	if len(os.Args) > 1 && os.Args[1] == "container-init" {
		containerInit(os.Args[2:])
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "dns-placeholder" {
		dnsPlaceholder(os.Args[2:])
		return
	}
	var c config
	var ipRange, images string
	fs := flag.NewFlagSet("node", flag.ExitOnError)
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "admin kubeconfig")
	fs.StringVar(&c.nodeName, "node-name", "rauta-node", "Node name to register")
	fs.StringVar(&c.stateDir, "state-dir", "", "directory for per-pod volumes and pid files")
	fs.StringVar(&c.logsDir, "pod-logs-dir", "", "container logs go to <dir>/<ns>_<pod>/<container>.log (default <state-dir>/../logs/pods)")
	fs.StringVar(&c.bridge, "bridge", "rauta0", "bridge the pod veths attach to (must exist)")
	fs.StringVar(&c.bridgeIP, "bridge-ip", "10.244.0.1", "host address on the bridge; also the Node's InternalIP")
	fs.StringVar(&c.podCIDR, "pod-cidr", "10.244.0.0/24", "pod subnet (the bridge's)")
	fs.StringVar(&ipRange, "pod-ip-range", "2-191", "host-part range of pod IPs handed out")
	fs.StringVar(&c.serviceCIDR, "service-cidr", "10.96.0.0/16", "ClusterIP range; routed from pods to the host")
	fs.StringVar(&c.netnsPrefix, "netns-prefix", "rauta-", "prefix of the network namespaces this node owns")
	fs.StringVar(&c.vethPrefix, "veth-prefix", "rvth", "prefix of the host-side veth links this node owns")
	fs.StringVar(&c.apiserverHost, "apiserver-host", "10.244.0.1", "KUBERNETES_SERVICE_HOST given to pods")
	fs.StringVar(&c.apiserverPort, "apiserver-port", "6443", "KUBERNETES_SERVICE_PORT given to pods")
	fs.StringVar(&images, "images", "", "comma-separated image table JSON files; later entries win")
	fs.StringVar(&c.clientCAFile, "client-ca-file", "", "CA that signs the API server's kubelet client cert; enables the logs endpoint")
	fs.IntVar(&c.kubeletPort, "kubelet-port", 10250, "port of the kubelet API (container logs) on --bridge-ip")
	var pool string
	fs.StringVar(&pool, "gateway-pool", "10.244.0.192/26", "addresses pods may claim with the "+gatewayAddressesAnnotation+" annotation")
	fs.BoolVar(&c.programServices, "program-services", true, "program ClusterIP DNAT with iptables (there is no kube-proxy)")
	klog.InitFlags(nil)
	_ = fs.Parse(os.Args[1:])
	lo, hi, ok := strings.Cut(ipRange, "-")
	c.ipFirst, _ = strconv.Atoi(lo)
	c.ipLast, _ = strconv.Atoi(hi)
	if !ok || c.ipFirst < 2 || c.ipLast < c.ipFirst || c.stateDir == "" {
		fatalf("bad flags: --pod-ip-range=%q --state-dir=%q", ipRange, c.stateDir)
	}
	if c.logsDir == "" {
		c.logsDir = c.stateDir + "/../logs/pods"
	}
	if images != "" {
		c.imageFiles = strings.Split(images, ",")
	}
	if _, err := netip.ParsePrefix(c.podCIDR); err != nil {
		fatalf("bad --pod-cidr: %v", err)
	}
	var err error
	if c.gatewayPool, err = netip.ParsePrefix(pool); err != nil {
		fatalf("bad --gateway-pool: %v", err)
	}

	restCfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		fatalf("kubeconfig: %v", err)
	}
	restCfg.QPS, restCfg.Burst = 50, 100
	client := kubernetes.NewForConfigOrDie(restCfg)

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	n, err := newNode(c, client)
	if err != nil {
		fatalf("%v", err)
	}
	if err := n.run(ctx); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "node: "+format+"\n", a...)
	os.Exit(1)
}
