package server

import (
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

func (c utf8Codec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.base.Unmarshal(data, v)
	if err == nil || !strings.Contains(err.Error(), "invalid UTF-8") {
		return err
	}
	m, ok := v.(proto.Message)
	if !ok {
		return err
	}
	fixed, path, rerr := repairUTF8(data.Materialize(), m.ProtoReflect().Descriptor(), "")
	if rerr != nil || path == "" {
		return err
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

// badUTF8 returns the field the codec found invalid UTF-8 in, if any.
func badUTF8(m proto.Message) string {
	b := m.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		if num == badUTF8Field && typ == protowire.BytesType {
			path, _ := protowire.ConsumeString(b[n:])
			return path
		}
		l := protowire.ConsumeFieldValue(num, typ, b[n:])
		if l < 0 {
			return ""
		}
		b = b[n+l:]
	}
	return ""
}

// utf8Error is the validation error for a field the codec repaired.
func utf8Error(m proto.Message) *fieldError {
	if path := badUTF8(m); path != "" {
		return &fieldError{path, "must be valid UTF-8"}
	}
	return nil
}
