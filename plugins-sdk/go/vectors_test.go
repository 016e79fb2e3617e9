package rauta

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// The shared ABI vectors (plugins-sdk/testdata/vectors.json), generated from the proxy's codec.
type vectorFile struct {
	ABIVersion int `json:"abiVersion"`
	Inputs     []struct {
		Name  string      `json:"name"`
		Input vectorInput `json:"input"`
		Hex   string      `json:"hex"`
	} `json:"inputs"`
	Decisions []struct {
		Name     string         `json:"name"`
		Decision vectorDecision `json:"decision"`
		Hex      string         `json:"hex"`
	} `json:"decisions"`
}

type vectorInput struct {
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
	Body            *string     `json:"body"`
	BodyTruncated   bool        `json:"bodyTruncated"`
}

type vectorDecision struct {
	Action  string      `json:"action"`
	Status  int         `json:"status"`
	Headers [][2]string `json:"headers"`
	Body    string      `json:"body"`
	Ops     []struct {
		Op        string `json:"op"`
		Name      string `json:"name"`
		Value     string `json:"value"`
		Path      string `json:"path"`
		Query     string `json:"query"`
		Authority string `json:"authority"`
		Key       string `json:"key"`
	} `json:"ops"`
}

func loadVectors(t testing.TB) vectorFile {
	t.Helper()
	raw, err := os.ReadFile("../testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if v.ABIVersion != ABIVersion || len(v.Inputs) == 0 || len(v.Decisions) == 0 {
		t.Fatalf("vectors are for ABI %d with %d inputs, %d decisions", v.ABIVersion, len(v.Inputs), len(v.Decisions))
	}
	return v
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pairsOf(p [][2]string) Pairs {
	var out Pairs
	for _, kv := range p {
		out = append(out, Pair{Name: kv[0], Value: kv[1]})
	}
	return out
}

func (v vectorInput) request() *Request {
	r := &Request{
		Method: v.Method, Scheme: v.Scheme, Authority: v.Authority, Path: v.Path, Query: v.Query,
		Client: v.Client, Route: v.Route, Status: v.Status,
		Headers:         pairsOf(v.RequestHeaders),
		ResponseHeaders: pairsOf(v.ResponseHeaders),
		Metadata:        pairsOf(v.Metadata),
		BodyTruncated:   v.BodyTruncated,
	}
	if v.Phase == "response" {
		r.Phase = PhaseResponse
	}
	if v.Body != nil {
		r.HasBody = true
		r.Body = []byte(*v.Body)
	}
	return r
}

func TestInputVectors(t *testing.T) {
	for _, vec := range loadVectors(t).Inputs {
		t.Run(vec.Name, func(t *testing.T) {
			got, err := DecodeInput(mustHex(t, vec.Hex))
			if err != nil {
				t.Fatal(err)
			}
			if want := vec.Input.request(); !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded\n  %+v\nwant\n  %+v", got, want)
			}
			if got.Phase.String() != vec.Input.Phase {
				t.Fatalf("phase %q, want %q", got.Phase, vec.Input.Phase)
			}
		})
	}
}

// build makes the vector's decision with the SDK's builders, one method per op.
func (v vectorDecision) build(t *testing.T) *Decision {
	switch v.Action {
	case "continue":
		return Continue()
	case "reject":
		return Reject(v.Status, pairsOf(v.Headers), []byte(v.Body))
	case "modify":
		d := Modify()
		for _, op := range v.Ops {
			switch op.Op {
			case "setRequestHeader":
				d.SetRequestHeader(op.Name, op.Value)
			case "addRequestHeader":
				d.AddRequestHeader(op.Name, op.Value)
			case "removeRequestHeader":
				d.RemoveRequestHeader(op.Name)
			case "setPath":
				d.SetPath(op.Path)
			case "setQuery":
				d.SetQuery(op.Query)
			case "setAuthority":
				d.SetAuthority(op.Authority)
			case "setResponseHeader":
				d.SetResponseHeader(op.Name, op.Value)
			case "addResponseHeader":
				d.AddResponseHeader(op.Name, op.Value)
			case "removeResponseHeader":
				d.RemoveResponseHeader(op.Name)
			case "setMetadata":
				d.SetMetadata(op.Key, op.Value)
			default:
				t.Fatalf("vector op %q has no builder", op.Op)
			}
		}
		return d
	}
	t.Fatalf("unknown vector action %q", v.Action)
	return nil
}

func TestDecisionVectors(t *testing.T) {
	for _, vec := range loadVectors(t).Decisions {
		t.Run(vec.Name, func(t *testing.T) {
			d := vec.Decision.build(t)
			if got := hex.EncodeToString(d.Encode()); got != vec.Hex {
				t.Fatalf("encoded\n  %s\nwant\n  %s", got, vec.Hex)
			}
			if got := hex.EncodeToString(d.Encode()); got != vec.Hex {
				t.Fatalf("second Encode differs: %s", got)
			}
			if d.Ops() != len(vec.Decision.Ops) {
				t.Fatalf("%d ops, want %d", d.Ops(), len(vec.Decision.Ops))
			}
		})
	}
}

// Every vector's op set covers every opcode, so no builder goes untested.
func TestVectorsCoverEveryOp(t *testing.T) {
	seen := map[string]bool{}
	for _, vec := range loadVectors(t).Decisions {
		for _, op := range vec.Decision.Ops {
			seen[op.Op] = true
		}
	}
	if len(seen) != opSetMetadata {
		t.Fatalf("vectors cover %d of %d ops", len(seen), opSetMetadata)
	}
}
