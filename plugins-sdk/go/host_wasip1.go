//go:build wasip1

package rauta

import "unsafe"

// The host functions of ABI.md. A Go string parameter is passed as (i32 pointer, i32 length),
// which is exactly the (ptr, len) pairs of the `rauta:host` signatures.

//go:wasmimport extism:host/env input_length
func extismInputLength() uint64

//go:wasmimport rauta:host input_copy
func hostInputCopy(dst unsafe.Pointer) uint32

//go:wasmimport rauta:host output_set
func hostOutputSet(out string)

//go:wasmimport rauta:host log
func hostLog(level int32, msg string)

//go:wasmimport rauta:host now_ms
func hostNowMs() float64

//go:wasmimport rauta:host verify_signature
func hostVerifySignature(alg int32, key, data, sig string) int32

//go:wasmimport rauta:host rate_take
func hostRateTake(key string, ratePerSecond, burst float64) float64

//go:wasmimport rauta:host cache_get
func hostCacheGet(key string, dst unsafe.Pointer, dstCap int32) int32

//go:wasmimport rauta:host cache_set
func hostCacheSet(key, value string, ttlMs float64) int32

// view is b as a string without a copy, for passing to the host (which only reads it).
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
