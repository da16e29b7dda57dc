package usage

import (
	"path/filepath"
	"testing"
)

// BenchmarkWrite measures what the caller pays per record: the writer's
// own work runs on its goroutine. When it falls behind the records are
// dropped (reported as dropped/op), which costs the caller the same.
func BenchmarkWrite(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "usage.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	r := rec("r-0001")
	b.ReportAllocs()
	for b.Loop() {
		l.Write(r)
	}
	b.StopTimer()
	l.Close()
	b.ReportMetric(float64(l.Stats().Dropped)/float64(b.N), "dropped/op")
}

// BenchmarkWriteParallel is BenchmarkWrite from every core at once.
func BenchmarkWriteParallel(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "usage.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	r := rec("r-0001")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Write(r)
		}
	})
	b.StopTimer()
	l.Close()
	b.ReportMetric(float64(l.Stats().Dropped)/float64(b.N), "dropped/op")
}

// BenchmarkEncode is the writer goroutine's cost of one line.
func BenchmarkEncode(b *testing.B) {
	r := rec("r-0001")
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.appendJSON(buf[:0])
	}
}
