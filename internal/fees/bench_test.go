package fees

import (
	"context"
	"slices"
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

// BenchmarkQuoteRefresh measures the first quote at a head: one header and
// one eth_feeHistory over HTTP (loopback) to the dev chain, 20-block window.
func BenchmarkQuoteRefresh(b *testing.B) {
	c := startChain(b)
	fillBlocks(b, c, slices.Repeat([][]int64{{1, 2, 3, 4}}, 20), 0)
	ctx := context.Background()
	for b.Loop() {
		o, err := New(c.eth, Config{Chain: "sandbox", HeadTTL: -1})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := o.Quote(ctx, Standard); err != nil {
			b.Fatal(err)
		}
	}
}
