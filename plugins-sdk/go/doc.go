// Package rauta is the Go SDK for RAUTA plugins: Extism WebAssembly modules that the proxy runs
// in-thread, sandboxed, on every request and response of the routes they are attached to.
//
// The contract is plugins-sdk/ABI.md (ABI version 1). This package has two halves:
//
//   - a pure Go codec, built and tested on every platform: [DecodeInput] turns the call input
//     into a [Request], and [Continue], [Reject] and [Modify] build a [Decision] whose
//     [Decision.Encode] gives exactly the bytes ABI.md specifies;
//   - the WebAssembly glue (GOOS=wasip1 only): [Input], [Output], [Run], [Config], [Log],
//     [NowMs], [VerifySignature] and [RateTake], over the `rauta:host` host functions.
//
// A plugin is a main package built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
//
// that exports on_request and/or on_response:
//
//	//go:wasmexport on_request
//	func onRequest() int32 {
//		return rauta.Run(func(req *rauta.Request) (*rauta.Decision, error) {
//			if req.Path == "/admin" {
//				return rauta.Reject(403, nil, []byte("forbidden\n")), nil
//			}
//			return rauta.Modify().SetResponseHeader("x-plugin", "go"), nil
//		})
//	}
//
//	func main() {}
//
// Export only the phases the plugin needs: the proxy calls each exported function on every
// request, and a missing export costs nothing.
package rauta
