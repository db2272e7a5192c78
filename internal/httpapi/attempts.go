package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/sluicepay/sluice/internal/payout"
)

// attemptView is one signed transaction of a payout. The raw transaction is
// public once broadcast; it is what an operator re-sends by hand.
type attemptView struct {
	Object               string    `json:"object"`
	PayoutID             string    `json:"payout_id"`
	ChainID              uint64    `json:"chain_id"`
	From                 string    `json:"from"`
	Nonce                uint64    `json:"nonce"`
	Kind                 string    `json:"kind"`
	TxHash               string    `json:"tx_hash"`
	GasLimit             uint64    `json:"gas_limit"`
	MaxFeePerGas         string    `json:"max_fee_per_gas"`
	MaxPriorityFeePerGas string    `json:"max_priority_fee_per_gas"`
	RawTx                string    `json:"raw_tx"`
	CreatedAt            time.Time `json:"created_at"`
}

type attemptList struct {
	Object string        `json:"object"`
	Data   []attemptView `json:"data"`
}

// BroadcastResult is what one re-broadcast of a signed transaction gave.
type BroadcastResult struct {
	TxHash string `json:"tx_hash"`
	Error  string `json:"error,omitempty"`
}

// listAttempts handles GET /v1/payouts/{id}/attempts, oldest first.
func (s *Server) listAttempts(w http.ResponseWriter, r *http.Request) {
	p, attempts, ok := s.payoutAttempts(w, r)
	if !ok {
		return
	}
	out := attemptList{Object: "list", Data: make([]attemptView, 0, len(attempts))}
	for _, a := range attempts {
		out.Data = append(out.Data, attemptView{Object: "attempt", PayoutID: p.ID, ChainID: a.ChainID,
			From: a.Sender.Hex(), Nonce: a.Nonce, Kind: string(attemptKind(a)), TxHash: a.TxHash.Hex(), GasLimit: a.GasLimit,
			MaxFeePerGas: a.MaxFeePerGas.String(), MaxPriorityFeePerGas: a.MaxPriorityFeePerGas.String(),
			RawTx: hexutil.Encode(a.RawTx), CreatedAt: a.CreatedAt.UTC()})
	}
	writeJSON(w, "application/json", http.StatusOK, out)
}

// rebroadcast handles POST /v1/payouts/{id}/rebroadcast: every stored
// attempt of a payout that is not final is sent again to every usable
// upstream of its chain. Nothing new is signed.
func (s *Server) rebroadcast(w http.ResponseWriter, r *http.Request) {
	p, attempts, ok := s.payoutAttempts(w, r)
	if !ok {
		return
	}
	if !p.Status.InFlight() || len(attempts) == 0 {
		s.fail(w, r, newError(payout.CodeNotRebroadcastable,
			"payout %s is %s: only a submitted or stuck payout (signed, not yet mined) can be re-broadcast", p.ID, p.Status))
		return
	}
	if s.broadcast == nil {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server has no upstream pool to broadcast through"))
		return
	}
	out := struct {
		Object string            `json:"object"`
		Data   []BroadcastResult `json:"data"`
	}{Object: "list"}
	for _, a := range attempts {
		res := BroadcastResult{TxHash: a.TxHash.Hex()}
		if err := s.broadcast(r.Context(), p.Chain, a.RawTx); err != nil {
			res.Error = err.Error()
		}
		out.Data = append(out.Data, res)
	}
	writeJSON(w, "application/json", http.StatusOK, out)
}

// attemptKind is a's kind; attempts stored before kinds existed are
// transfers.
func attemptKind(a *payout.Attempt) payout.AttemptKind {
	if a.Kind == "" {
		return payout.AttemptTransfer
	}
	return a.Kind
}

func (s *Server) payoutAttempts(w http.ResponseWriter, r *http.Request) (*payout.Payout, []*payout.Attempt, bool) {
	id := r.PathValue("id")
	if !plausibleID(id) {
		s.fail(w, r, payout.ErrNotFound)
		return nil, nil, false
	}
	p, err := s.store.GetPayout(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	attempts, err := s.store.ListAttempts(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return nil, nil, false
	}
	return p, attempts, true
}

// broadcastFunc sends a signed transaction on a chain.
type broadcastFunc func(ctx context.Context, chain string, raw []byte) error
