package httpapi

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// Codes of wallet rotations.
const (
	codeRotationExists payout.Code = "wallet_already_rotated"
	codeWalletRetired  payout.Code = "wallet_retired"
)

func init() {
	codeInfo[codeRotationExists] = struct {
		status int
		title  string
	}{http.StatusConflict, "Wallet already rotated away"}
	codeInfo[codeWalletRetired] = struct {
		status int
		title  string
	}{http.StatusConflict, "Target wallet is retired"}
}

// createRotation handles POST /v1/wallet_rotations: retire a hot wallet in
// favour of another of the same chain (payout.Rotation).
func (s *Server) createRotation(w http.ResponseWriter, r *http.Request) {
	st, ok := storeAs[payout.RotationStore](s, w, r, "wallet rotations")
	if !ok {
		return
	}
	var in struct {
		Chain string `json:"chain"`
		From  string `json:"from"`
		To    string `json:"to"`
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
	var errs []*payout.FieldError
	wallet := func(field, v string) common.Address {
		switch {
		case !common.IsHexAddress(v):
			errs = append(errs, &payout.FieldError{Field: field, Code: payout.CodeInvalidAddress, Message: field + " must be a 0x-prefixed 20-byte hex address"})
		case !slices.Contains(ch.Wallets(), common.HexToAddress(v)):
			errs = append(errs, &payout.FieldError{Field: field, Code: codeUnknownWallet,
				Message: common.HexToAddress(v).Hex() + " is not a hot wallet of chain " + ch.Name + " (add the new wallet to the config first)"})
		}
		return common.HexToAddress(v)
	}
	from, to := wallet("from", in.From), wallet("to", in.To)
	if len(errs) == 0 && from == to {
		errs = append(errs, &payout.FieldError{Field: "to", Code: payout.CodeInvalidAddress, Message: "to must be another wallet than from"})
	}
	if len(errs) > 0 {
		s.fail(w, r, &payout.ValidationError{Errors: errs})
		return
	}
	rs, err := st.Rotations(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, old := range rs {
		if old.ChainID == ch.ChainID && old.From == to {
			s.fail(w, r, newError(codeWalletRetired, "%s was rotated away by %s: pick a wallet still in service", to.Hex(), old.ID))
			return
		}
	}
	rot := &payout.Rotation{ID: s.ids.New("rot_", s.now()), Chain: ch.Name, ChainID: ch.ChainID, From: from, To: to, CreatedBy: actor(r.Context())}
	if err := st.CreateRotation(r.Context(), rot); err != nil {
		if errors.Is(err, payout.ErrRotationExists) {
			err = newError(codeRotationExists, "%s is already rotated away", from.Hex())
		}
		s.fail(w, r, err)
		return
	}
	if s.catalog.RetiredChanged != nil {
		s.catalog.RetiredChanged()
	}
	s.log.WarnContext(r.Context(), "wallet rotation started", "request_id", reqInfoFrom(r.Context()).id, "rotation_id", rot.ID,
		"chain", ch.Name, "from", from.Hex(), "to", to.Hex(), "by_api_key_id", rot.CreatedBy)
	s.wakeSender(&payout.Payout{Chain: ch.Name, ChainID: ch.ChainID, Sender: from})
	writeJSON(w, "application/json", http.StatusCreated, rot)
}

// getRotation handles GET /v1/wallet_rotations/{id}.
func (s *Server) getRotation(w http.ResponseWriter, r *http.Request) {
	if st, ok := storeAs[payout.RotationStore](s, w, r, "wallet rotations"); ok {
		getByID(s, w, r, "wallet rotation", st.GetRotation)
	}
}

// listRotations handles GET /v1/wallet_rotations.
func (s *Server) listRotations(w http.ResponseWriter, r *http.Request) {
	st, ok := storeAs[payout.RotationStore](s, w, r, "wallet rotations")
	if !ok {
		return
	}
	rs, err := st.Rotations(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if rs == nil {
		rs = []*payout.Rotation{}
	}
	writeJSON(w, "application/json", http.StatusOK, map[string]any{"object": "list", "data": rs})
}
