package txm

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sluicepay/sluice/internal/payout"
)

// flight is a payout whose transaction is signed and stored but not yet
// seen mined.
type flight struct {
	payoutID  string
	to        common.Address // the payee (of a transfer alone)
	createdAt time.Time
	priority  payout.Priority
	attempts  []*payout.Attempt
	lastSent  uint64 // head when last broadcast; 0: must be (re)sent now

	// What the transfer moves, for the balance reservation: the native
	// value, or a token and its amount.
	value  *big.Int
	token  *common.Address
	amount *big.Int

	attemptHead     uint64   // head when the latest attempt was signed (or the session began)
	feeCap          *big.Int // the operator's cap for this payout (speed-up); nil: the chain's
	stuck           bool     // marked stuck: no replacement until the cap changes
	cancelRequested bool     // the operator asked to cancel
	foreign         bool     // its nonce was used by a transaction Sluice did not send
	consumedSeen    int      // rounds its nonce was seen used with none of its attempts mined
	refusals        int      // broadcasts in a row every node refused (evm.Refusal); 0 once one takes it
	refusal         string   // the last refusal: kind and the node's message
	refusedStuck    bool     // marked stuck with ReasonBroadcastRefused
	chunk           bool     // a batch transaction: it pays a chunk of payouts (value or amount is their total)
	inBatch         bool     // its payout is a batch's row: its statement names the Transfer's log index
	// pre is the latest signed approval that goes at the nonce before the
	// flight's (a token batch transaction in contract mode); nil: none.
	// It is sent first while the chain has not used its nonce.
	pre *payout.Attempt
}

// preUnmined reports whether f has an approval the chain has not mined.
func (f *flight) preUnmined(chainNonce uint64) bool { return f.pre != nil && chainNonce <= f.pre.Nonce }

// chunkOf makes f a batch transaction moving total of its asset.
func (f *flight) chunkOf(total *big.Int) {
	f.chunk = true
	if f.token != nil {
		f.amount = total
	} else {
		f.value = total
	}
}

// delegates says whether f's latest attempt also delegates the wallet's
// code (an EIP-7702 set-code transaction).
func (f *flight) delegates() bool {
	raw := f.last().RawTx
	return len(raw) > 0 && raw[0] == types.SetCodeTxType
}

// intent says what a replacement of kind is meant to do (approval: it
// bumps the approval before a batch transaction).
func (f *flight) intent(kind payout.AttemptKind, approval bool, wallet common.Address) payout.SigningIntent {
	switch {
	case kind == payout.AttemptCancel:
		return payout.SigningIntent{Kind: payout.IntentCancel, To: wallet, Amount: new(big.Int)}
	case approval || kind == payout.AttemptApprove:
		return payout.SigningIntent{Kind: payout.IntentApprove}
	case f.chunk:
		return payout.SigningIntent{Kind: payout.IntentBatch}
	case f.token != nil:
		return payout.SigningIntent{Kind: payout.IntentTransfer, To: f.to, Token: f.token, Amount: f.amount}
	}
	return payout.SigningIntent{Kind: payout.IntentTransfer, To: f.to, Amount: f.value}
}

// last returns the latest attempt.
func (f *flight) last() *payout.Attempt { return f.attempts[len(f.attempts)-1] }

// nonce is the nonce every attempt of the flight uses.
func (f *flight) nonce() uint64 { return f.attempts[0].Nonce }

// cancelSent reports whether a cancel attempt was signed.
func (f *flight) cancelSent() bool { return f.last().Kind == payout.AttemptCancel }

// attemptByHash returns the flight's attempt with hash h.
func (f *flight) attemptByHash(h common.Hash) *payout.Attempt {
	for _, a := range f.attempts {
		if a.TxHash == h {
			return a
		}
	}
	return nil
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
	head        uint64          // latest head seen
	lastScanned uint64          // last block whose receipts were matched
	fetch       *receiptsFetch  // the next block's receipts being read; nil: none
	out         *outgoing       // the broadcast out on its own goroutine; nil: none
	lastRound   int             // payouts the last send round paid
	fetched     chan struct{}   // signalled when a fetch ends
	ctx         context.Context // the session's: background reads end with it
	flights     map[string]*flight
	byHash      map[common.Hash]*flight
	confirming  map[string]*mined

	chainNonce    uint64                      // the sender's nonce on chain at head ("latest")
	scannedNonce  uint64                      // every nonce below it was mined in a block the tracker has scanned
	progressHead  uint64                      // head when chainNonce last rose (the queue moved)
	nonceHead     uint64                      // head at which the chain's nonces were last read
	heldHead      uint64                      // head at which the last send round held every payout it read; 0: none
	requestsAt    time.Time                   // when operator requests were last read
	fundsAt       time.Time                   // when balances were last read
	balanceHead   uint64                      // the head balances were read at
	confirmedHead uint64                      // the head confirmations were last checked at
	confirmedAt   time.Time                   // when they were
	trackedAt     time.Time                   // when the chain was last read for new heads
	balances      map[common.Address]*big.Int // by token (the zero address: the native coin)
	halted        string                      // why the sender sends nothing new; "" when it sends
	low           map[string]bool
	held          map[string]payout.Code // queued payouts told to wait, by reason (for the log)
	pauses        pauseView              // the emergency pauses in force, as last read
	delegated     bool                   // the wallet's code is an EIP-7702 delegation: one transaction in flight at a time
	codeHead      uint64                 // head at which the wallet's code was last read
	code          []byte                 // the wallet's code at codeHead
	offlineNoted  string                 // the offline plan (id and status) last logged and held for; "": none active
	offlineAt     time.Time              // when offline plans were last read
	rotation      *payout.Rotation       // the rotation away from this wallet, as last read; nil: none
	rotationsAt   time.Time              // when the rotations were last read
}

func newLoopState(ctx context.Context) *loopState {
	return &loopState{
		ctx: ctx, fetched: make(chan struct{}, 1),
		flights: map[string]*flight{}, byHash: map[common.Hash]*flight{}, confirming: map[string]*mined{},
		low: map[string]bool{}, held: map[string]payout.Code{},
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
	head, err := s.cfg.Client.BlockNumber(ctx)
	if err != nil {
		return fmt.Errorf("head: %w", err)
	}
	st.head = head
	if err := s.initNonce(ctx); err != nil {
		return err
	}
	attempts, err := store.InFlightAttempts(ctx, chainID, s.sender)
	if err != nil {
		return fmt.Errorf("in-flight attempts: %w", err)
	}
	inFlight, err := store.InFlightPayouts(ctx, chainID, s.sender)
	if err != nil {
		return fmt.Errorf("in-flight payouts: %w", err)
	}
	for _, p := range inFlight {
		f := s.newFlight(p)
		f.stuck = p.Status == payout.StatusStuck
		f.foreign = f.stuck && p.Reason == payout.ReasonForeignNonce
		f.refusedStuck = f.stuck && p.Reason == payout.ReasonBroadcastRefused
		if f.foreign {
			st.halted = p.ReasonDetail
		}
		st.flights[p.ID] = f
	}
	for _, a := range attempts {
		f := st.flights[a.PayoutID]
		if f == nil { // changed status between the two reads; the next session sees it
			continue
		}
		f.attempts = append(f.attempts, a)
		st.byHash[a.TxHash] = f
	}
	for id, f := range st.flights {
		if len(f.attempts) == 0 {
			delete(st.flights, id)
		}
	}
	if err := s.recoverApprovals(ctx); err != nil {
		return err
	}
	s.setHalted(st.halted)
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
	st.scannedNonce = st.chainNonce
	s.setScanned(st.head)
	st.progressHead, st.nonceHead = st.head, st.head
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
		s.alert(ctx, payout.EventWalletForeignNonce, map[string]any{
			"chain": s.cfg.Chain.Name, "wallet": s.sender.Hex(), "chain_nonce": chainNonce, "stored_max_nonce": maxNonce,
			"detail": fmt.Sprintf("the chain's nonce is %d but Sluice allocated nonces only up to %d: transactions Sluice did not send used this wallet's key", chainNonce, maxNonce),
		})
	}
	s.st.nextNonce, s.st.chainNonce = next, chainNonce
	return nil
}

// loadFlight reads a payout and its attempts from the store into a
// flight, with everything the sender keeps of it (what it moves, its
// priority, fee cap and cancel request).
func (s *Sender) loadFlight(ctx context.Context, id string) (*flight, error) {
	p, err := s.cfg.Store.GetPayout(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("payout %s: %w", id, err)
	}
	attempts, err := s.cfg.Store.ListAttempts(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("attempts of %s: %w", id, err)
	}
	if len(attempts) == 0 {
		return nil, fmt.Errorf("payout %s has no attempt", id)
	}
	f := s.newFlight(p)
	f.attempts = attempts
	return f, nil
}

// newFlight returns a flight, without attempts, for a payout: what it
// moves, its priority, fee cap and cancel request, its replacement clock
// started at the current head.
func (s *Sender) newFlight(p *payout.Payout) *flight {
	f := &flight{payoutID: p.ID, to: p.To, createdAt: p.CreatedAt, priority: p.Priority, value: new(big.Int),
		attemptHead: max(s.st.head, 1), feeCap: p.FeeCap, cancelRequested: p.CancelRequested}
	if asset, ok := s.cfg.Chain.Assets[p.Asset]; ok && asset.Token != nil {
		f.token, f.amount = asset.Token, p.Amount
	} else {
		f.value = p.Amount
	}
	if p.ChunkAmount != nil {
		f.chunkOf(p.ChunkAmount)
	}
	f.inBatch = p.BatchID != ""
	return f
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
