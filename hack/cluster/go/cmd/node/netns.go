package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"k8s.io/klog/v2"
)

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// podNet names a pod's network namespace and its veth pair. Names derive from the pod UID (not
// the IP) so a recycled IP can never collide with a namespace still being torn down.
type podNet struct {
	netns, hostVeth, tmpVeth string
	ip                       netip.Addr
}

func newPodNet(c config, uid string, ip netip.Addr) podNet {
	short := strings.ReplaceAll(uid, "-", "")[:10] // veth names are limited to 15 bytes
	return podNet{netns: c.netnsPrefix + short, hostVeth: c.vethPrefix + short, tmpVeth: c.vethPrefix + "x" + short[:9], ip: ip}
}

func (p podNet) setup(c config) error {
	bits := netip.MustParsePrefix(c.podCIDR).Bits()
	steps := [][]string{
		{"netns", "add", p.netns},
		{"link", "add", p.hostVeth, "type", "veth", "peer", "name", p.tmpVeth},
		{"link", "set", p.tmpVeth, "netns", p.netns},
		{"link", "set", p.hostVeth, "master", c.bridge},
		{"link", "set", p.hostVeth, "up"},
		{"-n", p.netns, "link", "set", p.tmpVeth, "name", "eth0"},
		{"-n", p.netns, "addr", "add", p.ip.String() + "/" + strconv.Itoa(bits), "dev", "eth0"},
		{"netns", "exec", p.netns, "sysctl", "-q", "-w", "net.ipv4.conf.eth0.arp_notify=1"},
		{"-n", p.netns, "link", "set", "eth0", "up"},
		{"-n", p.netns, "link", "set", "lo", "up"},
		// Deliberately no default route: a pod can reach its subnet (pods, the API server on the
		// bridge address, the Gateway pool) and ClusterIPs via the host's DNAT, and nothing else.
		{"-n", p.netns, "route", "add", c.serviceCIDR, "via", c.bridgeIP},
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			p.teardown()
			return err
		}
	}
	forgetNeighbour(c, p.ip)
	// Pod → ClusterIP → same pod leaves and re-enters the bridge through one port.
	_ = os.WriteFile("/sys/class/net/"+p.hostVeth+"/brport/hairpin_mode", []byte("1"), 0o644)
	return nil
}

// forgetNeighbour drops the host's ARP entry for an address that just moved to another MAC (a
// recycled pod IP, a Gateway address claimed by a new pod). A REACHABLE entry is trusted for up
// to 45 s without re-checking, so the host would keep sending to the old pod's MAC: probes fail
// and the address looks dead although the new pod listens. Pods on the bridge learn the new MAC
// from the gratuitous ARP that arp_notify sends when eth0 comes up.
func forgetNeighbour(c config, ip netip.Addr) {
	_ = exec.Command("ip", "neigh", "flush", "to", ip.String(), "dev", c.bridge).Run()
}

func (p podNet) teardown() {
	killNetnsPids(p.netns)
	// Deleting the namespace destroys eth0 and with it the host end of the pair.
	if err := ipCmd("netns", "delete", p.netns); err != nil && !strings.Contains(err.Error(), "No such file") {
		klog.Warningf("%v", err)
	}
	_ = exec.Command("ip", "link", "delete", p.hostVeth).Run()
}

// killNetnsPids SIGKILLs whatever still runs in a namespace we own (orphans of a crashed node).
func killNetnsPids(netns string) {
	out, _ := exec.Command("ip", "netns", "pids", netns).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func cleanupStaleNetns(c config) {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if strings.HasPrefix(name, c.netnsPrefix) {
			klog.Infof("removing stale network namespace %s", name)
			killNetnsPids(name)
			_ = ipCmd("netns", "delete", name)
		}
	}
	out, _ = exec.Command("ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if strings.HasPrefix(name, c.vethPrefix) {
				_ = ipCmd("link", "delete", name)
			}
		}
	}
}

// cleanupStalePods kills container processes a previous node incarnation recorded (pid +
// kernel start time, so a reused PID is never hit) — hostNetwork pods have no namespace to sweep —
// and drops that incarnation's volumes.
func cleanupStalePods(stateDir string) {
	files, _ := filepath.Glob(filepath.Join(stateDir, "pods", "*", "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(string(b), "\n")
		pid, err := strconv.Atoi(lines[0])
		if err != nil || len(lines) < 2 || pid <= 1 {
			continue
		}
		if st, ok := strings.CutPrefix(lines[1], "starttime:"); ok && st != "" && procStartTime(pid) == st {
			klog.Infof("killing stale container process %d (%s)", pid, f)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = os.RemoveAll(filepath.Join(stateDir, "pods"))
}
