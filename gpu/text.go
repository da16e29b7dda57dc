package gpu

import (
	"strings"
	"unicode/utf8"
)

// Bounds on text from outside (a tool's complaint, a sysfs file, a model
// server's error) that the package keeps for messages and for Status.
const (
	// maxLine bounds one line of a tool's complaint in an error.
	maxLine = 200
	// maxDetail bounds an upstream error quoted in a gate reason.
	maxDetail = 300
	// maxErrText bounds an error kept in Status (ReaderError, Model.Error).
	maxErrText = 1 << 10
	// maxName bounds a card's name, vendor or source as a reader reports it.
	maxName = 256
)

// clip makes text from outside fit to show: invalid UTF-8 (a tool printing
// Latin-1, a sysfs file with stray bytes) becomes U+FFFD, and text longer
// than n bytes is cut at the last rune boundary at or before n, with "..."
// appended. Status is turned into protobuf, whose strings must be valid
// UTF-8: half a rune there fails the whole GPUStatus call.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, string(utf8.RuneError))
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// oneLine keeps an error message to one short line for a gate reason.
func oneLine(s string) string {
	return clip(strings.Join(strings.Fields(s), " "), maxDetail)
}

// errText is an error's message as Status keeps it.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return clip(err.Error(), maxErrText)
}
