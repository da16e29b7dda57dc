// Package rediserr says why a Redis call failed, for the quota limiter and
// the answer cache, which both fall back to memory while Redis is away and
// say why in their logs and in Stats.
package rediserr

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// Describe says why a Redis call failed, in words that never carry the
// Redis URL or its password.
func Describe(err error) string {
	var nerr net.Error
	var rerr redis.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &nerr) && nerr.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection lost"
	case errors.Is(err, redis.ErrClosed):
		return "client closed"
	case errors.As(err, &rerr):
		return "redis error: " + rerr.Error()
	}
	var oerr *net.OpError
	if errors.As(err, &oerr) {
		return oerr.Op + ": " + oerr.Err.Error()
	}
	return "unexpected error"
}
