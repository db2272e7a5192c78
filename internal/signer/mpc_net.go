package signer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	ethcommon "github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sluicepay/sluice/internal/payout"
)

// The networked MPC protocol: HTTPS with mutual TLS between the engine
// and the `sluice mpc party` processes, and between the parties.
//
// Identity is the certificate: every party's certificate (served, and
// presented as a client certificate to its peers) has the common name
// "sluice-mpc-party-N", N its share index; a party refuses to start with
// a certificate that names another index. The engine's certificate (any
// other certificate the CA signed, or only the common names in
// MPCPartyConfig.Engines) may open sessions but never send protocol
// messages; a party certificate may send messages but never open
// sessions.
//
// Topology: the engine is the coordinator, the parties talk directly.
//
//  1. The engine picks a quorum of healthy parties (GET /v1/party) and
//     POSTs /v1/sessions to each: a fresh 256-bit session id, the unsigned
//     transaction, its chain id and digest, and the signers' indexes and
//     URLs. Each party decodes the transaction, recomputes the digest and
//     checks its own limits; it refuses (403) or registers the session.
//  2. Only once every signer has registered it does the engine POST
//     /v1/sessions/{id}/sign to each; that request lasts the session and
//     answers the signature r||s.
//  3. Meanwhile each party POSTs its protocol messages to its peers'
//     /v1/sessions/{id}/messages over mTLS, checking that the peer's
//     certificate is the share index it means to reach. The receiver
//     checks that the sender's certificate is the message's From, that
//     From is a signer of the session, and that the message's session id
//     is the one in the path of a session it holds: a message of another
//     session is refused. tss-lib also mixes the session id into its
//     proofs.
//
// Relaying the messages through the engine would have spared the parties
// each other's URLs, but would let a compromised engine read and forge
// the traffic between parties; direct connections keep the engine out of
// the protocol. No secret (share, passphrase, protocol payload) is ever
// logged or put in an error.

// MPCPartyCommonName is the certificate common name of share index i.
func MPCPartyCommonName(i int) string { return "sluice-mpc-party-" + strconv.Itoa(i) }

// mpcPartyOf returns the share index a certificate names, if any.
func mpcPartyOf(cert *x509.Certificate) (int, bool) {
	rest, ok := strings.CutPrefix(cert.Subject.CommonName, "sluice-mpc-party-")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	return i, err == nil && i > 0
}

// verifyPartyCert makes a TLS config accept only the certificate of share
// index want (on top of the CA check).
func verifyPartyCert(c *tls.Config, want int) *tls.Config {
	c = c.Clone()
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("no certificate")
		}
		got, ok := mpcPartyOf(cs.PeerCertificates[0])
		if !ok || got != want {
			return fmt.Errorf("certificate %q is not party %d's", cs.PeerCertificates[0].Subject.CommonName, want)
		}
		return nil
	}
	return c
}

// mpcPartyInfo is GET /v1/party's answer.
type mpcPartyInfo struct {
	Index     int               `json:"index"`
	Address   ethcommon.Address `json:"address"`
	PublicKey hexutil.Bytes     `json:"public_key"`
	Parties   int               `json:"parties"`
	Threshold int               `json:"threshold"`
}

// mpcPeer is one signer of a session and where to reach it.
type mpcPeer struct {
	Index int    `json:"index"`
	URL   string `json:"url"`
}

// mpcOpenRequest is POST /v1/sessions.
type mpcOpenRequest struct {
	SessionID string         `json:"session_id"` // hex
	ChainID   *hexutil.Big   `json:"chain_id"`
	Tx        hexutil.Bytes  `json:"tx"`
	Digest    ethcommon.Hash `json:"digest"`
	Signers   []mpcPeer      `json:"signers"`
	// Payout is what the transaction is for, when the engine said.
	Payout *payout.SigningIntent `json:"payout,omitempty"`
}

// mpcWireMessage is POST /v1/sessions/{id}/messages.
type mpcWireMessage struct {
	SessionID string        `json:"session_id"` // hex
	From      int           `json:"from"`
	To        []int         `json:"to,omitempty"`
	Broadcast bool          `json:"broadcast"`
	Payload   hexutil.Bytes `json:"payload"`
}

// mpcSignResult is POST /v1/sessions/{id}/sign's answer.
type mpcSignResult struct {
	Signature hexutil.Bytes `json:"signature"` // r||s, 64 bytes
}

// mpcErrorBody is every error answer; Code "refused" is a refusal of the
// transaction.
type mpcErrorBody struct {
	Code  string `json:"code"`
	Error string `json:"error"`
}

// checkMPCTx decodes the session's transaction and checks that its digest
// is the transaction's signing hash for its chain id. Errors wrap
// ErrRefused.
func checkMPCTx(s MPCSession) (*types.Transaction, error) {
	if s.ChainID == nil || len(s.Tx) == 0 {
		return nil, fmt.Errorf("%w: no transaction: a networked party never signs a bare digest", ErrRefused)
	}
	var tx types.Transaction
	if err := tx.UnmarshalBinary(s.Tx); err != nil {
		return nil, fmt.Errorf("%w: not a transaction: %v", ErrRefused, err)
	}
	if v, r, ss := tx.RawSignatureValues(); v.Sign() != 0 || r.Sign() != 0 || ss.Sign() != 0 {
		return nil, fmt.Errorf("%w: the transaction is already signed", ErrRefused)
	}
	if tx.Type() != types.LegacyTxType && tx.ChainId().Cmp(s.ChainID) != 0 {
		return nil, fmt.Errorf("%w: the transaction is for chain %s, not %s", ErrRefused, tx.ChainId(), s.ChainID)
	}
	if got := types.LatestSignerForChainID(s.ChainID).Hash(&tx); got != s.Digest {
		return nil, fmt.Errorf("%w: the digest is not the transaction's signing hash", ErrRefused)
	}
	return &tx, nil
}

// checkIntent checks that tx does what the engine said it is for: a
// transfer pays exactly the payout's payee and amount in its asset, a
// cancel is a zero-value transfer to the wallet itself. Batch
// transactions and approvals serve many payouts; for them, and when the
// engine said nothing, the party's limits decide alone. Errors wrap
// ErrRefused.
func checkIntent(tx *types.Transaction, in *payout.SigningIntent, wallet ethcommon.Address) error {
	if in == nil || in.Kind == payout.IntentBatch || in.Kind == payout.IntentApprove {
		return nil
	}
	if in.Kind != payout.IntentTransfer && in.Kind != payout.IntentCancel {
		return fmt.Errorf("%w: unknown payout kind %q", ErrRefused, in.Kind)
	}
	got, err := transferOf(tx)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	want := transfer{asset: "native", to: in.To, amount: in.Amount}
	if in.Token != nil {
		want.asset = strings.ToLower(in.Token.Hex())
	}
	if in.Kind == payout.IntentCancel {
		want = transfer{asset: "native", to: wallet, amount: new(big.Int)}
	}
	if want.amount == nil || !got.equal(want) {
		return fmt.Errorf("%w: the transaction pays %s of %s to %s, but payout %s (%s) is %s of %s to %s", ErrRefused,
			got.amount, got.asset, got.to.Hex(), in.PayoutID, in.Kind, want.amount, want.asset, want.to.Hex())
	}
	return nil
}

// mpcNetParty is a party reached over the network: a session must be
// opened on every signer before any of them starts.
type mpcNetParty interface {
	MPCParty
	url() string
	open(ctx context.Context, s MPCSession, peers []mpcPeer) error
	abort(s MPCSession)
}

// openMPCSession opens s on every party (concurrently); when one fails,
// the others drop the session.
func openMPCSession(ctx context.Context, s MPCSession, parties []MPCParty) error {
	peers := make([]mpcPeer, len(parties))
	for i, p := range parties {
		peers[i] = mpcPeer{Index: p.Index(), URL: p.(mpcNetParty).url()}
	}
	errs := make([]error, len(parties))
	var wg sync.WaitGroup
	for i, p := range parties {
		wg.Go(func() { errs[i] = p.(mpcNetParty).open(ctx, s, peers) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		for _, p := range parties {
			p.(mpcNetParty).abort(s)
		}
		return unavailable("mpc", err)
	}
	return nil
}

// MPCRemoteConfig says how the engine reaches its `sluice mpc party`
// processes.
type MPCRemoteConfig struct {
	// Parties are the share holders' URLs (https://) and share indexes.
	Parties []MPCRemotePartyConfig
	// CertFile and KeyFile are the engine's client certificate; CAFile
	// verifies the parties' certificates.
	CertFile, KeyFile, CAFile string
	// TLS, when set, is used instead of the files (tests).
	TLS *tls.Config
	// Timeout bounds one health check or session opening (default 5s).
	Timeout time.Duration
	// SessionTimeout bounds one signing session (default 60s).
	SessionTimeout time.Duration
}

// MPCRemotePartyConfig is one party of an MPCRemoteConfig.
type MPCRemotePartyConfig struct {
	URL   string
	Index int
}

// DialMPC connects to the parties and returns a signer whose sessions run
// among them. It needs one party to answer to learn the group; parties
// that are down now are checked again, against that group, whenever a
// quorum is picked.
func DialMPC(ctx context.Context, cfg MPCRemoteConfig) (*MPC, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 60 * time.Second
	}
	tlsCfg := cfg.TLS
	if tlsCfg == nil {
		var err error
		if tlsCfg, err = clientTLS(RemoteConfig{CAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}); err != nil {
			return nil, fmt.Errorf("mpc: %w", err)
		}
	}
	parties := make([]*MPCRemoteParty, len(cfg.Parties))
	infos := make([]*mpcPartyInfo, len(cfg.Parties))
	errs := make([]error, len(cfg.Parties))
	var wg sync.WaitGroup
	for i, pc := range cfg.Parties {
		parties[i] = newMPCRemoteParty(pc, tlsCfg, cfg.Timeout, cfg.SessionTimeout)
		wg.Go(func() { infos[i], errs[i] = parties[i].info(ctx) })
	}
	wg.Wait()
	var group *MPCGroup
	for i, info := range infos {
		if errs[i] != nil {
			continue
		}
		g := MPCGroup{Address: info.Address, PublicKey: info.PublicKey, Parties: info.Parties, Threshold: info.Threshold}
		if group == nil {
			group = &g
		}
	}
	if group == nil {
		err := fmt.Errorf("%w: no party answered", ErrMPCQuorum)
		return nil, unavailable("mpc", errors.Join(append([]error{err}, errs...)...))
	}
	ps := make([]MPCParty, len(parties))
	for i, p := range parties {
		p.group = *group
		if errs[i] == nil {
			p.group = MPCGroup{Address: infos[i].Address, PublicKey: infos[i].PublicKey, Parties: infos[i].Parties, Threshold: infos[i].Threshold}
		}
		ps[i] = p
	}
	return NewMPC(ps)
}

// MPCRemoteParty is a share held by a `sluice mpc party` process.
type MPCRemoteParty struct {
	base           string
	index          int
	group          MPCGroup
	http           *http.Client
	timeout        time.Duration
	sessionTimeout time.Duration
}

var _ mpcNetParty = (*MPCRemoteParty)(nil)

func newMPCRemoteParty(pc MPCRemotePartyConfig, tlsCfg *tls.Config, timeout, sessionTimeout time.Duration) *MPCRemoteParty {
	tr := &http.Transport{TLSClientConfig: verifyPartyCert(tlsCfg, pc.Index), MaxIdleConnsPerHost: 16,
		IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: true}
	return &MPCRemoteParty{base: strings.TrimRight(pc.URL, "/"), index: pc.Index, http: &http.Client{Transport: tr},
		timeout: timeout, sessionTimeout: sessionTimeout}
}

// Index is the party's share number.
func (p *MPCRemoteParty) Index() int { return p.index }

// Group describes the key the party's share belongs to.
func (p *MPCRemoteParty) Group() MPCGroup { return p.group }

func (p *MPCRemoteParty) url() string { return p.base }

// Health asks the party which share it holds and checks that it is still
// share Index of the group.
func (p *MPCRemoteParty) Health(ctx context.Context) error {
	info, err := p.info(ctx)
	if err != nil {
		return err
	}
	if info.Index != p.index || info.Address != p.group.Address || info.Threshold != p.group.Threshold || info.Parties != p.group.Parties {
		return fmt.Errorf("%s holds share %d of %s (%d-of-%d), not share %d of %s", p.base, info.Index, info.Address.Hex(),
			info.Threshold, info.Parties, p.index, p.group.Address.Hex())
	}
	return nil
}

func (p *MPCRemoteParty) info(ctx context.Context) (*mpcPartyInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var info mpcPartyInfo
	if err := p.call(ctx, http.MethodGet, "/v1/party", nil, &info); err != nil {
		return nil, err
	}
	if pub, err := crypto.UnmarshalPubkey(info.PublicKey); err != nil || crypto.PubkeyToAddress(*pub) != info.Address {
		return nil, fmt.Errorf("%s: the group key it reports is not of %s", p.base, info.Address.Hex())
	}
	return &info, nil
}

func (p *MPCRemoteParty) open(ctx context.Context, s MPCSession, peers []mpcPeer) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req := mpcOpenRequest{SessionID: s.ID.Text(16), ChainID: (*hexutil.Big)(s.ChainID), Tx: s.Tx, Digest: s.Digest, Signers: peers,
		Payout: s.Intent}
	if err := p.call(ctx, http.MethodPost, "/v1/sessions", req, nil); err != nil {
		return fmt.Errorf("party %d: %w", p.index, err)
	}
	return nil
}

// abort drops a session that will not run (best effort).
func (p *MPCRemoteParty) abort(s MPCSession) {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	_ = p.call(ctx, http.MethodDelete, "/v1/sessions/"+s.ID.Text(16), nil, nil)
}

// Sign runs the party's side of session s, which must have been opened on
// every signer. The party talks to its peers itself: tr is not used.
func (p *MPCRemoteParty) Sign(ctx context.Context, s MPCSession, _ MPCTransport) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, p.sessionTimeout)
	defer cancel()
	var res mpcSignResult
	if err := p.call(ctx, http.MethodPost, "/v1/sessions/"+s.ID.Text(16)+"/sign", nil, &res); err != nil {
		return nil, fmt.Errorf("mpc: party %d: %w", p.index, err)
	}
	return res.Signature, nil
}

// call makes one request to the party. A refusal wraps ErrRefused.
func (p *MPCRemoteParty) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		blob, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(blob)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	defer resp.Body.Close()
	return decodeMPCAnswer(resp, out)
}

// decodeMPCAnswer reads a party's answer into out, or its error.
func decodeMPCAnswer(resp *http.Response, out any) error {
	blob, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e mpcErrorBody
		if json.Unmarshal(blob, &e) != nil || e.Error == "" {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if e.Code == "refused" {
			return fmt.Errorf("%w: %s", ErrRefused, e.Error)
		}
		return fmt.Errorf("%s (HTTP %d)", e.Error, resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(blob, out); err != nil {
		return fmt.Errorf("malformed answer: %w", err)
	}
	return nil
}

// mpcNetTransport is a party process's end of one session: it posts the
// party's messages to its peers and receives theirs through the server's
// message handler.
type mpcNetTransport struct {
	id      *big.Int
	self    int
	signers []int
	peers   map[int]string       // index -> base URL
	clients map[int]*http.Client // index -> client that accepts only that party's certificate
	inbox   chan MPCMessage
}

var _ MPCTransport = (*mpcNetTransport)(nil)

func (t *mpcNetTransport) Inbox() <-chan MPCMessage { return t.inbox }

// Send posts m to each recipient (every other signer when m.To is empty).
func (t *mpcNetTransport) Send(ctx context.Context, m MPCMessage) error {
	to := m.To
	if len(to) == 0 {
		for _, i := range t.signers {
			if i != t.self {
				to = append(to, i)
			}
		}
	}
	blob, err := json.Marshal(mpcWireMessage{SessionID: t.id.Text(16), From: t.self, To: m.To, Broadcast: m.Broadcast, Payload: m.Payload})
	if err != nil {
		return err
	}
	for _, i := range to {
		if err := t.post(ctx, i, blob); err != nil {
			return fmt.Errorf("send to party %d: %w", i, err)
		}
	}
	return nil
}

func (t *mpcNetTransport) post(ctx context.Context, to int, blob []byte) error {
	base, ok := t.peers[to]
	client := t.clients[to]
	if !ok || client == nil || to == t.self {
		return errors.New("not a peer in this session")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/sessions/"+t.id.Text(16)+"/messages", bytes.NewReader(blob))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	defer resp.Body.Close()
	return decodeMPCAnswer(resp, nil)
}
