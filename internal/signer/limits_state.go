package signer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// The limits' state (what each nonce was signed for, and so what was
// signed today) survives restarts in an append-only file: one JSON line
// per transfer admitted, written and synced before its signature is given.
// Without it, restarting a signer (or an MPC party) would reset its daily
// caps. At start and at each new UTC day the file is rewritten with only
// the last two days, which is all the limits read.

// ErrLimitsState means the limits' state file cannot be read or written:
// a signer refuses to start, or to admit (and sign) a transfer, until it
// can. Every error of the state file wraps it.
var ErrLimitsState = errors.New("signer: limits state")

// stateError wraps err as an error of the limits' state file.
func stateError(err error) error { return fmt.Errorf("%w: %w", ErrLimitsState, err) }

// keptFor is how long a signed nonce is remembered, so that a fee
// replacement of it days later is still counted once.
const keptFor = 48 * time.Hour

// admitted is one line of the state file.
type admitted struct {
	ChainID uint64         `json:"chain_id"`
	Nonce   uint64         `json:"nonce"`
	Asset   string         `json:"asset"`
	To      common.Address `json:"to"`
	Amount  string         `json:"amount"`
	At      time.Time      `json:"at"`
}

// limitsState is the open state file.
type limitsState struct {
	path string
	f    *os.File
}

// openLimitsState reads path (a missing file is an empty state) into the
// server's maps as of now, rewrites it with what it keeps and opens it for
// appending. A line it cannot read is an error naming the file and the
// line, except a torn last line: its write never completed, so its
// signature was never given.
func (s *Server) openLimitsState(path string, now time.Time) error {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return stateError(err)
	}
	lines := bytes.Split(b, []byte("\n"))
	for i, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var a admitted
		amount, ok := new(big.Int), false
		if err = json.Unmarshal(line, &a); err == nil {
			_, ok = amount.SetString(a.Amount, 10)
		}
		if err != nil || !ok {
			if i == len(lines)-1 {
				s.log.Warn("limits state: ignoring a torn last line (its signature was never given)", "file", path)
				continue
			}
			return stateError(fmt.Errorf("%s: line %d is not an admitted transfer; the daily totals cannot be trusted: fix or remove the file knowingly", path, i+1))
		}
		s.remember(a, amount, now)
	}
	s.day = now.UTC().Format(time.DateOnly)
	s.state = &limitsState{path: path}
	return s.state.rewrite(s.signed)
}

// remember counts a into the server's maps, if it is recent enough.
func (s *Server) remember(a admitted, amount *big.Int, now time.Time) {
	if now.Sub(a.At) > keptFor {
		return
	}
	s.signed[nonceKey{a.ChainID, a.Nonce}] = transferAt{transfer{asset: a.Asset, to: a.To, amount: amount}, a.At}
	if a.At.UTC().Format(time.DateOnly) == now.UTC().Format(time.DateOnly) {
		spent := s.spent[a.Asset]
		if spent == nil {
			spent = new(big.Int)
		}
		s.spent[a.Asset] = spent.Add(spent, amount)
	}
}

// rewrite replaces the file with the entries of signed, through a
// temporary file renamed over it, and reopens it for appending.
func (st *limitsState) rewrite(signed map[nonceKey]transferAt) error {
	if st.f != nil {
		_ = st.f.Close()
		st.f = nil
	}
	var buf bytes.Buffer
	for k, t := range signed {
		line, err := json.Marshal(admitted{ChainID: k.chainID, Nonce: k.nonce, Asset: t.asset, To: t.to, Amount: t.amount.String(), At: t.at})
		if err != nil {
			return stateError(err)
		}
		buf.Write(append(line, '\n'))
	}
	tmp := st.path + ".tmp"
	if err := writeSynced(tmp, buf.Bytes()); err != nil {
		return stateError(err)
	}
	if err := os.Rename(tmp, st.path); err != nil {
		return stateError(err)
	}
	if d, err := os.Open(filepath.Dir(st.path)); err == nil {
		_ = d.Sync() // the rename itself
		_ = d.Close()
	}
	f, err := os.OpenFile(st.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return stateError(err)
	}
	st.f = f
	return nil
}

// writeSynced writes b to a new file at path (mode 0600) and syncs it.
func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if _, err = w.Write(b); err == nil {
		if err = w.Flush(); err == nil {
			err = f.Sync()
		}
	}
	return errors.Join(err, f.Close())
}

// append writes one admitted transfer and syncs it.
func (st *limitsState) append(a admitted) error {
	if st.f == nil {
		return stateError(errors.New("the state file is not open"))
	}
	line, err := json.Marshal(a)
	if err != nil {
		return stateError(err)
	}
	if _, err := st.f.Write(append(line, '\n')); err != nil {
		return stateError(err)
	}
	if err := st.f.Sync(); err != nil {
		return stateError(err)
	}
	return nil
}

// Close closes the state file, if any.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == nil || s.state.f == nil {
		return nil
	}
	err := s.state.f.Close()
	s.state.f = nil
	return err
}
