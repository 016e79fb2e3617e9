package main

import (
	"fmt"
	"net"
	"os"
)

// dnsPlaceholder stands in for the coredns/coredns image of the Gateway API conformance suite's
// base manifests. Only its UDPRoute tests use that pod, and RAUTA claims no UDP support; the
// suite still waits for every pod of its namespaces to run. It answers every query on UDP 53
// with REFUSED, so it never forwards DNS anywhere (the suite's Corefile would forward to
// 8.8.8.8, which this machine must not reach) and never pretends to resolve.
func dnsPlaceholder(_ []string) {
	conn, err := net.ListenPacket("udp", ":53")
	if err != nil {
		fmt.Fprintf(os.Stderr, "dns-placeholder: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("dns-placeholder: answering REFUSED on udp :53 (a stand-in for coredns; forwards nothing)")
	buf := make([]byte, 512)
	for {
		n, addr, err := conn.ReadFrom(buf)
		if err != nil {
			continue
		}
		if reply := refused(buf[:n]); reply != nil {
			_, _ = conn.WriteTo(reply, addr)
		}
	}
}

// refused turns a DNS query into its REFUSED answer: same id and question, QR set, RCODE 5.
func refused(q []byte) []byte {
	if len(q) < 12 || q[2]&0x80 != 0 {
		return nil // not a query
	}
	r := append([]byte(nil), q...)
	r[2] = 0x80 | (q[2] & 0x79) // QR=1, keep opcode and RD
	r[3] = 0x05                 // RA=0, RCODE=REFUSED
	// no answer, authority or additional records
	r[6], r[7], r[8], r[9], r[10], r[11] = 0, 0, 0, 0, 0, 0
	return r
}
