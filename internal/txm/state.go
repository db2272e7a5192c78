package txm

import (
	"context"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
)

// flight is a payout whose transaction is signed and stored but not yet
// seen mined.
type flight struct {
	payoutID  string
	createdAt time.Time
	attempts  []*payout.Attempt
	lastSent  uint64 // head when last broadcast; 0: must be (re)sent now
}

// mined is a payout seen in a block, waiting for its confirmations.
type mined struct {
	payoutID    string
	createdAt   time.Time
	blockNumber uint64
	blockHash   common.Hash
	txHash      common.Hash
	success     bool    // the receipt's status
	fee         string  // for the log line
	flight      *flight // kept so a reorg can re-broadcast it
}

// loopState is the sender's cache of what is in flight. It is rebuilt from
// the store at every session start and touched only by the loop goroutine.
type loopState struct {
	leaseUntil  time.Time
	nextNonce   uint64
	head        uint64 // latest head seen
	lastScanned uint64 // last block whose receipts were matched
	flights     map[string]*flight
	byHash      map[common.Hash]*flight
	confirming  map[string]*mined
	feeHead     uint64
	fees        evm.Fees
}

func newLoopState() *loopState {
	return &loopState{
		flights: map[string]*flight{}, byHash: map[common.Hash]*flight{}, confirming: map[string]*mined{},
	}
}

func (st *loopState) addFlight(f *flight) {
	st.flights[f.payoutID] = f
	for _, a := range f.attempts {
		st.byHash[a.TxHash] = f
	}
}

func (st *loopState) removeFlight(f *flight) {
	delete(st.flights, f.payoutID)
	for _, a := range f.attempts {
		delete(st.byHash, a.TxHash)
	}
}

// recover rebuilds the cache from the store and the chain: the next nonce,
// what is in flight (whose receipts are looked up by hash, since blocks may
// have been mined while no one watched), and what is confirming.
func (s *Sender) recover(ctx context.Context) error {
	st, store, chainID := s.st, s.cfg.Store, s.cfg.Chain.ChainID
	head, err := s.cfg.Client.Header(ctx, nil)
	if err != nil {
		return fmt.Errorf("head: %w", err)
	}
	st.head = head.Number.Uint64()
	if err := s.initNonce(ctx); err != nil {
		return err
	}
	attempts, err := store.InFlightAttempts(ctx, chainID, s.sender)
	if err != nil {
		return fmt.Errorf("in-flight attempts: %w", err)
	}
	for _, a := range attempts {
		f := st.flights[a.PayoutID]
		if f == nil {
			f = &flight{payoutID: a.PayoutID}
			st.flights[a.PayoutID] = f
		}
		f.attempts = append(f.attempts, a)
		st.byHash[a.TxHash] = f
	}
	if err := s.fillCreatedAt(ctx); err != nil {
		return err
	}
	confirming, err := store.ConfirmingPayouts(ctx, chainID, s.sender)
	if err != nil {
		return fmt.Errorf("confirming payouts: %w", err)
	}
	for _, p := range confirming {
		st.confirming[p.ID] = &mined{payoutID: p.ID, createdAt: p.CreatedAt, blockNumber: p.BlockNumber, blockHash: *p.BlockHash,
			txHash: *p.TxHash, success: p.ReceiptOK, fee: p.Fee.String()}
	}
	if err := s.lookupInFlightReceipts(ctx); err != nil {
		return err
	}
	st.lastScanned = st.head
	return nil
}

// initNonce sets the next nonce to the larger of what the store allocated
// and what the chain has mined.
func (s *Sender) initNonce(ctx context.Context) error {
	chainNonce, err := s.cfg.Client.Nonce(ctx, s.sender, "latest")
	if err != nil {
		return fmt.Errorf("chain nonce: %w", err)
	}
	maxNonce, ok, err := s.cfg.Store.MaxNonce(ctx, s.cfg.Chain.ChainID, s.sender)
	if err != nil {
		return fmt.Errorf("stored nonce: %w", err)
	}
	next := chainNonce
	if ok && maxNonce+1 > next {
		next = maxNonce + 1
	}
	if ok && chainNonce > maxNonce+1 {
		s.log.Warn("the chain has nonces this engine never allocated: another wallet uses this key",
			"chain_nonce", chainNonce, "stored_max_nonce", maxNonce)
	}
	s.st.nextNonce = next
	return nil
}

// fillCreatedAt reads each in-flight payout once, for the accept-to-final
// latency metric.
func (s *Sender) fillCreatedAt(ctx context.Context) error {
	for id, f := range s.st.flights {
		p, err := s.cfg.Store.GetPayout(ctx, id)
		if err != nil {
			return fmt.Errorf("payout %s: %w", id, err)
		}
		f.createdAt = p.CreatedAt
	}
	return nil
}

// lookupInFlightReceipts asks for the receipt of every attempt in flight.
func (s *Sender) lookupInFlightReceipts(ctx context.Context) error {
	if len(s.st.byHash) == 0 {
		return nil
	}
	hashes := make([]common.Hash, 0, len(s.st.byHash))
	for h := range s.st.byHash {
		hashes = append(hashes, h)
	}
	receipts, err := s.cfg.Client.Receipts(ctx, hashes)
	if err != nil {
		return fmt.Errorf("in-flight receipts: %w", err)
	}
	return s.recordReceipts(ctx, receipts)
}
