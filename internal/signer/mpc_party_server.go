package signer

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	ethcommon "github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MPCPartyConfig configures one `sluice mpc party` process.
type MPCPartyConfig struct {
	// Party is the decrypted share the process holds.
	Party *MPCLocalParty
	// Cert is the party's certificate, served to its clients and presented
	// to its peers; its common name must be MPCPartyCommonName(index) and
	// it must allow both server and client authentication.
	Cert tls.Certificate
	// ClientCAs verifies the certificates of the engine and the peers.
	ClientCAs *x509.CertPool
	// PeerCAs verifies the peers' server certificates (default ClientCAs).
	PeerCAs *x509.CertPool
	// Limits, when set, are the party's own rules (the format of `sluice
	// signer serve --limits`), checked on every transaction before the
	// party takes part, whatever the engine says.
	Limits *Limits
	// LimitsState, with Limits, keeps what they counted across restarts
	// (ServerConfig.StateFile); empty: in memory only.
	LimitsState string
	// SessionTimeout bounds a session from its opening (default 60s).
	SessionTimeout time.Duration
	// MaxSessions bounds the sessions open at once (default 16).
	MaxSessions int
	// Engines are the certificate common names allowed to open, start and
	// abort sessions; empty: any certificate the client CA signed that is
	// not a party's.
	Engines []string
	Logger  *slog.Logger
}

// MPCPartyServer is a share holder's HTTP handler (`sluice mpc party`):
// see mpc_net.go for the protocol.
type MPCPartyServer struct {
	party          *MPCLocalParty
	tls            *tls.Config
	clients        map[int]*http.Client // peers by share index
	limits         *Server              // nil: no limits of its own
	sessionTimeout time.Duration
	maxSessions    int
	engines        []string
	log            *slog.Logger
	mux            *http.ServeMux
	outcomes       *prometheus.CounterVec
	latency        prometheus.Histogram

	mu       sync.Mutex
	sessions map[string]*mpcPartySession // by session id, hex
}

// mpcPartySession is one session a party holds.
type mpcPartySession struct {
	s       MPCSession
	tr      *mpcNetTransport
	txHash  string
	opened  time.Time
	cancel  context.CancelFunc
	ctx     context.Context
	started bool // guarded by MPCPartyServer.mu
}

// NewMPCPartyServer checks the configuration: the certificate must name
// the share's index.
func NewMPCPartyServer(cfg MPCPartyConfig) (*MPCPartyServer, error) {
	if cfg.Party == nil {
		return nil, errors.New("mpc party: no share")
	}
	if cfg.ClientCAs == nil {
		return nil, errors.New("mpc party: client CA: required (mutual TLS)")
	}
	if err := checkPartyCert(cfg.Cert, cfg.Party.Index()); err != nil {
		return nil, err
	}
	if cfg.PeerCAs == nil {
		cfg.PeerCAs = cfg.ClientCAs
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 60 * time.Second
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &MPCPartyServer{party: cfg.Party, sessionTimeout: cfg.SessionTimeout, maxSessions: cfg.MaxSessions, engines: cfg.Engines,
		log: cfg.Logger.With("component", "mpc_party", "party", cfg.Party.Index()), clients: map[int]*http.Client{},
		sessions: map[string]*mpcPartySession{}}
	s.tls = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cfg.Cert},
		ClientCAs: cfg.ClientCAs, ClientAuth: tls.RequireAndVerifyClientCert}
	peerTLS := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cfg.Cert}, RootCAs: cfg.PeerCAs}
	for j := 1; j <= cfg.Party.Group().Parties; j++ {
		if j != cfg.Party.Index() {
			s.clients[j] = &http.Client{Transport: &http.Transport{TLSClientConfig: verifyPartyCert(peerTLS, j),
				MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: true}}
		}
	}
	if cfg.Limits != nil {
		var err error
		if s.limits, err = mpcLimits(*cfg.Limits, cfg.LimitsState, cfg.Party.Group().Address); err != nil {
			return nil, err
		}
	}
	s.routes(prometheus.NewRegistry())
	return s, nil
}

// checkPartyCert refuses a certificate that does not name share index or
// cannot serve both ends of mutual TLS.
func checkPartyCert(cert tls.Certificate, index int) error {
	leaf := cert.Leaf
	if leaf == nil {
		if len(cert.Certificate) == 0 {
			return errors.New("mpc party: tls: no certificate")
		}
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("mpc party: tls: %w", err)
		}
	}
	if got, ok := mpcPartyOf(leaf); !ok || got != index {
		return fmt.Errorf("mpc party: tls: the certificate's common name is %q, want %q for share %d",
			leaf.Subject.CommonName, MPCPartyCommonName(index), index)
	}
	if len(leaf.ExtKeyUsage) > 0 && (!slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) ||
		!slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth)) {
		return errors.New("mpc party: tls: the certificate must allow both server and client authentication")
	}
	return nil
}

// mpcAddrOnly lends a group's address to the limits checker; it never
// signs.
type mpcAddrOnly ethcommon.Address

func (a mpcAddrOnly) Address() ethcommon.Address { return ethcommon.Address(a) }
func (mpcAddrOnly) SignDigest(context.Context, [32]byte) ([]byte, error) {
	return nil, ErrNeedsTransaction
}

// mpcLimits reuses the remote signer's limits (allow-list, per-asset and
// daily caps, fee cap, one transfer per nonce) for a party.
func mpcLimits(l Limits, stateFile string, addr ethcommon.Address) (*Server, error) {
	var tok [16]byte
	_, _ = rand.Read(tok[:]) // the checker serves no HTTP: its token is never used
	srv, err := NewServer(ServerConfig{Signer: mpcAddrOnly(addr), Token: hex.EncodeToString(tok[:]), Limits: l, StateFile: stateFile})
	if err != nil {
		return nil, fmt.Errorf("mpc party: %w", err)
	}
	return srv, nil
}

func (s *MPCPartyServer) routes(reg *prometheus.Registry) {
	s.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_mpc_party_sessions_total",
		Help: "Signing sessions by outcome: signed, refused, failed, aborted."}, []string{"outcome"})
	s.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_mpc_party_session_duration_seconds",
		Help: "Duration of signed sessions, from the opening to the signature.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)})
	reg.MustRegister(s.outcomes, s.latency)
	for _, o := range []string{"signed", "refused", "failed", "aborted"} {
		s.outcomes.WithLabelValues(o)
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /healthz", s.handleInfo)
	s.mux.HandleFunc("GET /v1/party", s.handleInfo)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("POST /v1/sessions", s.handleOpen)
	s.mux.HandleFunc("POST /v1/sessions/{id}/sign", s.handleSign)
	s.mux.HandleFunc("POST /v1/sessions/{id}/messages", s.handleMessage)
	s.mux.HandleFunc("DELETE /v1/sessions/{id}", s.handleAbort)
}

// TLSConfig is the server's TLS configuration: its certificate, and
// client certificates required and verified.
func (s *MPCPartyServer) TLSConfig() *tls.Config { return s.tls.Clone() }

// Index is the share the server holds.
func (s *MPCPartyServer) Index() int { return s.party.Index() }

// ServeHTTP serves the party's routes. Every caller is authenticated by
// its certificate (the TLS config requires one).
func (s *MPCPartyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		writeMPCError(w, http.StatusForbidden, "forbidden", "a client certificate is required")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Close ends every session.
func (s *MPCPartyServer) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ss := range s.sessions {
		ss.cancel()
	}
	if s.limits != nil {
		_ = s.limits.Close()
	}
}

func (s *MPCPartyServer) handleInfo(w http.ResponseWriter, _ *http.Request) {
	g := s.party.Group()
	writeMPCJSON(w, mpcPartyInfo{Index: s.party.Index(), Address: g.Address, PublicKey: g.PublicKey, Parties: g.Parties, Threshold: g.Threshold})
}

// caller is the share index of the request's certificate (0: not a party).
func caller(r *http.Request) int {
	i, _ := mpcPartyOf(r.TLS.PeerCertificates[0])
	return i
}

// engine answers 403 unless the request's certificate may drive sessions:
// never a party's, and one of the configured engines when there are.
func (s *MPCPartyServer) engine(w http.ResponseWriter, r *http.Request) bool {
	cn := r.TLS.PeerCertificates[0].Subject.CommonName
	switch {
	case caller(r) != 0:
		writeMPCError(w, http.StatusForbidden, "forbidden", "a party certificate cannot drive sessions")
		return false
	case len(s.engines) > 0 && !slices.Contains(s.engines, cn):
		s.log.Warn("session request refused: not an engine", "common_name", cn, "remote", r.RemoteAddr)
		writeMPCError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("certificate %q is not an engine's", cn))
		return false
	}
	return true
}

func (s *MPCPartyServer) handleOpen(w http.ResponseWriter, r *http.Request) {
	if !s.engine(w, r) {
		return
	}
	var req mpcOpenRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 256<<10)).Decode(&req); err != nil || req.ChainID == nil {
		writeMPCError(w, http.StatusBadRequest, "bad_request", "want {session_id, chain_id, tx, digest, signers}")
		return
	}
	sess, err := s.newSession(req)
	if err != nil {
		writeMPCError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	tx, err := checkMPCTx(sess.s)
	if err == nil {
		err = checkIntent(tx, sess.s.Intent, s.party.Group().Address)
	}
	if err == nil && s.limits != nil {
		if lerr := s.limits.admit(sess.s.ChainID, tx); errors.Is(lerr, ErrLimitsState) {
			s.log.Error("session refused: the limits' state cannot be written", "err", lerr)
			writeMPCError(w, http.StatusServiceUnavailable, "unavailable", "the party cannot record what it signs; it signs nothing until it can")
			return
		} else if lerr != nil {
			err = fmt.Errorf("%w: %v", ErrRefused, lerr)
		}
	}
	if err != nil {
		s.outcomes.WithLabelValues("refused").Inc()
		s.log.Warn("session refused", "session_id", shortID(sess.s.ID), "reason", err.Error())
		writeMPCError(w, http.StatusForbidden, "refused", strings.TrimPrefix(err.Error(), ErrRefused.Error()+": "))
		return
	}
	sess.txHash = tx.Hash().Hex()
	if code, msg := s.register(sess); code != http.StatusOK {
		writeMPCError(w, code, "conflict", msg)
		return
	}
	s.log.Info("session opened", "session_id", shortID(sess.s.ID), "chain_id", sess.s.ChainID, "nonce", tx.Nonce(),
		"tx_hash", sess.txHash, "signers", sess.s.Signers)
	writeMPCJSON(w, struct{}{})
}

// newSession checks an opening's session id and signers and builds the
// session and its transport.
func (s *MPCPartyServer) newSession(req mpcOpenRequest) (*mpcPartySession, error) {
	id, ok := parseSessionID(req.SessionID)
	if !ok {
		return nil, errors.New("session_id: want a non-zero hex number of at most 256 bits")
	}
	g := s.party.Group()
	if len(req.Signers) < g.Threshold || len(req.Signers) > g.Parties {
		return nil, fmt.Errorf("signers: %d given, want %d to %d", len(req.Signers), g.Threshold, g.Parties)
	}
	tr := &mpcNetTransport{id: id, self: s.party.Index(), peers: map[int]string{}, clients: s.clients,
		inbox: make(chan MPCMessage, 64*len(req.Signers))}
	for _, p := range req.Signers {
		if p.Index < 1 || p.Index > g.Parties || slices.Contains(tr.signers, p.Index) {
			return nil, fmt.Errorf("signers: index %d is out of 1..%d or given twice", p.Index, g.Parties)
		}
		if p.Index != s.party.Index() && !strings.HasPrefix(p.URL, "https://") {
			return nil, fmt.Errorf("signers: party %d's url is not https://", p.Index)
		}
		tr.signers = append(tr.signers, p.Index)
		tr.peers[p.Index] = strings.TrimRight(p.URL, "/")
	}
	if !slices.Contains(tr.signers, s.party.Index()) {
		return nil, fmt.Errorf("signers: party %d is not one of them", s.party.Index())
	}
	slices.Sort(tr.signers)
	ms := MPCSession{ID: id, Digest: req.Digest, Signers: tr.signers, ChainID: req.ChainID.ToInt(), Tx: req.Tx, Intent: req.Payout}
	return &mpcPartySession{s: ms, tr: tr}, nil
}

// register holds a new session until it is signed, aborted or times out.
func (s *MPCPartyServer) register(sess *mpcPartySession) (int, string) {
	key := sess.s.ID.Text(16)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.sessions[key]; dup {
		return http.StatusConflict, "session already open"
	}
	if len(s.sessions) >= s.maxSessions {
		return http.StatusServiceUnavailable, fmt.Sprintf("%d sessions open: busy", len(s.sessions))
	}
	sess.opened = time.Now()
	sess.ctx, sess.cancel = context.WithTimeout(context.Background(), s.sessionTimeout)
	s.sessions[key] = sess
	context.AfterFunc(sess.ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.sessions[key] == sess {
			delete(s.sessions, key)
		}
		if !sess.started {
			s.outcomes.WithLabelValues("aborted").Inc()
		}
	})
	return http.StatusOK, ""
}

// lookup finds a session by the id in the request's path.
func (s *MPCPartyServer) lookup(r *http.Request) (*mpcPartySession, string) {
	id, ok := parseSessionID(r.PathValue("id"))
	if !ok {
		return nil, ""
	}
	key := id.Text(16)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[key], key
}

func (s *MPCPartyServer) handleSign(w http.ResponseWriter, r *http.Request) {
	if !s.engine(w, r) {
		return
	}
	sess, _ := s.lookup(r)
	if sess == nil {
		writeMPCError(w, http.StatusNotFound, "unknown_session", "no such session open")
		return
	}
	s.mu.Lock()
	started := sess.started
	sess.started = true
	s.mu.Unlock()
	if started {
		writeMPCError(w, http.StatusConflict, "conflict", "session already started")
		return
	}
	defer sess.cancel()
	ctx, cancel := context.WithCancel(sess.ctx)
	defer cancel()
	stop := context.AfterFunc(r.Context(), cancel) // the engine gave up
	defer stop()
	rs, err := s.party.Sign(ctx, sess.s, sess.tr)
	if err != nil {
		s.outcomes.WithLabelValues("failed").Inc()
		s.log.Warn("session failed", "session_id", shortID(sess.s.ID), "tx_hash", sess.txHash, "err", err)
		writeMPCError(w, http.StatusInternalServerError, "failed", err.Error())
		return
	}
	d := time.Since(sess.opened)
	s.outcomes.WithLabelValues("signed").Inc()
	s.latency.Observe(d.Seconds())
	s.log.Info("session signed", "session_id", shortID(sess.s.ID), "tx_hash", sess.txHash, "duration", d)
	writeMPCJSON(w, mpcSignResult{Signature: rs})
}

func (s *MPCPartyServer) handleMessage(w http.ResponseWriter, r *http.Request) {
	from := caller(r)
	if from == 0 {
		writeMPCError(w, http.StatusForbidden, "forbidden", "only a party certificate sends protocol messages")
		return
	}
	var m mpcWireMessage
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&m); err != nil {
		writeMPCError(w, http.StatusBadRequest, "bad_request", "malformed message")
		return
	}
	sess, key := s.lookup(r)
	if id, ok := parseSessionID(m.SessionID); !ok || key == "" || id.Text(16) != key {
		writeMPCError(w, http.StatusBadRequest, "wrong_session", "the message's session id is not the one in the path")
		return
	}
	if sess == nil {
		writeMPCError(w, http.StatusNotFound, "unknown_session", "no such session open")
		return
	}
	self := s.party.Index()
	switch {
	case m.From != from:
		writeMPCError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("party %d's certificate sent a message from party %d", from, m.From))
		return
	case from == self || !slices.Contains(sess.s.Signers, from):
		writeMPCError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("party %d is not a peer in this session", from))
		return
	case len(m.To) > 0 && !slices.Contains(m.To, self):
		writeMPCError(w, http.StatusBadRequest, "bad_request", "the message is not addressed to this party")
		return
	}
	select {
	case sess.tr.inbox <- MPCMessage{From: m.From, To: m.To, Broadcast: m.Broadcast, Payload: m.Payload}:
		writeMPCJSON(w, struct{}{})
	default:
		writeMPCError(w, http.StatusServiceUnavailable, "busy", "the session's inbox is full")
	}
}

func (s *MPCPartyServer) handleAbort(w http.ResponseWriter, r *http.Request) {
	if !s.engine(w, r) {
		return
	}
	if sess, _ := s.lookup(r); sess != nil {
		sess.cancel()
		s.log.Info("session aborted", "session_id", shortID(sess.s.ID))
	}
	writeMPCJSON(w, struct{}{})
}

// parseSessionID reads a hex session id: non-zero, at most 256 bits.
func parseSessionID(s string) (*big.Int, bool) {
	id, ok := new(big.Int).SetString(s, 16)
	return id, ok && id.Sign() > 0 && id.BitLen() <= 256
}

// shortID is a session id's first hex digits, enough to follow it in logs.
func shortID(id *big.Int) string {
	t := id.Text(16)
	if len(t) > 12 {
		t = t[:12]
	}
	return t
}

func writeMPCJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeMPCError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(mpcErrorBody{Code: code, Error: msg})
}
