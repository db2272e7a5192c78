package fees

import (
	"context"
	"testing"
)

// BenchmarkQuoteCached measures Quote on a head already quoted: the path
// every payout of a block takes after the first.
func BenchmarkQuoteCached(b *testing.B) {
	c := startChain(b)
	fillBlocks(b, c, [][]int64{{1, 2, 3}}, 0)
	b2 := &counting{Backend: c.eth}
	o, err := New(b2, Config{Chain: "sandbox", HeadTTL: -1})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := o.Quote(ctx, Standard); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := o.Quote(ctx, Standard); err != nil {
				b.Error(err)
			}
		}
	})
	if got := b2.calls(); got != [3]int64{1, 1, 0} {
		b.Errorf("cached quotes made RPC calls: %v", got)
	}
}
