package batchfile

import (
	"strings"
	"testing"
)

// BenchmarkReadCSV10k validates a 10,000-row CSV of mixed SUSD (6 decimals)
// and ETH (18 decimals) payouts with external ids and quoted memos, all
// valid. The target is under 1 s per file.
func BenchmarkReadCSV10k(b *testing.B) {
	in := mixedCSV(10_000, 0)
	o := opts()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := ReadCSV(strings.NewReader(in), o)
		if err != nil || len(res.Rows) != 10_000 {
			b.Fatalf("%d rows, %v", len(res.Rows), err)
		}
	}
}
