//go:build wasip1

package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	rauta "github.com/rauta-io/rauta/plugins-sdk/go"
)

//go:wasmexport on_request
func onRequest() int32 { return rauta.Run(handle) }

//go:wasmexport on_response
func onResponse() int32 { return rauta.Run(handle) }

func handle(req *rauta.Request) (*rauta.Decision, error) {
	switch v, _ := req.Header("x-hostcheck-fail"); v {
	case "error":
		return nil, errors.New("hostcheck failed as asked")
	case "panic":
		panic("hostcheck panicked as asked")
	}
	if _, ok := req.Header("x-hostcheck-modify"); ok {
		return everyOp(req), nil
	}
	if v, ok := req.Header("x-hostcheck-log"); ok {
		level, msg, _ := strings.Cut(v, ":")
		n, err := strconv.Atoi(level)
		if err != nil {
			return nil, err
		}
		rauta.Log(rauta.Level(n), msg)
	}
	a := answer{Input: echo(req), NowMs: rauta.NowMs(), Config: json.RawMessage("null")}
	if raw, ok := rauta.RawConfig(); ok {
		var decoded map[string]any
		if err := rauta.Config(&decoded); err != nil {
			return nil, err
		}
		a.Config = json.RawMessage(raw)
	}
	var err error
	if v, ok := req.Header("x-hostcheck-verify"); ok {
		if a.Verify, err = verify(v); err != nil {
			return nil, err
		}
	}
	if v, ok := req.Header("x-hostcheck-rate"); ok {
		if a.Rate, err = rate(v); err != nil {
			return nil, err
		}
	}
	if v, ok := req.Header("x-hostcheck-cache"); ok {
		if a.Cache, err = cache(v); err != nil {
			return nil, err
		}
	}
	body, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	return rauta.Reject(200, rauta.Pairs{{Name: "content-type", Value: "application/json"}}, body), nil
}

// everyOp answers the ops valid in the phase, each derived from the input.
func everyOp(req *rauta.Request) *rauta.Decision {
	d := rauta.Continue()
	if req.Phase == rauta.PhaseRequest {
		d.SetRequestHeader("x-method", req.Method).
			AddRequestHeader("x-client", req.Client).
			RemoveRequestHeader("x-hostcheck-modify").
			SetPath("/echo" + req.Path).
			SetQuery("q=" + req.Query).
			SetAuthority("upstream.internal:8080")
	}
	return d.SetResponseHeader("x-route", req.Route).
		AddResponseHeader("x-status", strconv.Itoa(int(req.Status))).
		RemoveResponseHeader("server").
		SetMetadata("hostcheck.path", req.Path)
}

func verify(v string) (*verifyAnswer, error) {
	f, err := fields(v, 4)
	if err != nil {
		return nil, err
	}
	alg, err := strconv.Atoi(f[0])
	if err != nil {
		return nil, err
	}
	var b [3][]byte
	for i := range b {
		if b[i], err = hex.DecodeString(f[i+1]); err != nil {
			return nil, err
		}
	}
	ok, err := rauta.VerifySignature(rauta.Alg(alg), b[0], b[1], b[2])
	a := &verifyAnswer{Valid: ok}
	if err != nil {
		a.Error = err.Error()
	}
	return a, nil
}

func rate(v string) (*rateAnswer, error) {
	f, err := fields(v, 3)
	if err != nil {
		return nil, err
	}
	perSecond, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		return nil, err
	}
	burst, err := strconv.ParseFloat(f[2], 64)
	if err != nil {
		return nil, err
	}
	r := rauta.RateTake(f[0], perSecond, burst)
	return &rateAnswer{Allowed: r.Allowed(), Remaining: r.Remaining(), RetryAfter: r.RetryAfter()}, nil
}

func cache(v string) (*cacheAnswer, error) {
	op, rest, _ := strings.Cut(v, ":")
	if op == "get" {
		value, ok := rauta.CacheGet(rest)
		return &cacheAnswer{Found: ok, Value: string(value)}, nil
	}
	f, err := fields(rest, 3)
	if err != nil {
		return nil, err
	}
	ttl, err := strconv.ParseFloat(f[2], 64)
	if err != nil {
		return nil, err
	}
	return &cacheAnswer{Stored: rauta.CacheSet(f[0], []byte(f[1]), ttl)}, nil
}
