package txm

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/contracts"
	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/fees"
	"github.com/sluicepay/sluice/internal/payout"
)

// Batch transactions: the payouts of a batch are paid many at once by one
// call of Sluice's batch contract, chunked under a gas budget, chunks of
// one wallet pipelined at consecutive nonces. Each chunk is simulated
// before it is signed; a recipient that would make it revert is taken out
// and paid (or failed) alone. The store keeps the chunk's payouts with its
// first one (the carrier), whose attempts carry the transaction.

// The batch modes.
const (
	// BatchEIP7702: the wallet delegates its code to the executor (EIP-7702)
	// and calls itself, so transfers come from the wallet and no allowance
	// exists; the executor accepts calls from the wallet only.
	BatchEIP7702 = "eip7702"
	// BatchContract: a deployed batch contract forwards the native coin sent
	// with the call, and pulls tokens from the wallet with an allowance of
	// exactly the chunk's total, approved by a transaction at the nonce
	// just before the batch's (simulated together with eth_simulateV1; a
	// node without it pays token payouts one by one).
	BatchContract = "contract"
)

// Batching is how a chain's batch payouts are sent; the zero value sends
// every payout alone.
type Batching struct {
	Mode     string         // BatchEIP7702, BatchContract or "" (off)
	Executor common.Address // BatchEIP7702: the SluiceBatchExecutor the wallet delegates to
	Contract common.Address // BatchContract: the deployed SluiceBatch
	// GasBudget bounds one batch transaction's gas. Default 15,000,000,
	// under EIP-7825's 2^24 cap on a transaction.
	GasBudget uint64
	// MaxInFlight bounds the batch transactions of one wallet in flight at
	// once. Default 8.
	MaxInFlight int
	// ReadSize is how many queued payouts a round reads when batching is
	// on, so that a chunk can fill the gas budget (payouts paid alone stay
	// at Config.BatchSize a round). Default 2,000.
	ReadSize int
}

// readLimit is how many queued payouts one send round reads.
func (s *Sender) readLimit() int {
	if s.cfg.Batching.Mode == "" {
		return s.cfg.BatchSize
	}
	return max(s.cfg.BatchSize, s.cfg.Batching.ReadSize)
}

func (b *Batching) defaults() {
	if b.GasBudget == 0 {
		b.GasBudget = 15_000_000
	}
	b.GasBudget = min(b.GasBudget, maxTxGas-1_000_000)
	if b.MaxInFlight <= 0 {
		b.MaxInFlight = 8
	}
	if b.ReadSize <= 0 {
		b.ReadSize = 2000
	}
}

// maxTxGas is EIP-7825's cap on one transaction's gas limit.
const maxTxGas = 1 << 24

// The marginal gas of one payout in a batch transaction (measured on the
// dev chain, see BENCHMARKS.md), by which the transaction's fee is shared
// and chunks are sized; chunkBaseGas is a transaction's fixed part.
const (
	gasTokenHolder    = 8_700
	gasTokenNewHolder = 25_800
	gasNativeExisting = 10_000
	chunkBaseGas      = 60_000
	delegationGas     = 25_000
)

// batchable says whether a queued payout may ride in a batch transaction:
// a batch's payout, or any payout of a delegated wallet (it sends one
// transaction per block, so single payouts share it rather than queue
// behind each other).
func (s *Sender) batchable(p *payout.Payout) bool {
	b := s.cfg.Batching
	if b.Mode == "" || (p.BatchID == "" && !s.st.delegated) || !contracts.BatchAmountFits(p.Amount) {
		return false
	}
	_, ok := s.cfg.Chain.Assets[p.Asset]
	return ok
}

// chunkFlights counts the wallet's batch transactions in flight.
func (s *Sender) chunkFlights() int {
	n := 0
	for _, f := range s.st.flights {
		if f.chunk {
			n++
		}
	}
	return n
}

// planChunks plans batch transactions for batchable payouts (in queue
// order, grouped by asset). It returns the plans, the payouts to pay alone
// (empty accounts, recipients that would revert a chunk) and the holds of
// those that must wait.
func (s *Sender) planChunks(ctx context.Context, ps []*payout.Payout, funds *funds) ([]planned, []*payout.Payout, []payout.Hold, error) {
	free := s.cfg.Batching.MaxInFlight - s.chunkFlights()
	if one, err := s.delegatedOneAtATime(ctx); err != nil {
		return nil, nil, nil, err
	} else if one {
		free = min(free, 1) // and only one transaction in flight at all
	}
	if len(ps) == 0 || free <= 0 {
		return nil, nil, nil, nil // they wait for the chunks in flight
	}
	byAsset, order := map[string][]*payout.Payout{}, []string{}
	for _, p := range ps {
		if byAsset[p.Asset] == nil {
			order = append(order, p.Asset)
		}
		byAsset[p.Asset] = append(byAsset[p.Asset], p)
	}
	delegate, foreign, err := s.needsDelegation(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	if foreign {
		return nil, ps, nil, nil // paid one by one: the wallet's code is not ours to replace
	}
	var chunks []chunkDraft
	var alone []*payout.Payout
	for _, sym := range order {
		asset := s.cfg.Chain.Assets[sym]
		weights, solo, err := s.weigh(ctx, asset, byAsset[sym])
		if err != nil {
			return nil, nil, nil, err
		}
		alone = append(alone, solo...)
		chunks = append(chunks, s.cut(asset, byAsset[sym], weights)...)
	}
	if len(chunks) > free {
		chunks = chunks[:free] // the rest wait for a free slot
	}
	plans, more, holds, err := s.simulateChunks(ctx, chunks, delegate, funds)
	return plans, append(alone, more...), holds, err
}

// delegatedOneAtATime says whether the wallet may have only one
// transaction in flight: nodes (geth's pool among them) accept a single
// pending transaction from an account delegated with EIP-7702, or with a
// delegation pending, and refuse the next nonces until it is mined. Such
// a wallet sends one transaction (a whole chunk) per block.
func (s *Sender) delegatedOneAtATime(ctx context.Context) (bool, error) {
	if s.cfg.Batching.Mode != BatchEIP7702 {
		return false, nil
	}
	if s.st.delegated || s.delegationInFlight() {
		return true, nil
	}
	code, err := s.walletCode(ctx)
	if err != nil {
		return false, err
	}
	s.st.delegated = len(code) > 0 // any delegation (or code) limits the pool the same way
	return s.st.delegated, nil
}

// delegationInFlight reports whether a transaction in flight carries the
// wallet's delegation.
func (s *Sender) delegationInFlight() bool {
	for _, f := range s.st.flights {
		if f.delegates() {
			return true
		}
	}
	return false
}

// walletCode returns the wallet's code, read once per head.
func (s *Sender) walletCode(ctx context.Context) ([]byte, error) {
	if s.st.codeHead == s.st.head && s.st.codeHead != 0 {
		return s.st.code, nil
	}
	code, err := s.cfg.Client.Code(ctx, s.sender)
	if err != nil {
		return nil, fmt.Errorf("wallet code: %w", err)
	}
	s.st.code, s.st.codeHead = code, s.st.head
	return code, nil
}

// needsDelegation says whether the next batch transaction must carry the
// wallet's EIP-7702 delegation: the chain does not show it and no
// transaction in flight carries it. foreign: the wallet already has other
// code (a delegation to another contract), which Sluice never replaces.
func (s *Sender) needsDelegation(ctx context.Context) (need, foreign bool, err error) {
	if s.cfg.Batching.Mode != BatchEIP7702 || s.delegationInFlight() {
		return false, false, nil
	}
	code, err := s.walletCode(ctx)
	if err != nil {
		return false, false, err
	}
	if contracts.IsDelegatedTo(code, s.cfg.Batching.Executor) {
		return false, false, nil
	}
	if len(code) > 0 {
		s.log.Warn("the wallet has code that is not Sluice's batch executor; paying batch payouts one by one",
			"code_bytes", len(code))
		return false, true, nil
	}
	return true, false, nil
}

// chunkDraft is a chunk before simulation.
type chunkDraft struct {
	asset   payout.Asset
	ps      []*payout.Payout
	weights []uint64
}

// weigh returns each payout's marginal gas, and takes out the native coin
// payouts to empty accounts: creating an account costs 25,000 gas in a
// batch too, so a plain transfer is cheaper.
func (s *Sender) weigh(ctx context.Context, asset payout.Asset, ps []*payout.Payout) ([]uint64, []*payout.Payout, error) {
	tos := make([]common.Address, len(ps))
	for i, p := range ps {
		tos[i] = p.To
	}
	weights := make([]uint64, len(ps))
	if asset.Token == nil {
		empty, err := s.cfg.Client.EmptyAccounts(ctx, tos)
		if err != nil {
			return nil, nil, fmt.Errorf("read recipients: %w", err)
		}
		var alone []*payout.Payout
		for i, p := range ps {
			if empty[i] {
				alone = append(alone, p)
				weights[i] = 0
				continue
			}
			weights[i] = gasNativeExisting
		}
		return weights, alone, nil
	}
	held, err := s.cfg.Client.TokenHolders(ctx, *asset.Token, tos)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s holders: %w", asset.Symbol, err)
	}
	for i := range ps {
		weights[i] = gasTokenNewHolder
		if held[i] {
			weights[i] = gasTokenHolder
		}
	}
	return weights, nil, nil
}

// cut splits payouts (weight 0: paid alone) into chunks under the gas budget.
func (s *Sender) cut(asset payout.Asset, ps []*payout.Payout, weights []uint64) []chunkDraft {
	var out []chunkDraft
	cur := chunkDraft{asset: asset}
	used := uint64(chunkBaseGas + delegationGas)
	for i, p := range ps {
		if weights[i] == 0 {
			continue
		}
		if used+weights[i] > s.cfg.Batching.GasBudget && len(cur.ps) > 0 {
			out = append(out, cur)
			cur, used = chunkDraft{asset: asset}, chunkBaseGas+delegationGas
		}
		cur.ps, cur.weights = append(cur.ps, p), append(cur.weights, weights[i])
		used += weights[i]
	}
	if len(cur.ps) > 0 {
		out = append(out, cur)
	}
	return out
}

// call builds the chunk's transaction call.
func (s *Sender) chunkCall(c chunkDraft, delegate bool) (evm.Call, *big.Int, error) {
	tos, amounts := make([]common.Address, len(c.ps)), make([]*big.Int, len(c.ps))
	total := new(big.Int)
	for i, p := range c.ps {
		tos[i], amounts[i] = p.To, p.Amount
		total.Add(total, p.Amount)
	}
	packed, err := contracts.PackRecipients(tos, amounts)
	if err != nil {
		return evm.Call{}, nil, err
	}
	var data []byte
	call := evm.Call{From: s.sender, To: s.sender, Value: new(big.Int)}
	switch {
	case s.cfg.Batching.Mode == BatchContract && c.asset.Token != nil:
		call.To = s.cfg.Batching.Contract
		data, err = contracts.BatchTokenCall(*c.asset.Token, packed)
	case s.cfg.Batching.Mode == BatchContract:
		call.To, call.Value = s.cfg.Batching.Contract, new(big.Int).Set(total)
		data, err = contracts.BatchNativeCall(packed)
	case c.asset.Token == nil:
		data, err = contracts.ExecutorNativeCall(packed)
	default:
		data, err = contracts.ExecutorTokenCall(*c.asset.Token, packed)
	}
	if delegate {
		executor := s.cfg.Batching.Executor
		call.Delegate = &executor
	}
	call.Data = data
	return call, total, err
}

// simulateChunks estimates every chunk; a recipient that makes its chunk
// revert is taken out (to be paid alone, where it fails or waits with its
// own reason) and the chunk is estimated again. Chunks that simulate fine
// get their fees and are reserved from the wallet's funds.
func (s *Sender) simulateChunks(ctx context.Context, chunks []chunkDraft, delegate bool, fu *funds) ([]planned, []*payout.Payout, []payout.Hold, error) {
	var plans []planned
	var alone []*payout.Payout
	var holds []payout.Hold
	for _, c := range chunks {
		for try := 0; len(c.ps) > 0; try++ {
			call, total, err := s.chunkCall(c, delegate)
			if err != nil {
				return nil, nil, nil, err
			}
			pre := s.approval(c, total)
			gas, errs, preGas, err := s.simulateChunk(ctx, call, pre)
			if errors.Is(err, errNoSimulation) {
				s.log.Warn("the node cannot simulate an approval and a batch together (eth_simulateV1); paying token payouts one by one", "err", err)
				alone = append(alone, c.ps...)
				break
			}
			if err != nil {
				return nil, nil, nil, fmt.Errorf("estimate batch transaction: %w", err)
			}
			if errs[0] == nil {
				pl, hs, err := s.chunkPlan(ctx, c, call, total, gas[0], fu)
				if hs == nil && err == nil && pre != nil {
					pl, hs = s.withApproval(pl, c, *pre, preGas, fu)
				}
				if err != nil {
					return nil, nil, nil, err
				}
				if hs == nil {
					plans = append(plans, pl)
					delegate = false // one transaction carries the delegation
				}
				holds = append(holds, hs...)
				break
			}
			i, ok := contracts.RecipientFailedIndex(evm.RevertData(errs[0]))
			if kind, _ := evm.Classify(errs[0]); !ok || i < 0 || i >= len(c.ps) || try >= 8 || kind == evm.KindInsufficientFunds {
				alone = append(alone, c.ps...) // each finds its own reason alone
				s.log.Info("batch transaction would fail; paying its payouts one by one", "payouts", len(c.ps), "err", errs[0])
				break
			}
			s.log.Info("recipient would revert its batch; paying it alone", "payout_id", c.ps[i].ID, "to", c.ps[i].To.Hex())
			alone = append(alone, c.ps[i])
			c.ps = append(c.ps[:i:i], c.ps[i+1:]...)
			c.weights = append(c.weights[:i:i], c.weights[i+1:]...)
		}
	}
	return plans, alone, holds, nil
}

// chunkPlan prices a simulated chunk and reserves its funds, or returns
// the holds of its payouts when it must wait.
func (s *Sender) chunkPlan(ctx context.Context, c chunkDraft, call evm.Call, total *big.Int, estimate uint64, fu *funds) (planned, []payout.Hold, error) {
	gas := min(estimate+estimate/20+30_000, maxTxGas-1)
	if call.Delegate != nil {
		gas = min(gas+delegationGas, maxTxGas-1)
	}
	first := c.ps[0]
	q, err := s.cfg.Fees.Quote(ctx, first.Priority)
	if err != nil {
		return planned{}, nil, fmt.Errorf("fee quote: %w", err)
	}
	holdAll := func(reason payout.Code, detail string) []payout.Hold {
		hs := make([]payout.Hold, len(c.ps))
		for i, p := range c.ps {
			hs[i] = payout.Hold{PayoutID: p.ID, Reason: reason, Detail: detail}
		}
		return hs
	}
	// The per-payout fee cap applies to each payout's share of the gas.
	if err := s.cfg.Fees.Check(q, ceilDiv(gas, uint64(len(c.ps))), nil); err != nil {
		var over *fees.OverCapError
		if !errors.As(err, &over) {
			return planned{}, nil, err
		}
		return planned{}, holdAll(payout.Code(over.Reason), over.Error()+"; the payout waits until fees fall"), nil
	}
	need := new(big.Int).Mul(new(big.Int).SetUint64(gas), q.Fees.MaxFeePerGas)
	if c.asset.Token == nil {
		need.Add(need, total)
	} else if avail := fu.tokens[*c.asset.Token]; avail == nil || avail.Cmp(total) < 0 {
		return planned{}, holdAll(payout.ReasonInsufficientFunds, fmt.Sprintf(
			"the hot wallet can spend %s %s base units after what is in flight, its batch transaction needs %s; it waits for a top-up",
			nonNegative(avail), c.asset.Symbol, total)), nil
	}
	if fu.native.Cmp(need) < 0 {
		return planned{}, holdAll(payout.ReasonInsufficientFunds, fmt.Sprintf(
			"the hot wallet can spend %s wei after what is in flight, its batch transaction needs %s (value and gas at the max fee); it waits for a top-up",
			nonNegative(fu.native), need)), nil
	}
	fu.native.Sub(fu.native, need)
	if c.asset.Token != nil {
		fu.tokens[*c.asset.Token].Sub(fu.tokens[*c.asset.Token], total)
	}
	ids := make([]string, len(c.ps))
	for i, p := range c.ps {
		ids[i] = p.ID
	}
	return planned{p: first, call: call, gas: gas, fees: q.Fees,
		chunk: &payout.Chunk{PayoutIDs: ids, GasWeights: c.weights, Amount: total, Delegates: call.Delegate != nil}}, nil, nil
}

func ceilDiv(a, b uint64) uint64 { return (a + b - 1) / b }

// errNoSimulation: the node cannot simulate a sequence of calls.
var errNoSimulation = errors.New("no eth_simulateV1")

// approval is the call approving exactly a token chunk's total to the
// batch contract (mode contract), or nil.
func (s *Sender) approval(c chunkDraft, total *big.Int) *evm.Call {
	if s.cfg.Batching.Mode != BatchContract || c.asset.Token == nil {
		return nil
	}
	return &evm.Call{From: s.sender, To: *c.asset.Token, Value: new(big.Int), Data: evm.ApproveData(s.cfg.Batching.Contract, total)}
}

// simulateChunk estimates a batch call, after its approval when it has
// one (the two simulated in sequence: the batch needs the allowance).
func (s *Sender) simulateChunk(ctx context.Context, call evm.Call, pre *evm.Call) (gas []uint64, errs []error, preGas uint64, err error) {
	if pre == nil {
		gas, errs, err = s.cfg.Client.EstimateGas(ctx, []evm.Call{call})
		return gas, errs, 0, err
	}
	gas, errs, err = s.cfg.Client.SimulateSequence(ctx, []evm.Call{*pre, call})
	if err != nil {
		if _, deterministic := evm.Classify(err); deterministic {
			return nil, nil, 0, fmt.Errorf("%w: %v", errNoSimulation, err)
		}
		return nil, nil, 0, err
	}
	if errs[0] != nil { // the approval itself fails: pay them alone, each finds its reason
		return []uint64{0}, []error{errs[0]}, 0, nil
	}
	// The simulation reports gas used; a limit needs room for refunds and
	// the 63/64 rule, which chunkPlan's headroom gives.
	return gas[1:], errs[1:], gas[0] + gas[0]/5 + 10_000, nil
}

// withApproval adds the approval to a chunk's plan and reserves its gas.
func (s *Sender) withApproval(pl planned, c chunkDraft, pre evm.Call, gas uint64, fu *funds) (planned, []payout.Hold) {
	need := new(big.Int).Mul(new(big.Int).SetUint64(gas), pl.fees.MaxFeePerGas)
	if fu.native.Cmp(need) < 0 {
		hs := make([]payout.Hold, len(c.ps))
		for i, p := range c.ps {
			hs[i] = payout.Hold{PayoutID: p.ID, Reason: payout.ReasonInsufficientFunds, Detail: fmt.Sprintf(
				"the hot wallet can spend %s wei after what is in flight, its batch transaction and approval need %s more; it waits for a top-up",
				nonNegative(fu.native), need)}
		}
		return pl, hs
	}
	fu.native.Sub(fu.native, need)
	pl.pre, pl.preGas = &pre, gas
	return pl, nil
}

// recoverApprovals finds, for the token batch transactions in flight, the
// latest signed approval at the nonce before theirs.
func (s *Sender) recoverApprovals(ctx context.Context) error {
	if s.cfg.Batching.Mode != BatchContract {
		return nil
	}
	for _, f := range s.st.flights {
		if !f.chunk || f.token == nil {
			continue
		}
		as, err := s.cfg.Store.ListAttempts(ctx, f.payoutID)
		if err != nil {
			return fmt.Errorf("attempts of %s: %w", f.payoutID, err)
		}
		for _, a := range as {
			if a.Kind == payout.AttemptApprove && a.Nonce+1 == f.nonce() {
				f.pre = a // the latest, as attempts come oldest first
			}
		}
	}
	return nil
}

// transferLogs finds, for the mined receipts of token payouts of batches
// (batch transactions or paid alone), the log index of each payout's
// Transfer; other payouts skip the extra receipt read.
func (s *Sender) transferLogs(ctx context.Context, rs []payout.Receipt) error {
	for i, r := range rs {
		f := s.st.byHash[r.TxHash]
		if f == nil || !(f.chunk || f.inBatch) || f.token == nil || !r.Success || r.Cancel {
			continue
		}
		logs, err := s.cfg.Client.TransferLogs(ctx, r.TxHash, *f.token, s.sender)
		if err != nil {
			return fmt.Errorf("transfer logs of %s: %w", r.TxHash.Hex(), err)
		}
		rs[i].TransferLogs = logs
	}
	return nil
}
