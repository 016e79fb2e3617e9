// Command template is a RAUTA plugin to start from: it adds a response header to every response
// of the routes it is attached to, rejects one path with 403, and stamps the upstream status on
// responses. Copy this directory, then build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o template.wasm .
//
// The decisions live here, in plain Go tested natively (go test); plugin_wasip1.go holds the
// exports that feed them.
package main

import (
	"errors"
	"strconv"

	rauta "github.com/rauta-io/rauta/plugins-sdk/go"
)

// config is the RautaPlugin's spec.config; absent fields keep their defaults.
type config struct {
	// Header and Value make the response header added to every response.
	Header string `json:"header"`
	Value  string `json:"value"`
	// BlockPath is answered with 403 instead of going upstream.
	BlockPath string `json:"blockPath"`
}

func defaultConfig() config {
	return config{Header: "x-rauta-plugin", Value: "go-template", BlockPath: "/blocked"}
}

func (c *config) validate() error {
	if c.Header == "" {
		return errors.New("config: header must not be empty")
	}
	return nil
}

// blocked is the local answer for BlockPath.
var blocked = []byte("blocked by the rauta go template\n")

// decideRequest is on_request's decision: reject BlockPath, else add the header to the
// response this request will get (a response op from on_request applies to it).
func decideRequest(c *config, req *rauta.Request) *rauta.Decision {
	if req.Path == c.BlockPath {
		return rauta.Reject(403, rauta.Pairs{{Name: "content-type", Value: "text/plain; charset=utf-8"}}, blocked)
	}
	return rauta.Modify().SetResponseHeader(c.Header, c.Value)
}

// decideResponse is on_response's decision: stamp the upstream status.
func decideResponse(req *rauta.Request) *rauta.Decision {
	return rauta.Modify().SetResponseHeader("x-rauta-upstream-status", strconv.Itoa(int(req.Status)))
}

func main() {}
