package signer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// Failover signs with the first healthy member of a group that all hold
// the same key: a member that cannot sign is skipped, and asked again after
// RetryAfter (or as soon as every member is down). A member that refuses a
// transaction (ErrRefused) ends the attempt: asking the next one would get
// round its limits.
type Failover struct {
	members    []payout.Signer
	names      []string
	addr       common.Address
	retryAfter time.Duration
	log        *slog.Logger

	mu        sync.Mutex
	downUntil []time.Time // per member: skipped until then
}

var (
	_ payout.Signer = (*Failover)(nil)
	_ TxSigner      = (*Failover)(nil)
	_ Checker       = (*Failover)(nil)
)

// NewFailover groups members, in order of preference. names label them in
// logs and errors (e.g. "signers[1]"). Every member must hold the same
// address; the error names the first that does not.
func NewFailover(members []payout.Signer, names []string, retryAfter time.Duration, log *slog.Logger) (*Failover, error) {
	if len(members) == 0 {
		return nil, errors.New("signers: at least one member is required")
	}
	if len(names) != len(members) {
		names = make([]string, len(members))
		for i := range names {
			names[i] = fmt.Sprintf("signers[%d]", i)
		}
	}
	for i, m := range members[1:] {
		if m.Address() != members[0].Address() {
			return nil, fmt.Errorf("%s: holds the key of %s, not %s like %s: a failover group shares one key",
				names[i+1], m.Address().Hex(), members[0].Address().Hex(), names[0])
		}
	}
	if retryAfter <= 0 {
		retryAfter = 5 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Failover{members: members, names: names, addr: members[0].Address(), retryAfter: retryAfter,
		log: log.With("component", "signer_failover"), downUntil: make([]time.Time, len(members))}, nil
}

// Address is the group's one address.
func (f *Failover) Address() common.Address { return f.addr }

// SignDigest signs the digest with the first member that can.
func (f *Failover) SignDigest(ctx context.Context, digest [32]byte) ([]byte, error) {
	return f.try(ctx, func(m payout.Signer) ([]byte, error) { return m.SignDigest(ctx, digest) })
}

// SignTransaction signs the transaction with the first member that can.
func (f *Failover) SignTransaction(ctx context.Context, chainID *big.Int, unsigned []byte, digest [32]byte) ([]byte, error) {
	return f.try(ctx, func(m payout.Signer) ([]byte, error) { return SignTransaction(ctx, m, chainID, unsigned, digest) })
}

// Health is nil when any member is healthy; it probes every member and
// marks them up or down accordingly.
func (f *Failover) Health(ctx context.Context) error {
	var errs []error
	for i, m := range f.members {
		err := Health(ctx, m)
		f.mark(i, err)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.names[i], err))
		}
	}
	if len(errs) < len(f.members) {
		return nil
	}
	return unavailable("failover", errors.Join(errs...))
}

func (f *Failover) try(ctx context.Context, sign func(payout.Signer) ([]byte, error)) ([]byte, error) {
	var errs []error
	for _, i := range f.order() {
		sig, err := sign(f.members[i])
		if err == nil {
			f.mark(i, nil)
			return sig, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, ErrRefused) || !errors.Is(err, payout.ErrSignerUnavailable) {
			return nil, fmt.Errorf("%s: %w", f.names[i], err)
		}
		f.mark(i, err)
		errs = append(errs, fmt.Errorf("%s: %w", f.names[i], err))
	}
	return nil, unavailable("failover", errors.Join(errs...))
}

// order lists the members to try: those not marked down first, in order,
// then those marked down (a last resort beats failing).
func (f *Failover) order() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	up, down := make([]int, 0, len(f.members)), []int(nil)
	for i, until := range f.downUntil {
		if now.Before(until) {
			down = append(down, i)
		} else {
			up = append(up, i)
		}
	}
	return append(up, down...)
}

func (f *Failover) mark(i int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	wasDown := !f.downUntil[i].IsZero()
	if err == nil {
		f.downUntil[i] = time.Time{}
		if wasDown {
			f.log.Info("signer back", "member", f.names[i])
		}
		return
	}
	f.downUntil[i] = time.Now().Add(f.retryAfter)
	if !wasDown {
		f.log.Warn("signer down; using the next", "member", f.names[i], "err", err)
	}
}
