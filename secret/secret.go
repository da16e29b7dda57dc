// Package secret holds the type of every value that must never reach logs,
// errors, metrics or Stats: API keys, bearer tokens, webhook URLs, a Redis
// URL with its password.
package secret

import "log/slog"

// Redacted is how a secret prints.
const Redacted = "[redacted]"

// Secret is a value that must never be printed. Its String, GoString and
// LogValue forms are redacted (empty stays empty, so that "not set" still
// shows); call Reveal where the raw value is sent to its owner (an
// Authorization header, a webhook POST).
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return s.String() }

// LogValue keeps slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Reveal returns the raw value.
func (s Secret) Reveal() string { return string(s) }
