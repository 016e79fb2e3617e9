package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// serviceProxy is the smallest kube-proxy that serves this cluster: ClusterIP:port → ready
// endpoints as iptables DNAT (random choice), for traffic from the host (OUTPUT) and from pods
// (PREROUTING on the bridge). Nothing else (NodePort, LoadBalancer, session affinity).
type serviceProxy struct {
	cfg    config
	client kubernetes.Interface
	dirty  chan struct{}
}

const svcChain = "RAUTA-SERVICES"

func newServiceProxy(c config, client kubernetes.Interface) *serviceProxy {
	return &serviceProxy{cfg: c, client: client, dirty: make(chan struct{}, 1)}
}

func (s *serviceProxy) mark() {
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (s *serviceProxy) setup() error {
	if _, err := exec.LookPath("iptables"); err != nil {
		return fmt.Errorf("iptables not installed")
	}
	_ = iptables("-t", "nat", "-N", svcChain)
	for _, parent := range []string{"OUTPUT", "PREROUTING"} {
		if iptables("-t", "nat", "-C", parent, "-j", svcChain) != nil {
			if err := iptables("-t", "nat", "-I", parent, "-j", svcChain); err != nil {
				return err
			}
		}
	}
	// Pod → ClusterIP → pod: masquerade so the reply comes back through the host and is un-DNATed.
	masq := []string{"POSTROUTING", "-s", s.cfg.podCIDR, "-d", s.cfg.podCIDR, "-m", "conntrack", "--ctstate", "DNAT", "-j", "MASQUERADE"}
	if iptables(append([]string{"-t", "nat", "-C"}, masq...)...) != nil {
		if err := iptables(append([]string{"-t", "nat", "-A"}, masq...)...); err != nil {
			return err
		}
	}
	// Forward only what arrives on our bridge (DNATed pod traffic); the host stays a non-router.
	return os.WriteFile("/proc/sys/net/ipv4/conf/"+s.cfg.bridge+"/forwarding", []byte("1"), 0o644)
}

func (s *serviceProxy) run(ctx context.Context) {
	if err := s.setup(); err != nil {
		klog.Errorf("ClusterIP forwarding disabled: %v", err)
		return
	}
	f := informers.NewSharedInformerFactory(s.client, 0)
	svcs := f.Core().V1().Services()
	slices := f.Discovery().V1().EndpointSlices()
	h := cache.ResourceEventHandlerFuncs{AddFunc: func(any) { s.mark() }, UpdateFunc: func(any, any) { s.mark() }, DeleteFunc: func(any) { s.mark() }}
	_, _ = svcs.Informer().AddEventHandler(h)
	_, _ = slices.Informer().AddEventHandler(h)
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	// Re-applied on every change and every 30 s, so rules lost to someone else's iptables edit
	// come back (kube-proxy resyncs the same way).
	resync := time.NewTicker(30 * time.Second)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.dirty:
		case <-resync.C:
		}
		time.Sleep(100 * time.Millisecond) // coalesce bursts
		sl, _ := slices.Lister().List(everything())
		sv, _ := svcs.Lister().List(everything())
		rules := s.rules(sv, sl)
		cmd := exec.Command("iptables-restore", "-w", "--noflush")
		cmd.Stdin = strings.NewReader(rules)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			klog.Errorf("iptables-restore: %v: %s", err, out.String())
		}
	}
}

func (s *serviceProxy) rules(svcs []*corev1.Service, slices []*discoveryv1.EndpointSlice) string {
	type key struct{ ns, svc, port string }
	eps := map[key][]string{}
	for _, sl := range slices {
		name := sl.Labels[discoveryv1.LabelServiceName]
		if name == "" || sl.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		for _, p := range sl.Ports {
			if p.Port == nil {
				continue
			}
			for _, e := range sl.Endpoints {
				if e.Conditions.Ready != nil && !*e.Conditions.Ready {
					continue
				}
				for _, a := range e.Addresses {
					k := key{sl.Namespace, name, deref(p.Name)}
					eps[k] = append(eps[k], fmt.Sprintf("%s:%d", a, *p.Port))
				}
			}
		}
	}
	var b strings.Builder
	b.WriteString("*nat\n:" + svcChain + " - [0:0]\n")
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].Namespace+"/"+svcs[i].Name < svcs[j].Namespace+"/"+svcs[j].Name })
	for _, svc := range svcs {
		ip := svc.Spec.ClusterIP
		if ip == "" || ip == corev1.ClusterIPNone {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			dests := eps[key{svc.Namespace, svc.Name, sp.Name}]
			sort.Strings(dests)
			proto := strings.ToLower(string(sp.Protocol))
			if proto == "" {
				proto = "tcp"
			}
			match := fmt.Sprintf("-A %s -d %s/32 -p %s --dport %d -m comment --comment \"%s/%s:%s\"", svcChain, ip, proto, sp.Port, svc.Namespace, svc.Name, sp.Name)
			// No endpoints: no rule; the packet follows the service route onto the bridge, where
			// nobody answers (REJECT is not allowed in the nat table).
			for i, d := range dests {
				left := len(dests) - i
				if left > 1 {
					fmt.Fprintf(&b, "%s -m statistic --mode random --probability %.8f -j DNAT --to-destination %s\n", match, 1/float64(left), d)
				} else {
					fmt.Fprintf(&b, "%s -j DNAT --to-destination %s\n", match, d)
				}
			}
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func everything() labels.Selector { return labels.Everything() }
