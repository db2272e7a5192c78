package payout

import (
	"encoding/json"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// Payout is one payment of an asset to one address.
type Payout struct {
	ID         string
	Status     Status
	Chain      string // configured chain name, e.g. "sandbox"
	ChainID    uint64
	Asset      string // asset symbol on that chain, e.g. "ETH", "SUSD"
	To         common.Address
	Amount     *big.Int // base units
	ExternalID string   // the caller's business key; "" when none
	Metadata   map[string]string
	Sender     common.Address // the hot wallet that pays it
	Priority   Priority       // what it bids for gas; never "" once stored

	// Reason says why a queued payout waits or why one is stuck ("" when
	// neither); ReasonDetail says it in words, with the amounts.
	Reason       Code
	ReasonDetail string
	// FeeCap is an operator's limit on what this payout's transaction may
	// cost (gas limit × max fee, wei), set by a speed-up; nil: the chain's
	// caps apply.
	FeeCap *big.Int
	// CancelRequested: cancel was asked after broadcast; a zero-value
	// self-transfer races the payout's transaction for its nonce.
	CancelRequested bool
	// CancelMined: the transaction mined at the payout's nonce is the
	// cancel, so the payout ends cancelled (with the cancel's fee).
	CancelMined bool

	TxHash      *common.Hash // the attempt that mined (or the latest one sent)
	Nonce       *uint64
	BlockNumber uint64 // 0 until mined
	BlockHash   *common.Hash
	Fee         *big.Int // wei paid: gasUsed × effectiveGasPrice, once mined
	ReceiptOK   bool     // the mined receipt's status was 1; meaningful once BlockNumber != 0

	FailureCode    Code
	FailureMessage string

	// BatchID is the batch this payout is a row of ("" when none) and
	// BatchRow its row number in the batch's input.
	BatchID  string
	BatchRow int
	// CarrierID names the payout whose transaction pays this one too (the
	// first payout of a batch transaction); "" when it is paid by its own
	// attempts. A carried payout follows its carrier's state.
	CarrierID string
	// ChunkPos is the payout's place in its batch transaction (0 for the
	// carrier) and GasWeight its marginal gas there, by which the
	// transaction's fee is shared.
	ChunkPos  int
	GasWeight uint64
	// ChunkAmount is, on a carrier, the total value its transaction moves
	// (its own amount and every carried one); nil on any other payout.
	ChunkAmount *big.Int
	// LogIndex is the log index of the token Transfer that paid it, once
	// mined in a batch transaction; nil otherwise.
	LogIndex *uint

	Version   int64 // bumped on every change; events carry it as their sequence
	CreatedAt time.Time
	UpdatedAt time.Time
}

// wirePayout is the payout's JSON form in the API and in events.
type wirePayout struct {
	ID             string            `json:"id"`
	Object         string            `json:"object"`
	Status         Status            `json:"status"`
	Chain          string            `json:"chain"`
	ChainID        uint64            `json:"chain_id"`
	Asset          string            `json:"asset"`
	To             string            `json:"to"`
	Amount         string            `json:"amount"`
	ExternalID     *string           `json:"external_id"`
	Metadata       map[string]string `json:"metadata"`
	From           string            `json:"from"`
	Priority       Priority          `json:"priority"`
	StatusReason   *string           `json:"status_reason"`
	StatusDetail   *string           `json:"status_detail"`
	FeeCap         *string           `json:"fee_cap"`
	CancelRequest  bool              `json:"cancel_requested"`
	TxHash         *string           `json:"tx_hash"`
	Nonce          *uint64           `json:"nonce"`
	BlockNumber    *uint64           `json:"block_number"`
	Fee            *string           `json:"fee"`
	FailureCode    *string           `json:"failure_code"`
	FailureMessage *string           `json:"failure_message"`
	BatchID        *string           `json:"batch_id"`
	LogIndex       *uint             `json:"log_index"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

// MarshalJSON writes the payout as the API shows it: amounts as decimal
// strings, addresses checksummed, unknown values as null (AppendJSON).
func (p *Payout) MarshalJSON() ([]byte, error) {
	return p.AppendJSON(make([]byte, 0, 768)), nil
}

// UnmarshalJSON reads the API form back (used by clients and tests).
func (p *Payout) UnmarshalJSON(b []byte) error {
	var w wirePayout
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = Payout{
		ID: w.ID, Status: w.Status, Chain: w.Chain, ChainID: w.ChainID, Asset: w.Asset,
		To: common.HexToAddress(w.To), Metadata: w.Metadata, Sender: common.HexToAddress(w.From),
		Nonce: w.Nonce, Priority: w.Priority, CancelRequested: w.CancelRequest,
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt, LogIndex: w.LogIndex,
	}
	if w.BatchID != nil {
		p.BatchID = *w.BatchID
	}
	if w.StatusReason != nil {
		p.Reason = Code(*w.StatusReason)
	}
	if w.StatusDetail != nil {
		p.ReasonDetail = *w.StatusDetail
	}
	if w.FeeCap != nil {
		p.FeeCap, _ = new(big.Int).SetString(*w.FeeCap, 10)
	}
	p.Amount, _ = new(big.Int).SetString(w.Amount, 10)
	if w.ExternalID != nil {
		p.ExternalID = *w.ExternalID
	}
	if w.TxHash != nil {
		h := common.HexToHash(*w.TxHash)
		p.TxHash = &h
	}
	if w.BlockNumber != nil {
		p.BlockNumber = *w.BlockNumber
	}
	if w.Fee != nil {
		p.Fee, _ = new(big.Int).SetString(*w.Fee, 10)
	}
	if w.FailureCode != nil {
		p.FailureCode = Code(*w.FailureCode)
	}
	if w.FailureMessage != nil {
		p.FailureMessage = *w.FailureMessage
	}
	return nil
}

// Attempt is one signed transaction sent for a payout. A payout may have
// several attempts for the same nonce (fee replacements); whichever mines
// settles it.
type Attempt struct {
	ID                   int64
	PayoutID             string
	ChainID              uint64
	Sender               common.Address
	Nonce                uint64
	TxHash               common.Hash
	RawTx                []byte // the signed transaction, stored before it is broadcast
	GasLimit             uint64
	MaxFeePerGas         *big.Int
	MaxPriorityFeePerGas *big.Int
	Kind                 AttemptKind
	CreatedAt            time.Time
	// Chunk is set on a first attempt that pays several payouts in one
	// batch transaction (PayoutIDs[0] == PayoutID); not stored as such:
	// the carried payouts record it.
	Chunk *Chunk
}

// AttemptKind says what an attempt's transaction does.
type AttemptKind string

// The kinds of attempt.
const (
	// AttemptTransfer pays the payout ("" is read as this).
	AttemptTransfer AttemptKind = "transfer"
	// AttemptCancel is a zero-value transfer from the hot wallet to itself
	// at the payout's nonce: if it mines, the payout is not paid.
	AttemptCancel AttemptKind = "cancel"
	// AttemptApprove approves exactly a batch's token total to the batch
	// contract, at the nonce just before the batch transaction's (mode
	// contract); it belongs to the batch transaction's carrier payout.
	AttemptApprove AttemptKind = "approve"
)

// Move hands a queued payout from one hot wallet of its chain to another
// (see Store.MoveQueued).
type Move struct {
	PayoutID string
	From, To common.Address
}

// Hold sets why payouts wait (queued) or are stuck.
type Hold struct {
	PayoutID string
	Reason   Code
	Detail   string
}

// Receipt is what the chain says about a mined attempt.
type Receipt struct {
	PayoutID          string
	TxHash            common.Hash
	BlockNumber       uint64
	BlockHash         common.Hash
	GasUsed           uint64
	EffectiveGasPrice *big.Int
	L1Fee             *big.Int // the L1 data fee an OP-stack chain adds; nil elsewhere
	Success           bool     // receipt status 1
	Cancel            bool     // the mined attempt is the payout's cancel
	// TransferLogs are the log indexes of the token Transfer events a
	// batch transaction emitted from the wallet, in order: one per payout
	// of its chunk, in chunk order (nil for native coin).
	TransferLogs []uint
}

// Fee is what the receipt cost: gasUsed × effectiveGasPrice, plus the L1
// data fee where the chain charges one.
func (r Receipt) Fee() *big.Int {
	fee := new(big.Int).Mul(new(big.Int).SetUint64(r.GasUsed), r.EffectiveGasPrice)
	if r.L1Fee != nil {
		fee.Add(fee, r.L1Fee)
	}
	return fee
}

// Failure ends a queued payout before any nonce was used.
type Failure struct {
	PayoutID string
	Code     Code
	Message  string
}

// Event is an outbox row: written in the same database transaction as the
// state change it reports, delivered later.
type Event struct {
	Seq       int64  // global, increasing position (for streaming)
	ID        string // "evt_..."
	Type      string // e.g. "payout.completed"
	ObjectID  string
	ObjectSeq int64           // the object's Version at that change
	Data      json.RawMessage // the object as the API shows it
	CreatedAt time.Time
}

// IdempotencyRecord is a stored answer to a request with an Idempotency-Key.
type IdempotencyRecord struct {
	Scope          string // the API key's id: keys are per API key
	Key            string
	Fingerprint    string // hash of method, path and body
	ResponseStatus int
	ResponseBody   []byte
	CreatedAt      time.Time
}

// ListFilter selects payouts for ListPayouts. Results are newest first.
type ListFilter struct {
	Status        Status // "" for any
	ExternalID    string // "" for any
	BatchID       string // "" for any: only the payouts of this batch
	StartingAfter string // a payout id: return older ones
	EndingBefore  string // a payout id: return newer ones
	Limit         int    // 1..100
}
