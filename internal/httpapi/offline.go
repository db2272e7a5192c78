package httpapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// Offline signing: when a wallet's signer is down, an operator asks for an
// offline plan (POST /v1/offline_plans), signs its transactions on a
// machine with no network, and submits the signed file
// (POST /v1/offline_plans/{id}/signed); the wallet's sender does the
// planning and the broadcasting (see payout.OfflinePlan).

// Codes of offline signing.
const (
	codeOfflinePlanActive payout.Code = "offline_plan_active"
	codeOfflinePlanState  payout.Code = "offline_plan_state"
	codeSignedMismatch    payout.Code = "signed_transaction_mismatch"
	codeUnknownWallet     payout.Code = "unknown_wallet"
)

// maxOfflinePayouts bounds one plan: a file an operator can check and sign.
const maxOfflinePayouts = 1000

func init() {
	for code, info := range map[payout.Code]struct {
		status int
		title  string
	}{
		codeOfflinePlanActive: {http.StatusConflict, "Wallet has an active offline plan"},
		codeOfflinePlanState:  {http.StatusConflict, "Offline plan's status does not allow this"},
		codeSignedMismatch:    {http.StatusUnprocessableEntity, "Signed transaction does not match the plan"},
		codeUnknownWallet:     {http.StatusUnprocessableEntity, "Unknown hot wallet"},
	} {
		codeInfo[code] = info
	}
}

// storeAs is Config.Store as the store of what (e.g. offline plans), or,
// after answering 503, false.
func storeAs[T any](s *Server, w http.ResponseWriter, r *http.Request, what string) (T, bool) {
	st, ok := s.store.(T)
	if !ok {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server's store keeps no %s", what))
	}
	return st, ok
}

// getByID answers GET …/{id} with what get returns for the path's id, or
// 404 naming what.
func getByID[T any](s *Server, w http.ResponseWriter, r *http.Request, what string, get func(context.Context, string) (T, error)) {
	v, err := get(r.Context(), r.PathValue("id"))
	if errors.Is(err, payout.ErrNotFound) {
		err = newError(payout.CodeNotFound, "no such %s", what)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, "application/json", http.StatusOK, v)
}

func fieldError(field string, code payout.Code, msg string) error {
	return &payout.ValidationError{Errors: []*payout.FieldError{{Field: field, Code: code, Message: msg}}}
}

// createOfflinePlan handles POST /v1/offline_plans.
func (s *Server) createOfflinePlan(w http.ResponseWriter, r *http.Request) {
	st, ok := storeAs[payout.OfflinePlanStore](s, w, r, "offline plans")
	if !ok {
		return
	}
	var in struct {
		Chain      string `json:"chain"`
		Wallet     string `json:"wallet"`
		MaxPayouts int    `json:"max_payouts"`
	}
	if err := decodeStrict(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	ch, ok := s.catalog.Chains[in.Chain]
	if !ok {
		s.fail(w, r, fieldError("chain", payout.CodeUnknownChain, "no chain is named "+strconv.Quote(truncate(in.Chain, 64))))
		return
	}
	if !common.IsHexAddress(in.Wallet) {
		s.fail(w, r, fieldError("wallet", payout.CodeInvalidAddress, "wallet must be a 0x-prefixed 20-byte hex address"))
		return
	}
	wallet := common.HexToAddress(in.Wallet)
	if !slices.Contains(ch.Wallets(), wallet) {
		s.fail(w, r, fieldError("wallet", codeUnknownWallet, wallet.Hex()+" is not a hot wallet of chain "+ch.Name))
		return
	}
	switch {
	case in.MaxPayouts == 0:
		in.MaxPayouts = 100
	case in.MaxPayouts < 0 || in.MaxPayouts > maxOfflinePayouts:
		s.fail(w, r, fieldError("max_payouts", payout.CodeInvalidLimit, "max_payouts must be 1.."+strconv.Itoa(maxOfflinePayouts)))
		return
	}
	pl := &payout.OfflinePlan{ID: s.ids.New("ofp_", s.now()), Chain: ch.Name, ChainID: ch.ChainID, Wallet: wallet,
		MaxPayouts: in.MaxPayouts, RequestedBy: actor(r.Context())}
	if err := st.CreateOfflinePlan(r.Context(), pl); err != nil {
		if errors.Is(err, payout.ErrOfflinePlanActive) {
			err = newError(codeOfflinePlanActive, "wallet %s already has an active offline plan: submit or void it first", wallet.Hex())
		}
		s.fail(w, r, err)
		return
	}
	s.log.WarnContext(r.Context(), "offline plan requested", "request_id", reqInfoFrom(r.Context()).id, "plan_id", pl.ID,
		"chain", pl.Chain, "wallet", wallet.Hex(), "by_api_key_id", pl.RequestedBy)
	s.wakeSender(&payout.Payout{Chain: ch.Name, ChainID: ch.ChainID, Sender: wallet})
	writeJSON(w, "application/json", http.StatusAccepted, pl)
}

// getOfflinePlan handles GET /v1/offline_plans/{id}.
func (s *Server) getOfflinePlan(w http.ResponseWriter, r *http.Request) {
	if st, ok := storeAs[payout.OfflinePlanStore](s, w, r, "offline plans"); ok {
		getByID(s, w, r, "offline plan", st.GetOfflinePlan)
	}
}

// submitSigned handles POST /v1/offline_plans/{id}/signed: every
// transaction of the open plan, signed, each checked against its planned
// transaction (sender, chain, nonce, destination, value, data, gas and
// fees) before anything is stored. The wallet's sender then stores and
// broadcasts them.
func (s *Server) submitSigned(w http.ResponseWriter, r *http.Request) {
	st, ok := storeAs[payout.OfflinePlanStore](s, w, r, "offline plans")
	if !ok {
		return
	}
	var in struct {
		SignedTransactions []payout.HexBytes `json:"signed_transactions"`
	}
	if err := decodeStrict(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	pl, err := st.GetOfflinePlan(r.Context(), r.PathValue("id"))
	if errors.Is(err, payout.ErrNotFound) {
		err = newError(payout.CodeNotFound, "no such offline plan")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if pl.Status != payout.PlanOpen {
		s.fail(w, r, newError(codeOfflinePlanState, "offline plan %s is %s; only an open plan takes signed transactions", pl.ID, pl.Status))
		return
	}
	signed := make([]payout.OfflineItem, len(pl.Items))
	done := make([]bool, len(pl.Items))
	for i, raw := range in.SignedTransactions {
		tx, item, err := matchSigned(pl, i, raw)
		if err != nil {
			s.fail(w, r, newError(codeSignedMismatch, "%s; nothing was stored", err.Error()))
			return
		}
		k := item.Nonce - pl.Items[0].Nonce
		if done[k] {
			s.fail(w, r, newError(codeSignedMismatch, "signed transaction %d: nonce %d is signed twice; nothing was stored", i, item.Nonce))
			return
		}
		h := tx.Hash()
		signed[k], done[k] = *item, true
		signed[k].Signed, signed[k].TxHash = raw, &h
	}
	for k, ok := range done {
		if !ok {
			s.fail(w, r, newError(codeSignedMismatch, "the transaction of payout %s at nonce %d is not signed; submit every transaction of the plan",
				pl.Items[k].PayoutID, pl.Items[k].Nonce))
			return
		}
	}
	pl, err = st.SignOfflinePlan(r.Context(), pl.ID, actor(r.Context()), signed)
	if errors.Is(err, payout.ErrOfflinePlanState) {
		err = newError(codeOfflinePlanState, "%s", err.Error())
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.WarnContext(r.Context(), "offline plan signed", "request_id", reqInfoFrom(r.Context()).id, "plan_id", pl.ID,
		"transactions", len(signed), "by_api_key_id", actor(r.Context()))
	s.wakeSender(&payout.Payout{Chain: pl.Chain, ChainID: pl.ChainID, Sender: pl.Wallet})
	writeJSON(w, "application/json", http.StatusAccepted, pl)
}

// voidOfflinePlan handles POST /v1/offline_plans/{id}/void: the wallet's
// sender voids it if the chain has used none of its nonces.
func (s *Server) voidOfflinePlan(w http.ResponseWriter, r *http.Request) {
	st, ok := storeAs[payout.OfflinePlanStore](s, w, r, "offline plans")
	if !ok {
		return
	}
	pl, err := st.RequestOfflineVoid(r.Context(), r.PathValue("id"), actor(r.Context()))
	switch {
	case errors.Is(err, payout.ErrNotFound):
		err = newError(payout.CodeNotFound, "no such offline plan")
	case errors.Is(err, payout.ErrOfflinePlanState):
		err = newError(codeOfflinePlanState, "%s; only an open or signed plan can be voided", err.Error())
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.wakeSender(&payout.Payout{Chain: pl.Chain, ChainID: pl.ChainID, Sender: pl.Wallet})
	writeJSON(w, "application/json", http.StatusAccepted, pl)
}

// wakeSender asks the sender of p's wallet to look at its work now.
func (s *Server) wakeSender(p *payout.Payout) {
	if s.created != nil {
		s.created(p)
	}
}
