package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

// enumWord is an enum value's name as a word: LABEL_BULLISH is "bullish".
// An unknown number stays a number.
func enumWord(name, prefix string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, prefix)), "_", " ")
}

func labelName(l pb.Label) string     { return enumWord(l.String(), "LABEL_") }
func tierName(t pb.Tier) string       { return enumWord(t.String(), "TIER_") }
func outcomeName(o pb.Outcome) string { return enumWord(o.String(), "OUTCOME_") }
func breakerName(b pb.BreakerState) string {
	return enumWord(b.String(), "BREAKER_STATE_")
}
func pressureName(p pb.PressureLevel) string {
	return enumWord(p.String(), "PRESSURE_LEVEL_")
}

// jsonOptions write the proto field names, which do not change when a
// field's JSON name would.
var jsonOptions = protojson.MarshalOptions{UseProtoNames: true}

// marshalJSON is m as compact protojson. protojson varies its spacing on
// purpose; compacting it makes the output the same from run to run.
func marshalJSON(m proto.Message) ([]byte, error) {
	b, err := jsonOptions.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// writeJSONLine writes m as one line of JSON.
func writeJSONLine(w io.Writer, m proto.Message) error {
	b, err := marshalJSON(m)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
