package txm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/payout"
)

// maxScan is how many blocks the tracker reads receipts of block by block;
// further behind it looks receipts up by hash instead.
const maxScan = 64

// maxRebroadcast bounds how many transactions one round re-sends.
const maxRebroadcast = 2000

// track follows the chain: receipts of new blocks, confirmations and reorgs
// of mined payouts, and re-broadcasts of attempts that are not being mined.
//
// While payouts keep arriving the loop comes here after every send round;
// the chain is read at most once per Poll then, so that a burst of sends
// does not wait on a head read each time (heads come every second or
// more). Attempts whose broadcast failed are retried every time.
func (s *Sender) track(ctx context.Context) error {
	st := s.st
	if time.Since(st.trackedAt) < s.cfg.Poll && !st.fetch.ready() {
		return s.rebroadcast(ctx)
	}
	st.trackedAt = time.Now()
	// What follows reads and changes what was sent (gaps, replacements,
	// refusals): the batch out on its own goroutine is applied first.
	s.finishBroadcast(ctx)
	n, err := s.cfg.Client.BlockNumber(ctx)
	if err != nil {
		return fmt.Errorf("head: %w", err)
	}
	s.cfg.Metrics.lastHead.WithLabelValues(s.cfg.Chain.Name).Set(float64(n))
	if n > st.lastScanned {
		// The nonce read at an earlier head is below every block this
		// scan reads: what it has not settled under it, it missed.
		nonceBefore := st.chainNonce
		if err := s.scan(ctx, n); err != nil {
			return err
		}
		if st.lastScanned == n {
			st.scannedNonce = max(st.scannedNonce, nonceBefore)
		}
		st.head = n
		s.cfg.Fees.SetHead(n)
		if err := s.sendBetween(ctx); err != nil {
			return err
		}
	}
	// Confirmations change with heads; between them, re-checking every
	// round would only cost the sending latency a header read per block.
	if st.confirmedHead != st.head || time.Since(st.confirmedAt) >= time.Second {
		if err := s.checkConfirmations(ctx); err != nil {
			return err
		}
		st.confirmedHead, st.confirmedAt = st.head, time.Now()
		if err := s.sendBetween(ctx); err != nil {
			return err
		}
	}
	if err := s.checkNonces(ctx); err != nil {
		return err
	}
	if err := s.readRequests(ctx); err != nil {
		return err
	}
	if err := s.replaceDue(ctx); err != nil {
		return err
	}
	if err := s.rebroadcast(ctx); err != nil {
		return err
	}
	if err := s.explainRefusals(ctx); err != nil {
		return err
	}
	if err := s.refreshFunds(ctx); err != nil {
		return err
	}
	s.cfg.Metrics.inFlight.WithLabelValues(s.cfg.Chain.Name, s.sender.Hex()).Set(float64(len(st.flights)))
	return nil
}

// sendBetween runs a send round in the middle of tracking when payouts
// arrived since the last one (a wake is pending): at each head the tracker
// reads a block's receipts and writes hundreds of payouts mined and final,
// and new payouts waited for all of it before their first broadcast.
func (s *Sender) sendBetween(ctx context.Context) error {
	select {
	case <-s.wake:
	default:
		return nil
	}
	_, err := s.sendQueued(ctx)
	return err
}

// setScanned records that the receipts of every block up to b that hold
// this wallet's transactions are stored (Settled reads it).
func (s *Sender) setScanned(b uint64) {
	s.st.lastScanned = b
	s.scanned.Store(b)
}

// Settled returns the last block whose receipts this sender has stored,
// or 0 while it does not send (another instance holds the lease, or it is
// starting): a reconciliation of later blocks would miss its payouts.
func (s *Sender) Settled() uint64 { return s.scanned.Load() }

// scan matches the receipts of blocks after lastScanned up to head.
func (s *Sender) scan(ctx context.Context, head uint64) error {
	st := s.st
	if len(st.byHash) == 0 {
		s.setScanned(head)
		return nil
	}
	if head-st.lastScanned > maxScan {
		if err := s.lookupInFlightReceipts(ctx); err != nil {
			return err
		}
		s.setScanned(head)
		return nil
	}
	for b := st.lastScanned + 1; b <= head; b++ {
		receipts, ready, err := s.blockReceipts(ctx, b)
		if !ready {
			return nil // being read: the loop sends meanwhile and scans on when they arrive
		}
		if errors.Is(err, evm.ErrNotFound) {
			return nil // the node answering is behind: scan from here next round
		} else if err != nil {
			return fmt.Errorf("receipts of block %d: %w", b, err)
		}
		if err := s.recordReceipts(ctx, receipts); err != nil {
			return err
		}
		s.setScanned(b)
	}
	return nil
}

// recordReceipts stores the receipts that belong to attempts in flight and
// moves their payouts to confirming.
func (s *Sender) recordReceipts(ctx context.Context, receipts []*evm.Receipt) error {
	st := s.st
	var found []payout.Receipt
	for _, r := range receipts {
		if r == nil {
			continue
		}
		f, ok := st.byHash[r.TxHash]
		if !ok {
			continue
		}
		a := f.attemptByHash(r.TxHash)
		found = append(found, payout.Receipt{
			PayoutID: f.payoutID, TxHash: r.TxHash, BlockNumber: r.BlockNumber, BlockHash: r.BlockHash,
			GasUsed: r.GasUsed, EffectiveGasPrice: r.EffectiveGasPrice, L1Fee: r.L1Fee, Success: r.Success,
			Cancel: a != nil && a.Kind == payout.AttemptCancel,
		})
	}
	if len(found) == 0 {
		return nil
	}
	if err := s.transferLogs(ctx, found); err != nil {
		return err
	}
	if err := inChunks(found, func(c []payout.Receipt) error { return s.cfg.Store.MarkMined(ctx, c) }); err != nil {
		return fmt.Errorf("mark mined: %w", err)
	}
	for _, r := range found {
		f := st.flights[r.PayoutID]
		st.removeFlight(f)
		st.confirming[r.PayoutID] = &mined{payoutID: r.PayoutID, createdAt: f.createdAt,
			blockNumber: r.BlockNumber, blockHash: r.BlockHash, txHash: r.TxHash, success: r.Success,
			fee: r.Fee().String(), flight: f}
		s.log.Debug("payout mined", "payout_id", r.PayoutID, "tx_hash", r.TxHash.Hex(), "block", r.BlockNumber, "success", r.Success, "cancel", r.Cancel)
	}
	s.cfg.Metrics.transitions.WithLabelValues(s.cfg.Chain.Name, string(payout.StatusConfirming)).Add(float64(len(found)))
	return nil
}

// checkConfirmations re-checks that every mined payout's block is still
// canonical, sends reorged ones back, and finalizes those with enough
// confirmations.
func (s *Sender) checkConfirmations(ctx context.Context) error {
	st := s.st
	if len(st.confirming) == 0 {
		return nil
	}
	canonical := map[uint64]common.Hash{}
	var final, reorged []*mined
	for _, m := range st.confirming {
		hash, ok := canonical[m.blockNumber]
		if !ok {
			h, err := s.cfg.Client.BlockHash(ctx, m.blockNumber)
			if errors.Is(err, evm.ErrNotFound) {
				continue // the node is behind; look again next round
			} else if err != nil {
				return fmt.Errorf("block hash %d: %w", m.blockNumber, err)
			}
			hash = h
			canonical[m.blockNumber] = hash
		}
		switch {
		case hash != m.blockHash:
			reorged = append(reorged, m)
		case st.head+1 >= m.blockNumber+max(s.cfg.Chain.Confirmations, 1):
			final = append(final, m)
		}
	}
	if err := s.reorged(ctx, reorged); err != nil {
		return err
	}
	return s.finalize(ctx, final)
}

// reorged sends payouts whose block left the chain back to submitted and
// re-broadcasts their signed transactions.
func (s *Sender) reorged(ctx context.Context, ms []*mined) error {
	if len(ms) == 0 {
		return nil
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.payoutID
	}
	if err := inChunks(ids, func(c []string) error { return s.cfg.Store.MarkReorged(ctx, c) }); err != nil {
		return fmt.Errorf("mark reorged: %w", err)
	}
	lowest := ms[0].blockNumber
	for _, m := range ms {
		lowest = min(lowest, m.blockNumber)
	}
	if f, ok := s.cfg.Client.(interface{ ForgetBlocks(from uint64) }); ok {
		f.ForgetBlocks(lowest) // cached receipts of the old branch must not be read again
	}
	for _, m := range ms {
		// The reorged transaction may be mined again at a height already
		// scanned: read those blocks again.
		if m.blockNumber <= s.st.lastScanned {
			s.setScanned(m.blockNumber - 1)
		}
		delete(s.st.confirming, m.payoutID)
		f := m.flight
		if f == nil { // mined before this session began: rebuild it as recover does
			var err error
			if f, err = s.loadFlight(ctx, m.payoutID); err != nil {
				return err
			}
		}
		f.lastSent = 0
		s.st.addFlight(f)
		s.st.scannedNonce = min(s.st.scannedNonce, f.nonce()) // its nonce is unused again, or used in a block not scanned yet
		s.log.Warn("payout's block was reorged away; re-broadcasting", "payout_id", m.payoutID, "block", m.blockNumber)
	}
	s.cfg.Metrics.transitions.WithLabelValues(s.cfg.Chain.Name, string(payout.StatusSubmitted)).Add(float64(len(ms)))
	return nil
}

// finalize completes (or fails, when reverted) confirmed payouts.
func (s *Sender) finalize(ctx context.Context, ms []*mined) error {
	if len(ms) == 0 {
		return nil
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.payoutID
	}
	if err := inChunks(ids, func(c []string) error { return s.cfg.Store.Finalize(ctx, c) }); err != nil {
		return fmt.Errorf("finalize: %w", err)
	}
	now := time.Now()
	for _, m := range ms {
		delete(s.st.confirming, m.payoutID)
		status, code := payout.StatusCompleted, payout.Code("")
		if !m.success {
			status, code = payout.StatusFailed, payout.FailureRevertedOnChain
		}
		s.cfg.Metrics.transitions.WithLabelValues(s.cfg.Chain.Name, string(status)).Inc()
		s.cfg.Metrics.acceptToFinal.WithLabelValues(s.cfg.Chain.Name, string(status)).Observe(now.Sub(m.createdAt).Seconds())
		s.log.Info("payout "+string(status), "payout_id", m.payoutID, "tx_hash", m.txHash.Hex(),
			"block", m.blockNumber, "fee", m.fee, "failure_code", code)
	}
	return nil
}

// rebroadcast re-sends attempts that were never sent or that have not been
// mined for RebroadcastAfter blocks (a node may have dropped them). Before
// re-sending one that was sent, it asks for the receipts of all its
// attempts if the chain has used its nonce: a receipt the block scan missed
// settles the payout instead. A nonce the chain has not used yet has no
// receipt to find; asking anyway, for every transaction waiting in a pool
// fuller than a block, took the tracker seconds per round (geth derives a
// whole block's receipts per lookup) and starved the sending.
// A flight whose nonce someone else used is never sent again.
func (s *Sender) rebroadcast(ctx context.Context) error {
	var due, sent []*flight
	for _, f := range s.st.flights {
		if f.foreign {
			continue
		}
		if f.lastSent == 0 || s.st.head >= f.lastSent+s.cfg.RebroadcastAfter {
			due = append(due, f)
			if f.lastSent != 0 && f.nonce() < s.st.scannedNonce {
				sent = append(sent, f)
			}
			if len(due) == maxRebroadcast {
				break
			}
		}
	}
	if err := s.lookupReceipts(ctx, sent); err != nil {
		return err
	}
	due = slices.DeleteFunc(due, func(f *flight) bool { return s.st.flights[f.payoutID] == nil })
	if len(due) > 0 {
		s.log.Debug("re-broadcasting", "count", len(due))
		s.broadcast(ctx, due, false)
	}
	return nil
}

// lookupReceipts asks for the receipts of every attempt of fs and records
// those mined.
func (s *Sender) lookupReceipts(ctx context.Context, fs []*flight) error {
	if len(fs) == 0 {
		return nil
	}
	var hashes []common.Hash
	for _, f := range fs {
		for _, a := range f.attempts {
			hashes = append(hashes, a.TxHash)
		}
	}
	receipts, err := s.cfg.Client.Receipts(ctx, hashes)
	if err != nil {
		return fmt.Errorf("receipts of attempts: %w", err)
	}
	return s.recordReceipts(ctx, receipts)
}

// chunk is the most rows one store transaction of the tracker changes, so
// that a large backlog commits steadily instead of in one long transaction.
const chunk = 500

// inChunks calls f on consecutive parts of xs of at most chunk elements.
// Parts already committed stay committed when a later one fails; every
// store method called this way is idempotent, so the next round redoes
// only what is left.
func inChunks[T any](xs []T, f func([]T) error) error {
	for c := range slices.Chunk(xs, chunk) {
		if err := f(c); err != nil {
			return err
		}
	}
	return nil
}
