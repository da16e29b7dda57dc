package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

// dial makes the client connection the globals describe. It does not
// connect: the first call does, and tells an unreachable server apart
// (callErr).
func (g *globals) dial() (*grpc.ClientConn, pb.SentimentServiceClient, error) {
	creds := insecure.NewCredentials()
	if g.tls || g.tlsCA != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if g.tlsCA != "" {
			pem, err := os.ReadFile(g.tlsCA)
			if err != nil {
				return nil, nil, &exitError{code: exitUsage, err: fmt.Errorf("--tls-ca: %w", err)}
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, nil, &exitError{code: exitUsage, err: fmt.Errorf("--tls-ca %s: no PEM certificate in it", g.tlsCA)}
			}
			cfg.RootCAs = pool
		}
		creds = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithDefaultServiceConfig(serviceConfig)}
	if g.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(g.token.reveal())))
	}
	conn, err := grpc.NewClient(g.addr, opts...)
	if err != nil {
		return nil, nil, usageErr("--addr %q: %v", g.addr, err)
	}
	return conn, pb.NewSentimentServiceClient(conn), nil
}

// unaryCtx is the context of one unary call: --timeout bounds it.
func (g *globals) unaryCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.timeout > 0 {
		return context.WithTimeout(ctx, g.timeout)
	}
	return context.WithCancel(ctx)
}

// bearer sends the token with every call. It is allowed over plaintext, as
// the server allows it (and warns about it off loopback).
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// callErr says what failed. A call that never got a connection (no peer)
// and failed with UNAVAILABLE or DEADLINE_EXCEEDED means the server could
// not be reached: exit status 3. Anything else is the server's answer
// (UNAVAILABLE for require_llm among them): exit status 1.
func callErr(what, addr string, err error, p *peer.Peer) error {
	st := status.Convert(err)
	reached := p != nil && p.Addr != nil
	if !reached && (st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded) {
		return &exitError{code: exitUnreachable, err: fmt.Errorf("cannot reach %s (%s): %s", addr, st.Code(), st.Message())}
	}
	return fmt.Errorf("%s: %s: %s", what, st.Code(), st.Message())
}

// serviceConfig balances calls round-robin over every address --addr
// resolves to (dns:///sentimentd-headless...:50051 names every replica)
// and retries UNAVAILABLE on another replica for the calls that are safe
// to repeat; Alert and CleanupGPU are not retried. The same as the Python
// client's.
const serviceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [
      {"service": "catalyst.sentiment.v1.SentimentService", "method": "Classify"},
      {"service": "catalyst.sentiment.v1.SentimentService", "method": "GPUStatus"},
      {"service": "catalyst.sentiment.v1.SentimentService", "method": "Stats"},
      {"service": "catalyst.sentiment.v1.SentimentService", "method": "ListAlertChannels"}
    ],
    "retryPolicy": {
      "maxAttempts": 3,
      "initialBackoff": "0.05s",
      "maxBackoff": "0.5s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`
