// A gRPC external authorization server (envoy.service.auth.v3.Authorization/Check) built on the
// official protobuf types of go-control-plane, for the ExternalAuth protocol GRPC tests: the
// answers an OPA-Envoy or Authorino deployment gives, decided by a fixed policy on the request.
//
//	Authorization: Bearer good   → OK, x-auth-user: alice set, x-remove-me removed,
//	                               x-auth-checked added to the response, ?trace=1 set
//	Authorization: Bearer slow   → OK after 2 s (for timeouts)
//	Authorization: Bearer broken → a gRPC error (codes.Internal), no CheckResponse
//	anything else                → denied: 401, www-authenticate: Bearer, body "who are you?"
//
// Every CheckRequest is printed as one JSON line on stdout, so tests can see what the gateway
// asked. Usage: rauta-ext-authz -listen 127.0.0.1:PORT
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strings"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	auth "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type server struct {
	auth.UnimplementedAuthorizationServer
}

func header(key, value string, appendValue bool) *core.HeaderValueOption {
	return &core.HeaderValueOption{
		Header: &core.HeaderValue{Key: key, Value: value},
		Append: wrapperspb.Bool(appendValue),
	}
}

func (server) Check(ctx context.Context, req *auth.CheckRequest) (*auth.CheckResponse, error) {
	line, _ := protojson.Marshal(req)
	fmt.Fprintln(os.Stdout, string(line))
	h := req.GetAttributes().GetRequest().GetHttp().GetHeaders()
	switch strings.TrimSpace(h["authorization"]) {
	case "Bearer slow":
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		fallthrough
	case "Bearer good":
		return &auth.CheckResponse{
			Status: &status.Status{Code: int32(codes.OK)},
			HttpResponse: &auth.CheckResponse_OkResponse{OkResponse: &auth.OkHttpResponse{
				Headers:                 []*core.HeaderValueOption{header("x-auth-user", "alice", false)},
				HeadersToRemove:         []string{"x-remove-me"},
				ResponseHeadersToAdd:    []*core.HeaderValueOption{header("x-auth-checked", "yes", true)},
				QueryParametersToSet:    []*core.QueryParameter{{Key: "trace", Value: "1"}},
				QueryParametersToRemove: []string{"secret"},
			}},
		}, nil
	case "Bearer broken":
		return nil, grpcstatus.Error(codes.Internal, "policy engine failed")
	}
	return &auth.CheckResponse{
		Status: &status.Status{Code: int32(codes.PermissionDenied), Message: "no valid token"},
		HttpResponse: &auth.CheckResponse_DeniedResponse{DeniedResponse: &auth.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized},
			Headers: []*core.HeaderValueOption{header("www-authenticate", "Bearer", false)},
			Body:    "who are you?",
		}},
	}, nil
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9191", "address to serve gRPC (h2c) on")
	flag.Parse()
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen %s: %v", *listen, err)
	}
	s := grpc.NewServer()
	auth.RegisterAuthorizationServer(s, server{})
	fmt.Fprintf(os.Stderr, "ext-authz listening on %s\n", l.Addr())
	if err := s.Serve(l); err != nil {
		log.Fatal(err)
	}
}
