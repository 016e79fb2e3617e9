//go:build wasip1

package rauta

import (
	"encoding/json"
	"errors"
	"unsafe"

	pdk "github.com/extism/go-pdk"
)

// Handler answers one call; a nil Decision is CONTINUE.
type Handler func(req *Request) (*Decision, error)

// Run is the body of an on_request or on_response export: it decodes the input, calls h and
// sets its decision as the output. It returns the export's result: 0, or 1 after a decode
// error, an error from h or a panic in h, which it also reports to the host (Extism error_set)
// so the call is a plugin failure with that message.
func Run(h Handler) (rc int32) {
	defer func() {
		if p := recover(); p != nil {
			rc = Fail(errors.New("panic: " + panicText(p)))
		}
	}()
	req, err := Input()
	if err != nil {
		return Fail(err)
	}
	d, err := h(req)
	if err != nil {
		return Fail(err)
	}
	if d != nil {
		Output(d)
	}
	return 0
}

// Fail reports err to the host as this call's error and returns 1, the export's result for a
// failure. The proxy answers the request by the plugin's failurePolicy.
func Fail(err error) int32 {
	pdk.SetErrorString(err.Error())
	return 1
}

// Input reads and decodes this call's input with one host call (`input_copy`).
func Input() (*Request, error) {
	// Extism's input_length can exceed the input (Extism JS 1.0.3 reports the byte length of a
	// view's whole ArrayBuffer); input_copy returns the true count, so size by the first and
	// trust the second.
	n := extismInputLength()
	if n == 0 {
		return decodeOwned(nil)
	}
	buf := make([]byte, n)
	got := hostInputCopy(unsafe.Pointer(&buf[0]))
	if uint64(got) > n {
		panic("rauta: input_copy wrote more than input_length")
	}
	return decodeOwned(buf[:got])
}

// Output sets d as this call's output (`output_set`); a CONTINUE sets nothing, which the
// proxy reads as CONTINUE.
func Output(d *Decision) {
	if b := d.bytes(); len(b) > 0 {
		hostOutputSet(view(b))
	}
}

// Config JSON-decodes the plugin's configuration (the RautaPlugin's spec.config) into v. With
// no configuration it leaves v as it is and returns nil. The configuration does not change
// during an instance's life: read it once, on the first call, and keep it.
func Config(v any) error {
	s, ok := RawConfig()
	if !ok {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}

// RawConfig returns the configuration JSON as the host passed it (Extism config key
// "config"); false when there is none.
func RawConfig() (string, bool) {
	s, ok := pdk.GetConfig("config")
	return s, ok && s != ""
}

// Log writes msg to the proxy's log at level, with the plugin's name and digest. The host
// rate-limits plugin logs and truncates long lines.
func Log(level Level, msg string) {
	hostLog(int32(level), msg)
}

// NowMs is the wall clock in milliseconds since the Unix epoch.
func NowMs() float64 {
	return hostNowMs()
}

// VerifySignature checks sig over data with key. It returns ErrKeyUnusable when the host cannot
// use key with alg; see [Alg] for the key and signature formats.
func VerifySignature(alg Alg, key, data, sig []byte) (bool, error) {
	switch hostVerifySignature(int32(alg), view(key), view(data), view(sig)) {
	case 1:
		return true, nil
	case 0:
		return false, nil
	default:
		return false, ErrKeyUnusable
	}
}

// RateTake takes one token from the host's token bucket for key (per plugin and worker
// process), which refills at ratePerSecond up to burst tokens. ratePerSecond must be > 0 and
// burst ≥ 1; otherwise the host denies with a RetryAfter of 1 second.
func RateTake(key string, ratePerSecond, burst float64) RateResult {
	return RateResult(hostRateTake(key, ratePerSecond, burst))
}

// CacheGet returns the bytes CacheSet stored under key (for this plugin version, in this worker
// process), or ok false when absent or expired. The host keeps them across calls.
func CacheGet(key string) (value []byte, ok bool) {
	buf := make([]byte, 256)
	n := hostCacheGet(key, unsafe.Pointer(&buf[0]), int32(len(buf)))
	if n < 0 {
		return nil, false
	}
	if int(n) > len(buf) {
		buf = make([]byte, n)
		if n = hostCacheGet(key, unsafe.Pointer(&buf[0]), int32(len(buf))); n < 0 || int(n) > len(buf) {
			return nil, false
		}
	}
	return buf[:n], true
}

// CacheSet stores value under key for ttlMs milliseconds; false when the host refused it (a
// key over 8 KiB, a value over 64 KiB, a ttl that is not positive).
func CacheSet(key string, value []byte, ttlMs float64) bool {
	return hostCacheSet(key, view(value), ttlMs) == 1
}

func panicText(p any) string {
	switch v := p.(type) {
	case error:
		return v.Error()
	case string:
		return v
	default:
		return "non-error value"
	}
}
