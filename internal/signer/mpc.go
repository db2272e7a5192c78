package signer

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"sync"

	"github.com/bnb-chain/tss-lib/v3/common"
	"github.com/bnb-chain/tss-lib/v3/ecdsa/keygen"
	"github.com/bnb-chain/tss-lib/v3/ecdsa/signing"
	"github.com/bnb-chain/tss-lib/v3/tss"
	ethcommon "github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/payout"
)

// MPC signs with a key that no single machine holds: t-of-n threshold
// ECDSA over secp256k1 (tss-lib v3, GG20). Each of n parties holds one
// share; any threshold of them run a signing session together and the
// result is an ordinary Ethereum signature of the group's address.
//
// A party is the MPCParty interface. MPCLocalParty is a share decrypted
// into this process, whose session messages are routed in memory between
// party goroutines (MPCRouter). MPCRemoteParty is a `sluice mpc party`
// process reached over mutual TLS (mpc_net.go): the parties of a session
// exchange its messages directly, and each checks the transaction before
// it takes part, so a networked MPC signs transactions only.
type MPC struct {
	addr      ethcommon.Address
	pub       []byte // the group key, uncompressed, 65 bytes
	threshold int    // parties a signature needs
	total     int    // parties that hold a share
	parties   []MPCParty
	networked bool // the parties are mpcNetParty: sessions are opened on them first
}

var (
	_ payout.Signer = (*MPC)(nil)
	_ Checker       = (*MPC)(nil)
	_ TxSigner      = (*MPC)(nil)
)

// ErrMPCQuorum means fewer parties than the threshold are available: the
// wallet cannot sign until enough of them are back.
var ErrMPCQuorum = errors.New("mpc: not enough parties to sign")

// MPCParty is one holder of a key share.
type MPCParty interface {
	// Index is the party's share number, 1..n.
	Index() int
	// Group describes the key the share belongs to.
	Group() MPCGroup
	// Health reports whether the party can take part in a session now.
	Health(ctx context.Context) error
	// Sign runs this party's side of session s, talking to the other
	// signers through tr, and returns the raw signature r||s (64 bytes).
	Sign(ctx context.Context, s MPCSession, tr MPCTransport) ([]byte, error)
}

// MPCGroup is what every share of one key agrees on.
type MPCGroup struct {
	Address   ethcommon.Address
	PublicKey []byte // uncompressed, 65 bytes
	Parties   int    // n
	Threshold int    // t: signatures need t parties
}

// MPCSession is one signing run: every party in it signs the same digest
// under the same session id, which tss-lib mixes into its proofs so that
// messages of one run are worthless in another.
type MPCSession struct {
	ID      *big.Int
	Digest  [32]byte
	Signers []int // share indexes taking part, sorted
	// ChainID and Tx are the transaction Digest is the signing hash of
	// (Tx its unsigned canonical encoding): a networked party decodes it
	// and recomputes the digest before it takes part. Both are empty when
	// a bare digest is signed, which only local parties do.
	ChainID *big.Int
	Tx      []byte
	// Intent, when the engine told it (payout.WithSigningIntent), is the
	// payout the transaction is for: a networked party checks that the
	// transaction pays exactly that before it takes part.
	Intent *payout.SigningIntent
}

// NewMPC builds a signer from parties holding shares of one key. It needs
// at least the group's threshold of distinct parties.
func NewMPC(parties []MPCParty) (*MPC, error) {
	if len(parties) == 0 {
		return nil, fmt.Errorf("%w: no share given", ErrMPCQuorum)
	}
	g := parties[0].Group()
	seen := map[int]bool{}
	net := 0
	for _, p := range parties {
		if _, ok := p.(mpcNetParty); ok {
			net++
		}
		pg := p.Group()
		if pg.Address != g.Address || pg.Parties != g.Parties || pg.Threshold != g.Threshold {
			return nil, fmt.Errorf("mpc: share %d is of %s (%d-of-%d), not of %s (%d-of-%d)",
				p.Index(), pg.Address.Hex(), pg.Threshold, pg.Parties, g.Address.Hex(), g.Threshold, g.Parties)
		}
		if seen[p.Index()] {
			return nil, fmt.Errorf("mpc: share %d is given twice", p.Index())
		}
		seen[p.Index()] = true
	}
	if len(parties) < g.Threshold {
		return nil, fmt.Errorf("%w: %d share(s) of %s given, signing needs %d of %d",
			ErrMPCQuorum, len(parties), g.Address.Hex(), g.Threshold, g.Parties)
	}
	if net != 0 && net != len(parties) {
		return nil, errors.New("mpc: a group is all local shares or all networked parties, not a mix")
	}
	ps := append([]MPCParty(nil), parties...)
	sort.Slice(ps, func(i, j int) bool { return ps[i].Index() < ps[j].Index() })
	return &MPC{addr: g.Address, pub: g.PublicKey, threshold: g.Threshold, total: g.Parties, parties: ps, networked: net > 0}, nil
}

// Address is the group's account.
func (m *MPC) Address() ethcommon.Address { return m.addr }

// Health reports whether a quorum of parties is healthy.
func (m *MPC) Health(ctx context.Context) error {
	_, err := m.quorum(ctx)
	return err
}

// quorum asks every party at once and picks the first threshold of them
// to answer healthy (in index order), so that a party that hangs delays
// nothing while enough others answer.
func (m *MPC) quorum(ctx context.Context) ([]MPCParty, error) {
	qctx, cancel := context.WithCancel(ctx)
	defer cancel() // the slower checks are not needed once a quorum answered
	type answer struct {
		i   int
		err error
	}
	answers := make(chan answer, len(m.parties))
	for i, p := range m.parties {
		go func() { answers <- answer{i, p.Health(qctx)} }()
	}
	healthy := make([]bool, len(m.parties))
	errs := make([]error, len(m.parties))
	n := 0
	for range m.parties {
		a := <-answers
		if a.err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			errs[a.i] = fmt.Errorf("party %d: %w", m.parties[a.i].Index(), a.err)
			continue
		}
		healthy[a.i] = true
		if n++; n == m.threshold {
			var picked []MPCParty
			for i, p := range m.parties {
				if healthy[i] {
					picked = append(picked, p)
				}
			}
			return picked, nil
		}
	}
	err := fmt.Errorf("%w: %d of %d healthy, %d needed", ErrMPCQuorum, n, m.total, m.threshold)
	return nil, unavailable("mpc", errors.Join(append([]error{err}, errs...)...))
}

// SignDigest runs one signing session among a quorum of local parties and
// returns [R || S || V] with a low S and the V that recovers the group key.
// Networked parties never sign a bare digest: ErrNeedsTransaction.
func (m *MPC) SignDigest(ctx context.Context, digest [32]byte) ([]byte, error) {
	if m.networked {
		return nil, ErrNeedsTransaction
	}
	return m.sign(ctx, MPCSession{Digest: digest})
}

// SignTransaction runs one signing session for the transaction unsigned
// (its canonical encoding) whose signing hash for chainID is digest. The
// digest is checked here, and again by every networked party.
func (m *MPC) SignTransaction(ctx context.Context, chainID *big.Int, unsigned []byte, digest [32]byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := MPCSession{Digest: digest, ChainID: chainID, Tx: unsigned}
	if in, ok := payout.SigningIntentFrom(ctx); ok {
		s.Intent = &in
	}
	if _, err := checkMPCTx(s); err != nil {
		return nil, unavailable("mpc", err)
	}
	return m.sign(ctx, s)
}

// sign runs session s (its digest and transaction set) among a quorum. A
// networked session that fails for another reason than a refusal or a
// missing quorum is tried once more, under a new id and with a quorum
// picked anew: a party that went down after its health check is left out
// the second time.
func (m *MPC) sign(ctx context.Context, s MPCSession) ([]byte, error) {
	sig, err := m.session(ctx, s)
	if err == nil || !m.networked || ctx.Err() != nil || errors.Is(err, ErrRefused) || errors.Is(err, ErrMPCQuorum) {
		return sig, err
	}
	return m.session(ctx, s)
}

// session runs one signing session.
func (m *MPC) session(ctx context.Context, s MPCSession) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	parties, err := m.quorum(ctx)
	if err != nil {
		return nil, err
	}
	s.ID = sessionID()
	for _, p := range parties {
		s.Signers = append(s.Signers, p.Index())
	}
	if m.networked {
		if err := openMPCSession(ctx, s, parties); err != nil {
			return nil, err
		}
	}
	digest := s.Digest
	router := NewMPCRouter(s.Signers)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make([][]byte, len(parties))
	errs := make([]error, len(parties))
	var wg sync.WaitGroup
	for i, p := range parties {
		wg.Go(func() {
			sigs[i], errs[i] = p.Sign(sctx, s, router.Transport(p.Index()))
			if errs[i] != nil {
				cancel() // the others cannot finish without this one
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := firstCause(errs); err != nil {
		return nil, unavailable("mpc", err)
	}
	for _, sig := range sigs[1:] {
		if !bytes.Equal(sig, sigs[0]) {
			return nil, unavailable("mpc", errors.New("the parties finished with different signatures"))
		}
	}
	return m.recoverable(digest, sigs[0])
}

// firstCause returns the first error that is not the cancellation another
// party's failure caused, else the first error.
func firstCause(errs []error) error {
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// recoverable normalises s to the low half and finds the recovery id with
// which the signature recovers to the group key.
func (m *MPC) recoverable(digest [32]byte, rs []byte) ([]byte, error) {
	if len(rs) != 64 {
		return nil, unavailable("mpc", fmt.Errorf("the session returned %d signature bytes, not 64", len(rs)))
	}
	sig := make([]byte, 65)
	copy(sig, rs)
	if s := new(big.Int).SetBytes(rs[32:]); s.Cmp(secpHalfN) > 0 {
		new(big.Int).Sub(secpN, s).FillBytes(sig[32:64])
	}
	for v := byte(0); v < 2; v++ {
		sig[64] = v
		if got, err := crypto.Ecrecover(digest[:], sig); err == nil && bytes.Equal(got, m.pub) {
			return sig, nil
		}
	}
	return nil, unavailable("mpc", errors.New("the joint signature recovers to neither recovery id: a share is not of this group"))
}

// sessionID draws a fresh 256-bit session id.
func sessionID() *big.Int {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return new(big.Int).SetBytes(b[:])
}

// MPCLocalParty is a party whose decrypted share lives in this process.
type MPCLocalParty struct {
	index int
	group MPCGroup
	data  keygen.LocalPartySaveData
}

var _ MPCParty = (*MPCLocalParty)(nil)

// Index is the party's share number, 1..n.
func (p *MPCLocalParty) Index() int { return p.index }

// Group describes the key the share belongs to.
func (p *MPCLocalParty) Group() MPCGroup { return p.group }

// Health reports nil: the share is in memory.
func (p *MPCLocalParty) Health(ctx context.Context) error { return ctx.Err() }

// Sign runs this party's side of a GG20 signing session.
func (p *MPCLocalParty) Sign(ctx context.Context, s MPCSession, tr MPCTransport) ([]byte, error) {
	ids := partyIDs(s.Signers)
	self := ids.FindByKey(big.NewInt(int64(p.index)))
	if self == nil {
		return nil, fmt.Errorf("mpc: party %d is not a signer of this session", p.index)
	}
	params := tss.NewParameters(tss.S256(), tss.NewPeerContext(ids), self, len(ids), p.group.Threshold-1)
	params.SetSessionNonce(s.ID)
	out := make(chan tss.Message, 256)
	end := make(chan *common.SignatureData, 1)
	msg := new(big.Int).SetBytes(s.Digest[:])
	party := signing.NewLocalParty(msg, params, p.data, out, end, len(s.Digest))
	res, err := runParty(ctx, party, ids, out, end, tr)
	if err != nil {
		return nil, fmt.Errorf("mpc: party %d: %w", p.index, err)
	}
	rs := make([]byte, 64)
	new(big.Int).SetBytes(res.R).FillBytes(rs[:32])
	new(big.Int).SetBytes(res.S).FillBytes(rs[32:])
	return rs, nil
}

// partyIDs are tss-lib's ids of the given share indexes: the key of share
// i is i, as at keygen, which is how a share finds its place in a subset.
func partyIDs(indexes []int) tss.SortedPartyIDs {
	ids := make(tss.UnSortedPartyIDs, len(indexes))
	for i, idx := range indexes {
		ids[i] = tss.NewPartyID(fmt.Sprint(idx), fmt.Sprintf("party-%d", idx), big.NewInt(int64(idx)))
	}
	return tss.SortPartyIDs(ids)
}

// runParty starts a tss-lib party and carries its messages through tr
// until it ends, fails or ctx ends.
func runParty[T any](ctx context.Context, party tss.Party, ids tss.SortedPartyIDs, out <-chan tss.Message, end <-chan T, tr MPCTransport) (T, error) {
	var zero T
	errc := make(chan error, 1)
	go func() {
		if err := party.Start(); err != nil {
			errc <- err
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return zero, ctx.Err()
		case err := <-errc:
			return zero, err
		case res := <-end:
			// The last round may have sent its messages just before it
			// ended: the peers need them to finish too.
			for {
				select {
				case m := <-out:
					if err := send(ctx, m, tr); err != nil {
						return zero, err
					}
				default:
					return res, nil
				}
			}
		case m := <-out:
			if err := send(ctx, m, tr); err != nil {
				return zero, err
			}
		case in := <-tr.Inbox():
			from := ids.FindByKey(big.NewInt(int64(in.From)))
			if from == nil {
				return zero, fmt.Errorf("message from party %d, not a signer of this session", in.From)
			}
			if _, err := party.UpdateFromBytes(in.Payload, from, in.Broadcast); err != nil {
				return zero, err
			}
		}
	}
}

// send puts one tss-lib message on the transport.
func send(ctx context.Context, m tss.Message, tr MPCTransport) error {
	payload, routing, err := m.WireBytes()
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	msg := MPCMessage{From: int(routing.From.KeyInt().Int64()), Broadcast: routing.IsBroadcast, Payload: payload}
	for _, to := range routing.To {
		msg.To = append(msg.To, int(to.KeyInt().Int64()))
	}
	return tr.Send(ctx, msg)
}
