package txm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/fees"
	"github.com/sluicepay/sluice/internal/payout"
)

// Chain is what a sender needs from a chain's node; *evm.Client has it.
type Chain interface {
	ChainID(ctx context.Context) (uint64, error)
	BlockNumber(ctx context.Context) (uint64, error)
	BlockHash(ctx context.Context, number uint64) (common.Hash, error)
	Nonce(ctx context.Context, account common.Address, tag string) (uint64, error)
	Balance(ctx context.Context, account common.Address) (*big.Int, error)
	TokenBalance(ctx context.Context, token, account common.Address) (*big.Int, error)
	EstimateGas(ctx context.Context, calls []evm.Call) ([]uint64, []error, error)
	SendRaw(ctx context.Context, raws [][]byte) ([]error, error)
	BlockReceipts(ctx context.Context, number uint64) ([]*evm.Receipt, error)
	Receipts(ctx context.Context, hashes []common.Hash) ([]*evm.Receipt, error)
	FindNonceUser(ctx context.Context, account common.Address, nonce, head uint64) (evm.TxRef, uint64, error)

	// What batch transactions read (see Batching).
	Code(ctx context.Context, account common.Address) ([]byte, error)
	EmptyAccounts(ctx context.Context, accounts []common.Address) ([]bool, error)
	TokenHolders(ctx context.Context, token common.Address, accounts []common.Address) ([]bool, error)
	TransferLogs(ctx context.Context, tx common.Hash, token, from common.Address) ([]uint, error)
	SimulateSequence(ctx context.Context, calls []evm.Call) ([]uint64, []error, error)
}

// FeeOracle quotes fees and rules replacements; *fees.Oracle is one.
type FeeOracle interface {
	// Quote returns the fee for a priority at the current head.
	Quote(ctx context.Context, p fees.Priority) (fees.Quote, error)
	// SetHead reports a new head, so the next Quote refreshes.
	SetHead(number uint64)
	// Check returns a *fees.OverCapError when the quote is over a cap.
	Check(q fees.Quote, gasLimit uint64, override *big.Int) error
	// Bump returns replacement fees within the caps, or a
	// *fees.CapReachedError.
	Bump(old evm.Fees, current fees.Quote, gasLimit uint64, override *big.Int) (evm.Fees, error)
	// ReplaceDue says whether a transaction not mined for blocksSince
	// blocks, as attempt number attempt, is to be replaced.
	ReplaceDue(p fees.Priority, blocksSince uint64, attempt int) bool
}

// PauseSource lists the emergency pauses in force.
type PauseSource interface {
	ActivePauses(ctx context.Context) ([]*payout.Pause, error)
}

// Handoff moves payouts between the hot wallets of a chain.
type Handoff interface {
	// Target returns a hot wallet of the chain, other than p's, known to be
	// able to cover p now; false when none is.
	Target(p *payout.Payout) (common.Address, bool)
	// Moved is told, after the store has moved them, that wallet has new
	// queued payouts (to wake its sender).
	Moved(chain string, wallet common.Address)
}

// Config configures one sender. Zero durations and sizes take the defaults
// named on each field.
type Config struct {
	Chain  payout.Chain  // the chain, its assets and confirmations
	Store  payout.Store  // the source of truth
	Client Chain         // the chain's node (or pool of nodes)
	Signer payout.Signer // the hot wallet; its address is the sender
	Owner  string        // this engine instance's id, for the lease
	Fees   FeeOracle     // the chain's fee oracle (shared by its senders)

	// Handoff, when not nil, finds another hot wallet of the chain for a
	// queued payout this wallet cannot cover (nil: payouts wait for a
	// top-up where they are).
	Handoff Handoff
	// SignerReady, when not nil, says whether the signer can sign now
	// (false while its key is still opening); meanwhile queued payouts are
	// handed to other wallets through Handoff rather than wait.
	SignerReady func() bool
	// SignerOpened, when not nil, is closed once the signer's key has
	// opened (or failed to): the sender then reads its queue again at once,
	// rather than at the next head, so that a backlog held while the key
	// opened is sent as soon as it can be signed.
	SignerOpened <-chan struct{}
	// SignerUnreachable, when not nil, says why the wallet's signer could
	// not be reached when last tried (nil: it opens or is open). While it
	// is unreachable, queued payouts are handed to other wallets or wait
	// with payout.ReasonSignerUnavailable, as when signing fails.
	SignerUnreachable func() error

	// Pauses, when not nil, is read before every signing round: payouts an
	// active pause matches wait queued with payout.ReasonPaused (nil: no
	// pauses). *store.DB is one.
	Pauses PauseSource

	// LowBalance maps asset symbols to the balance (base units) under
	// which the wallet.low_balance event fires; absent: no threshold.
	LowBalance map[string]*big.Int

	// Batching, when its Mode is set, pays the payouts of batches many at
	// once in batch transactions (zero value: every payout alone).
	Batching Batching

	// Recheck, when not nil, decides a queued payout again just before it
	// is signed (the policy's lists and velocity may have changed since it
	// was accepted); a non-empty code fails it with that code and reason,
	// before any nonce is used.
	Recheck func(ctx context.Context, p *payout.Payout) (payout.Code, string, error)

	// Offline, when not nil, holds the wallet's offline plans (signing on
	// a machine with no network when the signer is down): it is read
	// before every signing round, and while the wallet has an active plan
	// the sender plans it, submits its signed file or voids it, and signs
	// nothing new. *store.DB is one.
	Offline payout.OfflinePlanStore

	// Rotations, when not nil, is read every second: when the wallet is
	// rotated away (payout.Rotation), its sender hands its queued payouts
	// to the new wallet, finishes what it has in flight, then sweeps its
	// assets to the new wallet. *store.DB is one.
	Rotations payout.RotationStore

	BatchSize        int           // payouts claimed per round; default 500
	Poll             time.Duration // how often to look for new heads and work; default 250ms
	LeaseTTL         time.Duration // lease lifetime, renewed every third of it; default 15s
	RebroadcastAfter uint64        // blocks without a receipt before an attempt is sent again; default 3
	StepTimeout      time.Duration // deadline of each step of the loop; default 30s
	// FundsEvery is how often a sender with nothing to send re-reads its
	// balances, so that Available and the low-balance alert follow
	// top-ups; default 5s.
	FundsEvery time.Duration

	Logger  *slog.Logger
	Metrics *Metrics
}

func (c *Config) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	c.Batching.defaults()
	if c.Poll <= 0 {
		c.Poll = 250 * time.Millisecond
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 15 * time.Second
	}
	if c.RebroadcastAfter == 0 {
		c.RebroadcastAfter = 3
	}
	if c.StepTimeout <= 0 {
		c.StepTimeout = 30 * time.Second
	}
	if c.FundsEvery <= 0 {
		c.FundsEvery = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
}

func (c *Config) validate() error {
	switch {
	case c.Store == nil:
		return errors.New("txm: Store is required")
	case c.Client == nil:
		return errors.New("txm: Client is required")
	case c.Signer == nil:
		return errors.New("txm: Signer is required")
	case c.Fees == nil:
		return errors.New("txm: Fees is required")
	case c.Owner == "":
		return errors.New("txm: Owner is required")
	case c.Chain.ChainID == 0:
		return errors.New("txm: Chain.ChainID is required")
	}
	return nil
}

// Sender drives the payouts of one (chain, hot wallet).
type Sender struct {
	cfg    Config
	sender common.Address
	log    *slog.Logger
	wake   chan struct{}

	startStop sync.Mutex
	cancel    context.CancelFunc
	done      chan struct{}
	startedAt time.Time // when Start ran; set before the loop starts

	scanned atomic.Uint64 // Settled: the loop's lastScanned while it holds the lease, else 0

	availMu        sync.Mutex
	avail          map[string]*big.Int // spendable after reservations, by asset symbol
	outstanding    int                 // payouts not mined at the last count (Outstanding)
	outstandingSeq uint64              // how many counts were made

	// The fields below belong to the loop goroutine alone.
	st *loopState
}

// New checks the config and returns a stopped sender.
func New(cfg Config) (*Sender, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	addr := cfg.Signer.Address()
	return &Sender{
		cfg: cfg, sender: addr, wake: make(chan struct{}, 1),
		log: cfg.Logger.With("component", "txm", "chain", cfg.Chain.Name, "sender", addr.Hex()),
	}, nil
}

// Start runs the loop until Stop or until ctx ends.
func (s *Sender) Start(ctx context.Context) {
	s.startStop.Lock()
	defer s.startStop.Unlock()
	if s.done != nil {
		return
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	s.startedAt = time.Now()
	go func() {
		defer close(s.done)
		s.run(ctx)
	}()
}

// Stop ends the loop, waits for it, and gives the lease up.
func (s *Sender) Stop() {
	s.startStop.Lock()
	defer s.startStop.Unlock()
	if !s.endLoop() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.cfg.Store.ReleaseLease(ctx, s.cfg.Chain.ChainID, s.sender, s.cfg.Owner); err != nil {
		s.log.Warn("release lease", "err", err)
	}
}

// Kill ends the loop and waits for it without giving the lease up, as a
// crash would; the lease then expires on its own.
func (s *Sender) Kill() {
	s.startStop.Lock()
	defer s.startStop.Unlock()
	s.endLoop()
}

// endLoop cancels the loop and waits for it; it says whether it was
// running. The caller holds startStop.
func (s *Sender) endLoop() bool {
	if s.done == nil {
		return false
	}
	s.cancel()
	<-s.done
	s.done = nil
	return true
}

// Wake tells the loop that new payouts may be queued.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run acquires the lease, recovers, then serves until the lease is lost or
// ctx ends; on any error it starts over after a pause.
func (s *Sender) run(ctx context.Context) {
	backoff := s.cfg.Poll
	for ctx.Err() == nil {
		err := s.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, payout.ErrLeaseHeld) {
			s.log.Debug("lease held by another instance; waiting")
		} else if err != nil {
			s.log.Error("sender stopped; restarting", "err", err)
			s.cfg.Metrics.sendLoopErrors.WithLabelValues(s.cfg.Chain.Name, "session").Inc()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// session holds the lease for as long as it can and sends.
func (s *Sender) session(ctx context.Context) error {
	st := newLoopState(ctx)
	s.st = st
	s.scanned.Store(0)
	defer s.scanned.Store(0)
	if err := s.renewLease(ctx); err != nil {
		return err
	}
	if err := s.stepWithin(ctx, "recover", recoverTimeout, s.recover); err != nil {
		return err
	}
	s.log.Info("sender ready", "next_nonce", st.nextNonce, "in_flight", len(st.flights), "confirming", len(st.confirming))
	tick := time.NewTicker(s.cfg.Poll)
	defer tick.Stop()
	renew := time.NewTicker(s.cfg.LeaseTTL / 3)
	defer renew.Stop()
	opened := s.cfg.SignerOpened
	for {
		more := false
		if err := s.step(ctx, "send", func(ctx context.Context) (err error) {
			more, err = s.sendQueued(ctx)
			return err
		}); err != nil {
			return err
		}
		if err := s.step(ctx, "track", s.track); err != nil {
			return err
		}
		if more { // a backlog: go on at once, but keep the lease fresh
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-renew.C:
				if err := s.renewLease(ctx); err != nil {
					return err
				}
			default:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-renew.C:
			if err := s.renewLease(ctx); err != nil {
				return err
			}
		case <-s.wake:
		case <-st.fetched: // a block's receipts arrived: scan them
		case <-tick.C:
		case <-opened:
			opened = nil
			st.heldHead = 0 // what waited for the key waits no more
		}
	}
}

// recoverTimeout bounds the start of a session, which reads everything in
// flight (tens of thousands of payouts after a long outage).
const recoverTimeout = 5 * time.Minute

// step runs one part of the loop with its own deadline and metrics.
func (s *Sender) step(ctx context.Context, name string, f func(context.Context) error) error {
	return s.stepWithin(ctx, name, s.cfg.StepTimeout, f)
}

func (s *Sender) stepWithin(ctx context.Context, name string, timeout time.Duration, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	s.cfg.Metrics.roundDuration.WithLabelValues(s.cfg.Chain.Name, name).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, context.Canceled) {
		s.cfg.Metrics.sendLoopErrors.WithLabelValues(s.cfg.Chain.Name, name).Inc()
		return fmt.Errorf("%s: %w", name, err)
	}
	return err
}

func (s *Sender) renewLease(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.cfg.Store.AcquireLease(ctx, s.cfg.Chain.ChainID, s.sender, s.cfg.Owner, s.cfg.LeaseTTL); err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	if s.st != nil {
		s.st.leaseUntil = time.Now().Add(s.cfg.LeaseTTL)
	}
	return nil
}

// leaseValid reports whether the lease surely still holds for a write that
// takes up to the step timeout.
func (s *Sender) leaseValid() bool {
	return time.Until(s.st.leaseUntil) > s.cfg.LeaseTTL/3
}
