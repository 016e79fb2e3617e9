// Command noop is the smallest RAUTA plugin: on_request returns 0 and sets no output, which the
// proxy reads as CONTINUE. It does not even read its input; it measures what a plugin call
// costs. Build:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o noop.wasm .
package main

//go:wasmexport on_request
func onRequest() int32 { return 0 }

func main() {}
