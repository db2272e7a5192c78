package payout

import (
	"math/big"
	"testing"
)

func TestSplitFeeAddsUpExactly(t *testing.T) {
	cases := []struct {
		fee     int64
		weights []uint64
	}{
		{1_000_000_007, []uint64{8700, 25800, 8700}},
		{1, []uint64{5, 5, 5}},
		{0, []uint64{1, 2}},
		{999, []uint64{0, 0, 0}},
		{123456789, []uint64{1}},
	}
	for _, c := range cases {
		shares := SplitFee(big.NewInt(c.fee), c.weights)
		sum := new(big.Int)
		for i, s := range shares {
			if s.Sign() < 0 {
				t.Fatalf("fee %d weights %v: share %d negative: %s", c.fee, c.weights, i, s)
			}
			sum.Add(sum, s)
		}
		if sum.Int64() != c.fee {
			t.Errorf("fee %d weights %v: shares %v add up to %s", c.fee, c.weights, shares, sum)
		}
	}
	got := SplitFee(big.NewInt(34500), []uint64{8700, 25800})
	if got[0].Int64() != 8700 || got[1].Int64() != 25800 {
		t.Errorf("shares by marginal cost: got %v, want [8700 25800]", got)
	}
}

func TestBatchSettle(t *testing.T) {
	cases := []struct {
		counts map[Status]int64
		want   BatchStatus
	}{
		{map[Status]int64{StatusQueued: 1, StatusCompleted: 3}, BatchProcessing},
		{map[Status]int64{StatusCompleted: 3}, BatchCompleted},
		{map[Status]int64{StatusCompleted: 3, StatusFailed: 1}, BatchCompletedWithFailures},
		{map[Status]int64{StatusCancelled: 2}, BatchCancelled},
		{map[Status]int64{StatusCancelled: 2, StatusCompleted: 1}, BatchCompletedWithFailures},
	}
	for _, c := range cases {
		b := &Batch{Counts: c.counts}
		b.Settle()
		if b.Status != c.want {
			t.Errorf("counts %v: got %s, want %s", c.counts, b.Status, c.want)
		}
	}
}
