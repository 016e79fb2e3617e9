package main

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// gatewayAddressesAnnotation lets a pod (the RAUTA proxy) claim Gateway addresses from the
// harness's pool: each is added to the pod's eth0 (or, for hostNetwork pods, to the bridge),
// so the host and every pod reach it on the bridge subnet. Which pod gets which address is the
// RAUTA control plane's decision; the node only checks the address is in the pool.
const gatewayAddressesAnnotation = "rauta.dev/gateway-addresses"

func gatewayAddresses(c config, p *corev1.Pod) ([]netip.Addr, error) {
	v := strings.TrimSpace(p.Annotations[gatewayAddressesAnnotation])
	if v == "" {
		return nil, nil
	}
	var out []netip.Addr
	for _, f := range strings.Split(v, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil || !c.gatewayPool.Contains(a) {
			return nil, fmt.Errorf("annotation %s: %q is not an address in the gateway pool %s", gatewayAddressesAnnotation, f, c.gatewayPool)
		}
		out = append(out, a)
	}
	return out, nil
}

// addGatewayAddresses returns an undo function that removes what was added.
func addGatewayAddresses(c config, pn *podNet, addrs []netip.Addr) (func(), error) {
	var undo []func()
	undoAll := func() {
		for _, u := range undo {
			u()
		}
	}
	for _, a := range addrs {
		cidr := a.String() + "/32"
		var add, del []string
		if pn != nil {
			add = []string{"-n", pn.netns, "addr", "add", cidr, "dev", "eth0"}
			del = []string{"-n", pn.netns, "addr", "del", cidr, "dev", "eth0"}
		} else {
			add = []string{"addr", "add", cidr, "dev", c.bridge}
			del = []string{"addr", "del", cidr, "dev", c.bridge}
		}
		if err := ipCmd(add...); err != nil {
			undoAll()
			return nil, err
		}
		undo = append(undo, func() { _ = ipCmd(del...); forgetNeighbour(c, a) })
		forgetNeighbour(c, a)
	}
	return undoAll, nil
}
