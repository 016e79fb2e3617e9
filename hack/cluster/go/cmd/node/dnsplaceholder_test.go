package main

import "testing"

func TestRefusedKeepsIDAndQuestion(t *testing.T) {
	// id 0xabcd, RD, one question: example.com A IN
	q := []byte{0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
		7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1}
	r := refused(q)
	if r[0] != 0xab || r[1] != 0xcd {
		t.Fatalf("id changed: %x", r[:2])
	}
	if r[2]&0x80 == 0 || r[2]&0x01 == 0 {
		t.Fatalf("want QR and RD set, got %08b", r[2])
	}
	if r[3]&0x0f != 5 {
		t.Fatalf("want RCODE 5 (REFUSED), got %d", r[3]&0x0f)
	}
	if string(r[12:]) != string(q[12:]) {
		t.Fatal("question changed")
	}
	if refused(r) != nil {
		t.Fatal("answered a response")
	}
	if refused(q[:5]) != nil {
		t.Fatal("answered a fragment")
	}
}
