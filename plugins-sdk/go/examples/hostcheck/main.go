// Command hostcheck exercises every call of the Go SDK through the proxy's sandbox; the SDK's
// test (test/unit/plugins/sdk-go.spec.ts) drives it. Both phases answer a REJECT 200 whose JSON
// body echoes the decoded input in the shape of plugins-sdk/testdata/vectors.json, plus the
// results of the host calls that request headers ask for:
//
//	x-hostcheck-log:    "<level>:<message>"                    Log
//	x-hostcheck-verify: "<alg>:<key hex>:<data hex>:<sig hex>"  VerifySignature
//	x-hostcheck-rate:   "<key>:<rate>:<burst>"                 RateTake
//	x-hostcheck-cache:  "set:<key>:<value>:<ttlMs>" | "get:<key>"  CacheSet / CacheGet
//	x-hostcheck-fail:   "error" | "panic"                      a failing call
//	x-hostcheck-modify: any                                    answer a MODIFY of every op instead
package main

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	rauta "github.com/rauta-io/rauta/plugins-sdk/go"
)

// echoInput is a Request in the JSON shape of the vectors' "input" field.
type echoInput struct {
	Phase           string      `json:"phase"`
	Method          string      `json:"method"`
	Scheme          string      `json:"scheme"`
	Authority       string      `json:"authority"`
	Path            string      `json:"path"`
	Query           string      `json:"query"`
	Client          string      `json:"client"`
	Route           string      `json:"route"`
	Status          uint16      `json:"status"`
	RequestHeaders  [][2]string `json:"requestHeaders"`
	ResponseHeaders [][2]string `json:"responseHeaders"`
	Metadata        [][2]string `json:"metadata"`
	Body            *string     `json:"body,omitempty"`
	BodyTruncated   bool        `json:"bodyTruncated,omitempty"`
}

type verifyAnswer struct {
	Valid bool   `json:"valid"`
	Error string `json:"error,omitempty"`
}

type rateAnswer struct {
	Allowed    bool    `json:"allowed"`
	Remaining  int     `json:"remaining"`
	RetryAfter float64 `json:"retryAfter"`
}

type cacheAnswer struct {
	Found  bool   `json:"found,omitempty"`
	Value  string `json:"value,omitempty"`
	Stored bool   `json:"stored,omitempty"`
}

type answer struct {
	Input  echoInput       `json:"input"`
	NowMs  float64         `json:"nowMs"`
	Config json.RawMessage `json:"config"`
	Verify *verifyAnswer   `json:"verify,omitempty"`
	Rate   *rateAnswer     `json:"rate,omitempty"`
	Cache  *cacheAnswer    `json:"cache,omitempty"`
}

func pairs(p rauta.Pairs) [][2]string {
	out := make([][2]string, len(p))
	for i, kv := range p {
		out[i] = [2]string{kv.Name, kv.Value}
	}
	return out
}

func echo(req *rauta.Request) echoInput {
	e := echoInput{
		Phase: req.Phase.String(), Method: req.Method, Scheme: req.Scheme,
		Authority: req.Authority, Path: req.Path, Query: req.Query, Client: req.Client,
		Route: req.Route, Status: req.Status,
		RequestHeaders:  pairs(req.Headers),
		ResponseHeaders: pairs(req.ResponseHeaders),
		Metadata:        pairs(req.Metadata),
		BodyTruncated:   req.BodyTruncated,
	}
	if req.HasBody {
		body := string(req.Body)
		e.Body = &body
	}
	return e
}

// fields splits a header value at ':' into exactly n fields.
func fields(v string, n int) ([]string, error) {
	f := strings.SplitN(v, ":", n)
	if len(f) != n {
		return nil, errors.New("want " + strconv.Itoa(n) + " ':'-separated fields in " + strconv.Quote(v))
	}
	return f, nil
}

func main() {}
