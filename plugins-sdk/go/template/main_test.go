package main

import (
	"bytes"
	"encoding/json"
	"testing"

	rauta "github.com/rauta-io/rauta/plugins-sdk/go"
)

func TestDecideRequest(t *testing.T) {
	c := defaultConfig()
	got := decideRequest(&c, &rauta.Request{Path: "/users/42"}).Encode()
	want := rauta.Modify().SetResponseHeader("x-rauta-plugin", "go-template").Encode()
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
	d := decideRequest(&c, &rauta.Request{Path: "/blocked"})
	if d.Action() != rauta.ActionReject {
		t.Fatalf("action %d for the blocked path", d.Action())
	}
}

func TestDecideResponse(t *testing.T) {
	got := decideResponse(&rauta.Request{Phase: rauta.PhaseResponse, Status: 503}).Encode()
	want := rauta.Modify().SetResponseHeader("x-rauta-upstream-status", "503").Encode()
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
}

func TestConfig(t *testing.T) {
	c := defaultConfig()
	if err := json.Unmarshal([]byte(`{"value":"v2"}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.Header != "x-rauta-plugin" || c.Value != "v2" || c.validate() != nil {
		t.Fatalf("merged config %+v", c)
	}
	c.Header = ""
	if c.validate() == nil {
		t.Fatal("an empty header name validated")
	}
}
