package httpapi

import (
	"errors"
	"net/http"
	"regexp"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// listName is what a list may be called (it appears in URLs and facts).
var listName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

type listPage struct {
	Object  string         `json:"object"`
	Data    []*payout.List `json:"data"`
	HasMore bool           `json:"has_more"`
	URL     string         `json:"url"`
}

// listLists handles GET /v1/lists.
func (s *Server) listLists(w http.ResponseWriter, r *http.Request) {
	if s.policy.store == nil {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server's store keeps no lists"))
		return
	}
	ls, err := s.policy.store.Lists(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ls == nil {
		ls = []*payout.List{}
	}
	writeJSON(w, "application/json", http.StatusOK, listPage{Object: "list", Data: ls, URL: "/v1/lists"})
}

type createListBody struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Sanctions bool   `json:"sanctions"`
}

// createList handles POST /v1/lists: a new, empty deny or allow list.
func (s *Server) createList(w http.ResponseWriter, r *http.Request) {
	if s.policy.store == nil {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server's store keeps no lists"))
		return
	}
	var in createListBody
	if err := decodeStrict(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if !listName.MatchString(in.Name) {
		s.fail(w, r, listField("name", "name must be 1-63 lowercase letters, digits, '_', '.' or '-'"))
		return
	}
	l := &payout.List{Name: in.Name, Kind: payout.ListKind(in.Kind), Sanctions: in.Sanctions}
	err := s.policy.store.CreateList(r.Context(), l, actor(r.Context()))
	var fe *payout.FieldError
	switch {
	case errors.As(err, &fe):
		s.fail(w, r, listField(fe.Field, fe.Message))
	case errors.Is(err, payout.ErrListExists):
		s.fail(w, r, newError(codeListExists, "a list named %q exists", in.Name))
	case err != nil:
		s.fail(w, r, err)
	default:
		writeJSON(w, "application/json", http.StatusCreated, l)
	}
}

func listField(field, msg string) error {
	return &apiError{code: payout.CodeInvalidList, detail: msg,
		fields: []fieldProblem{{Pointer: "/" + field, Code: payout.CodeInvalidList, Detail: msg}}}
}

type listEntriesBody struct {
	Addresses []string `json:"addresses"`
	// Replace makes the list hold exactly Addresses (an import); otherwise
	// they are added.
	Replace bool   `json:"replace"`
	Note    string `json:"note"`
}

type listChangeView struct {
	Object string       `json:"object"` // "list_change"
	List   *payout.List `json:"list"`
	*payout.ListChange
}

// addListEntries handles POST /v1/lists/{name}/entries.
func (s *Server) addListEntries(w http.ResponseWriter, r *http.Request) {
	if s.policy.store == nil {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server's store keeps no lists"))
		return
	}
	name := r.PathValue("name")
	var in listEntriesBody
	if err := decodeStrict(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	entries := make([]payout.ListEntry, 0, len(in.Addresses))
	for _, a := range in.Addresses {
		if !common.IsHexAddress(a) || len(a) != 42 {
			s.fail(w, r, listField("addresses", "every address must be 0x-prefixed 20-byte hex; got "+truncate(a, 64)))
			return
		}
		entries = append(entries, payout.ListEntry{Address: common.HexToAddress(a), Note: truncate(in.Note, 200)})
	}
	add := s.policy.store.AddListEntries
	if in.Replace {
		add = s.policy.store.ReplaceListEntries
	}
	ch, err := add(r.Context(), name, entries, actor(r.Context()))
	if errors.Is(err, payout.ErrNotFound) {
		s.fail(w, r, newError(payout.CodeNotFound, "no list is named %q", truncate(name, 64)))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	l, err := s.policy.store.GetList(r.Context(), name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, "application/json", http.StatusOK, listChangeView{Object: "list_change", List: l, ListChange: ch})
}
