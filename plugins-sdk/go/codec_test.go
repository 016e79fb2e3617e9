package rauta

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func vectorBytes(t testing.TB, name string) []byte {
	for _, vec := range loadVectors(t).Inputs {
		if vec.Name == name {
			return mustHex(t, vec.Hex)
		}
	}
	t.Fatalf("no input vector %q", name)
	return nil
}

func decodeErr(t *testing.T, buf []byte) *DecodeError {
	t.Helper()
	req, err := DecodeInput(buf)
	var de *DecodeError
	if !errors.As(err, &de) || req != nil {
		t.Fatalf("want a *DecodeError, got %v, %v", req, err)
	}
	return de
}

func TestDecodeRejectsEveryTruncation(t *testing.T) {
	for _, vec := range loadVectors(t).Inputs {
		full := mustHex(t, vec.Hex)
		for n := 0; n < len(full); n++ {
			decodeErr(t, full[:n])
		}
	}
}

func TestDecodeRejectsMalformedHeaders(t *testing.T) {
	base := vectorBytes(t, "request-headers")
	mutate := func(i int, b byte) []byte {
		out := bytes.Clone(base)
		out[i] = b
		return out
	}
	cases := map[string][]byte{
		"magic":                    mutate(0, 'X'),
		"version":                  mutate(1, 2),
		"phase":                    mutate(2, 2),
		"trailing":                 append(bytes.Clone(base), 0),
		"body flag without a body": mutate(3, 1),
	}
	for name, buf := range cases {
		t.Run(name, func(t *testing.T) {
			if e := decodeErr(t, buf); e.Error() == "" {
				t.Fatal("empty message")
			}
		})
	}
}

func TestDecodeRefusesHugeCounts(t *testing.T) {
	// request-minimal with its request-header count set to 0xffffffff
	buf := vectorBytes(t, "request-minimal")
	at := len(buf) - 12
	copy(buf[at:], []byte{0xff, 0xff, 0xff, 0xff})
	if e := decodeErr(t, buf); e.Offset != at {
		t.Fatalf("stopped at %d, want %d: %v", e.Offset, at, e)
	}
}

func TestDecodeCopiesItsInput(t *testing.T) {
	buf := vectorBytes(t, "request-with-body")
	req, err := DecodeInput(buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 0
	}
	if req.Method != "PUT" || string(req.Body) != `{"name":"x"}` {
		t.Fatalf("decoded request changed with its buffer: %q %q", req.Method, req.Body)
	}
	if cap(req.Body) != len(req.Body) {
		t.Fatal("Body has spare capacity over the input")
	}
}

func TestRequestAccessors(t *testing.T) {
	req, err := DecodeInput(vectorBytes(t, "request-headers"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := req.Header("Accept"); !ok || v != "application/json" {
		t.Fatalf("Header(Accept) = %q, %v", v, ok)
	}
	if v, ok := req.Header("x-multi"); !ok || v != "a" {
		t.Fatalf("Header(x-multi) = %q, %v", v, ok)
	}
	if got := req.Values("X-Multi"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("Values(X-Multi) = %q", got)
	}
	if _, ok := req.Header("missing"); ok {
		t.Fatal("found a missing header")
	}
	if req.Values("missing") != nil {
		t.Fatal("values of a missing header")
	}
	if req.HasBody || req.Body != nil {
		t.Fatal("body without the body flag")
	}

	resp, err := DecodeInput(vectorBytes(t, "response"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := resp.ResponseHeader("Content-Type"); !ok || v != "text/plain" {
		t.Fatalf("ResponseHeader = %q, %v", v, ok)
	}
	if v, ok := resp.Meta("k"); !ok || v != "v" {
		t.Fatalf("Meta(k) = %q, %v", v, ok)
	}
	if _, ok := resp.Meta("K"); ok {
		t.Fatal("metadata keys are case-sensitive")
	}
}

func TestContinueBecomesModify(t *testing.T) {
	d := Continue()
	if len(d.Encode()) != 0 || d.Action() != ActionContinue {
		t.Fatal("CONTINUE is not an empty output")
	}
	d.SetMetadata("k", "v")
	want := "52010201000000" + "0a" + "01000000" + "6b" + "01000000" + "76"
	if got := hex.EncodeToString(d.Encode()); got != want || d.Action() != ActionModify {
		t.Fatalf("got %s (%d), want %s", got, d.Action(), want)
	}
}

func TestEncodeReturnsACopy(t *testing.T) {
	d := Modify().SetPath("/a")
	first := d.Encode()
	d.SetQuery("b=1")
	if hex.EncodeToString(first) != "5201020100000004"+"02000000"+"2f61" {
		t.Fatalf("an earlier Encode changed: %x", first)
	}
	if d.Ops() != 2 {
		t.Fatalf("%d ops", d.Ops())
	}
}

func TestRejectTakesNoOps(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("an op on a REJECT did not panic")
		}
	}()
	Reject(403, nil, nil).SetPath("/x")
}

func TestRejectOutOfRangeStatusIsNotWrapped(t *testing.T) {
	// 65536+403 must not become 403
	b := Reject(65939, nil, nil).Encode()
	if b[3] != 0 || b[4] != 0 {
		t.Fatalf("status bytes %x", b[3:5])
	}
}

func TestRateResult(t *testing.T) {
	if r := RateResult(3.7); !r.Allowed() || r.Remaining() != 3 || r.RetryAfter() != 0 {
		t.Fatal("allowed result")
	}
	if r := RateResult(-0.25); r.Allowed() || r.Remaining() != 0 || r.RetryAfter() != 0.25 {
		t.Fatal("denied result")
	}
}

func FuzzDecodeInput(f *testing.F) {
	for _, vec := range loadVectors(f).Inputs {
		f.Add(mustHex(f, vec.Hex))
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		req, err := DecodeInput(buf)
		if (req == nil) == (err == nil) {
			t.Fatalf("request %v with error %v", req, err)
		}
	})
}

func BenchmarkDecodeInput(b *testing.B) {
	buf := vectorBytes(b, "request-headers")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeInput(buf); err != nil {
			b.Fatal(err)
		}
	}
}
