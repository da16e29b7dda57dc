package server

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the codec wrapped here
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The proto runtime refuses a string field holding invalid UTF-8 while
// decoding, and gRPC then answers INTERNAL before any handler runs: the
// caller would learn neither that the input was at fault nor which field.
// utf8Codec decodes such a message anyway, with each bad byte sequence
// replaced by U+FFFD, and records the first offending field in the
// message's unknown fields under badUTF8Field, where validation finds it
// and answers INVALID_ARGUMENT naming the field (on a batch stream, an
// error entry for that item only).
type utf8Codec struct{ base encoding.CodecV2 }

// badUTF8Field is the largest legal field number; the contract never
// uses it.
const badUTF8Field protowire.Number = protowire.MaxValidNumber

func newUTF8Codec() utf8Codec { return utf8Codec{base: encoding.GetCodecV2("proto")} }

func (c utf8Codec) Name() string                           { return c.base.Name() }
func (c utf8Codec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

// malformedField marks a message whose bytes were not protobuf at all (cut
// off, a wrong wire type, a bad length): gRPC would answer INTERNAL for
// what is the caller's fault, so the codec leaves the message empty and
// marked, and validation answers INVALID_ARGUMENT.
const malformedField protowire.Number = protowire.MaxValidNumber - 1

func (c utf8Codec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.base.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return err
	}
	if !strings.Contains(err.Error(), "invalid UTF-8") {
		markMalformed(m, err)
		return nil
	}
	fixed, path, rerr := repairUTF8(data.Materialize(), m.ProtoReflect().Descriptor(), "")
	if rerr != nil || path == "" {
		markMalformed(m, err)
		return nil
	}
	proto.Reset(m)
	if uerr := proto.Unmarshal(fixed, m); uerr != nil {
		return uerr
	}
	r := m.ProtoReflect()
	mark := protowire.AppendTag(nil, badUTF8Field, protowire.BytesType)
	mark = protowire.AppendString(mark, path)
	r.SetUnknown(append(r.GetUnknown(), mark...))
	return nil
}

// repairUTF8 re-encodes b, a message of type md, with invalid UTF-8 in
// string fields replaced, and returns the path of the first such field
// ("item.title").
func repairUTF8(b []byte, md protoreflect.MessageDescriptor, prefix string) ([]byte, string, error) {
	var out []byte
	first := ""
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, "", protowire.ParseError(n)
		}
		fieldLen := protowire.ConsumeFieldValue(num, typ, b[n:])
		if fieldLen < 0 {
			return nil, "", protowire.ParseError(fieldLen)
		}
		field := b[:n+fieldLen]
		b = b[n+fieldLen:]
		fd := md.Fields().ByNumber(num)
		if fd == nil || typ != protowire.BytesType || (fd.Kind() != protoreflect.StringKind && fd.Kind() != protoreflect.MessageKind) || fd.IsMap() {
			out = append(out, field...)
			continue
		}
		val, _ := protowire.ConsumeBytes(field[n:])
		name := prefix + string(fd.Name())
		switch fd.Kind() {
		case protoreflect.StringKind:
			if !utf8.Valid(val) {
				if first == "" {
					first = name
				}
				val = []byte(strings.ToValidUTF8(string(val), "\uFFFD"))
			}
		case protoreflect.MessageKind:
			sub, path, err := repairUTF8(val, fd.Message(), name+".")
			if err != nil {
				return nil, "", err
			}
			if first == "" {
				first = path
			}
			val = sub
		}
		out = protowire.AppendTag(out, num, protowire.BytesType)
		out = protowire.AppendBytes(out, val)
	}
	return out, first, nil
}

// markMalformed empties m and records why its bytes did not decode.
func markMalformed(m proto.Message, err error) {
	proto.Reset(m)
	why := strings.TrimPrefix(err.Error(), "proto: ")
	mark := protowire.AppendTag(nil, malformedField, protowire.BytesType)
	mark = protowire.AppendString(mark, strings.ToValidUTF8(why, "\uFFFD"))
	m.ProtoReflect().SetUnknown(mark)
}

// codecMark returns the text the codec recorded under num, if any.
func codecMark(m proto.Message, num protowire.Number) string {
	b := m.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		n2, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		if n2 == num && typ == protowire.BytesType {
			v, _ := protowire.ConsumeString(b[n:])
			return v
		}
		l := protowire.ConsumeFieldValue(n2, typ, b[n:])
		if l < 0 {
			return ""
		}
		b = b[n+l:]
	}
	return ""
}

// codecError is the validation error for a message the codec could not
// decode as sent: not protobuf at all, or a field it repaired.
func codecError(m proto.Message) *fieldError {
	if why := codecMark(m, malformedField); why != "" {
		return newFieldError("request", fmt.Sprintf("is not a valid %s protobuf message (%s)", m.ProtoReflect().Descriptor().Name(), why))
	}
	if path := codecMark(m, badUTF8Field); path != "" {
		return newFieldError(path, "must be valid UTF-8")
	}
	return nil
}
