package rauta

import "strings"

// Phase tells which export the proxy called.
type Phase uint8

const (
	// PhaseRequest is on_request: after routing, before the request goes upstream.
	PhaseRequest Phase = 0
	// PhaseResponse is on_response: when the upstream response head arrived.
	PhaseResponse Phase = 1
)

// String gives "request" or "response", the names ABI.md and the test vectors use.
func (p Phase) String() string {
	if p == PhaseResponse {
		return "response"
	}
	return "request"
}

// Pair is one header field or metadata entry.
type Pair struct {
	Name  string
	Value string
}

// Pairs is an ordered list of name/value pairs: a repeated header appears once per value, in
// arrival order.
type Pairs []Pair

// Get returns the first value named name (exact match).
func (p Pairs) Get(name string) (string, bool) {
	for i := range p {
		if p[i].Name == name {
			return p[i].Value, true
		}
	}
	return "", false
}

// Values returns every value named name (exact match), in order; nil when there is none.
func (p Pairs) Values(name string) []string {
	var out []string
	for i := range p {
		if p[i].Name == name {
			out = append(out, p[i].Value)
		}
	}
	return out
}

// Request is one call's input: the request (and, in the response phase, the upstream response
// head) as the proxy sees it.
//
// The strings and Body of a decoded Request share one buffer, so keeping any of them keeps the
// whole input alive; copy what a plugin keeps across calls (strings.Clone).
type Request struct {
	Phase Phase
	// Method is the request method, e.g. "GET".
	Method string
	// Scheme is "http" or "https".
	Scheme string
	// Authority is the Host / :authority as the client sent it.
	Authority string
	// Path is normalized (RFC 3986), without the query.
	Path string
	// Query is without the '?', "" when absent.
	Query string
	// Client is the client address, e.g. "127.0.0.1" or "::1".
	Client string
	// Route is the route id "<namespace>/<name>/rule/<index>".
	Route string
	// Status is the upstream status in the response phase, 0 in the request phase.
	Status uint16
	// Headers are the request headers; names are lowercase.
	Headers Pairs
	// ResponseHeaders are the upstream response headers (response phase only).
	ResponseHeaders Pairs
	// Metadata is the request's metadata map, as earlier plugins set it.
	Metadata Pairs
	// HasBody is set when a body follows (the plugin asked for bodies); Body is nil otherwise.
	HasBody bool
	// Body is the request body, at most maxBodyBytes of it.
	Body []byte
	// BodyTruncated is set when Body was cut at maxBodyBytes.
	BodyTruncated bool
}

// Header returns the first value of the request header name (case-insensitive).
func (r *Request) Header(name string) (string, bool) {
	return r.Headers.Get(lower(name))
}

// Values returns every value of the request header name (case-insensitive), in arrival order.
func (r *Request) Values(name string) []string {
	return r.Headers.Values(lower(name))
}

// ResponseHeader returns the first value of the response header name (case-insensitive).
func (r *Request) ResponseHeader(name string) (string, bool) {
	return r.ResponseHeaders.Get(lower(name))
}

// Meta returns the metadata value of key (exact match).
func (r *Request) Meta(key string) (string, bool) {
	return r.Metadata.Get(key)
}

// lower lowercases ASCII header names, without allocating when name already is.
func lower(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}
