//go:build wasip1

package main

import rauta "github.com/rauta-io/rauta/plugins-sdk/go"

// current is the configuration, read on the first call: it does not change during an
// instance's life.
var current *config

func loadConfig() (*config, error) {
	if current != nil {
		return current, nil
	}
	c := defaultConfig()
	if err := rauta.Config(&c); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	current = &c
	return current, nil
}

//go:wasmexport on_request
func onRequest() int32 {
	return rauta.Run(func(req *rauta.Request) (*rauta.Decision, error) {
		c, err := loadConfig()
		if err != nil {
			return nil, err
		}
		d := decideRequest(c, req)
		if d.Action() == rauta.ActionReject {
			rauta.Log(rauta.LevelInfo, "rejected "+req.Path)
		}
		return d, nil
	})
}

//go:wasmexport on_response
func onResponse() int32 {
	return rauta.Run(func(req *rauta.Request) (*rauta.Decision, error) {
		return decideResponse(req), nil
	})
}
