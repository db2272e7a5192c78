package signer

import (
	"bytes"
	"context"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/miekg/pkcs11"

	"github.com/sluicepay/sluice/internal/payout"
)

// secp256k1OID is the DER encoding of 1.3.132.0.10, CKA_EC_PARAMS of a
// secp256k1 key.
var secp256k1OID = []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a}

// PKCS11Config names a secp256k1 key in an HSM token.
type PKCS11Config struct {
	// Module is the PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so).
	Module string
	// TokenLabel picks the token (slot) by label.
	TokenLabel string
	// KeyLabel is CKA_LABEL of the key pair.
	KeyLabel string
	// PIN is the user PIN; never logged or put in errors.
	PIN string
	// Sessions is how many sessions sign in parallel (default 4).
	Sessions int
}

// PKCS11 signs with a secp256k1 key that never leaves an HSM. The token
// returns a raw r||s with no recovery id and possibly a high s: s is
// normalised and the recovery id found by trying 0 and 1.
type PKCS11 struct {
	ctx      *pkcs11.Ctx
	module   string
	slot     uint
	priv     pkcs11.ObjectHandle
	pub      []byte // uncompressed point, 65 bytes
	addr     common.Address
	sessions chan pkcs11.SessionHandle
	login    pkcs11.SessionHandle

	closeOnce sync.Once
}

var (
	_ payout.Signer = (*PKCS11)(nil)
	_ Checker       = (*PKCS11)(nil)
)

// OpenPKCS11 loads the module, logs in to the token and finds the key.
func OpenPKCS11(cfg PKCS11Config) (*PKCS11, error) {
	if cfg.Sessions <= 0 {
		cfg.Sessions = 4
	}
	p, err := openToken(cfg)
	if err != nil {
		return nil, err
	}
	if err := p.findKey(cfg.KeyLabel); err != nil {
		p.Close()
		return nil, err
	}
	for range cfg.Sessions {
		sh, err := p.ctx.OpenSession(p.slot, pkcs11.CKF_SERIAL_SESSION)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("pkcs11: open session: %w", err)
		}
		p.sessions <- sh
	}
	return p, nil
}

// GeneratePKCS11Key creates a secp256k1 key pair labelled cfg.KeyLabel in
// the token (private key sensitive and not extractable) and returns its
// address.
func GeneratePKCS11Key(cfg PKCS11Config) (common.Address, error) {
	p, err := openToken(cfg)
	if err != nil {
		return common.Address{}, err
	}
	defer p.Close()
	label := []byte(cfg.KeyLabel)
	pubT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, secp256k1OID), pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
	privT := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true), pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false), pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)}
	if _, _, err := p.ctx.GenerateKeyPair(p.login, mech, pubT, privT); err != nil {
		return common.Address{}, fmt.Errorf("pkcs11: generate secp256k1 key %q: %w", cfg.KeyLabel, err)
	}
	if err := p.findKey(cfg.KeyLabel); err != nil {
		return common.Address{}, err
	}
	return p.addr, nil
}

// modules holds each loaded PKCS#11 library once per process: it is
// initialised once, and finalised when its last signer closes (several
// wallets may share a module and a token).
var modules = struct {
	sync.Mutex
	m map[string]*moduleRef
}{m: map[string]*moduleRef{}}

type moduleRef struct {
	ctx  *pkcs11.Ctx
	refs int
}

func acquireModule(path string) (*pkcs11.Ctx, error) {
	modules.Lock()
	defer modules.Unlock()
	if m, ok := modules.m[path]; ok {
		m.refs++
		return m.ctx, nil
	}
	ctx := pkcs11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("pkcs11: cannot load module %s", path)
	}
	if err := ctx.Initialize(); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		ctx.Destroy()
		return nil, fmt.Errorf("pkcs11: initialize %s: %w", path, err)
	}
	modules.m[path] = &moduleRef{ctx: ctx, refs: 1}
	return ctx, nil
}

func releaseModule(path string) {
	modules.Lock()
	defer modules.Unlock()
	m, ok := modules.m[path]
	if !ok {
		return
	}
	if m.refs--; m.refs == 0 {
		delete(modules.m, path)
		_ = m.ctx.Finalize()
		m.ctx.Destroy()
	}
}

func openToken(cfg PKCS11Config) (*PKCS11, error) {
	ctx, err := acquireModule(cfg.Module)
	if err != nil {
		return nil, err
	}
	p := &PKCS11{ctx: ctx, module: cfg.Module, sessions: make(chan pkcs11.SessionHandle, max(cfg.Sessions, 1))}
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("pkcs11: list slots: %w", err)
	}
	found := false
	for _, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err == nil && ti.Label == cfg.TokenLabel {
			p.slot, found = s, true
			break
		}
	}
	if !found {
		p.Close()
		return nil, fmt.Errorf("pkcs11: no token labelled %q", cfg.TokenLabel)
	}
	if p.login, err = ctx.OpenSession(p.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION); err != nil {
		p.Close()
		return nil, fmt.Errorf("pkcs11: open session: %w", err)
	}
	// Login is per token for the whole application: every session after it is logged in.
	if err := ctx.Login(p.login, pkcs11.CKU_USER, cfg.PIN); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
		p.Close()
		if errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)) {
			return nil, fmt.Errorf("pkcs11: token %q: wrong PIN", cfg.TokenLabel)
		}
		return nil, fmt.Errorf("pkcs11: log in to token %q: %w", cfg.TokenLabel, err)
	}
	return p, nil
}

// findKey finds the key pair by label and derives the address from the
// public key's CKA_EC_POINT.
func (p *PKCS11) findKey(label string) error {
	priv, err := p.find(pkcs11.CKO_PRIVATE_KEY, label)
	if err != nil {
		return err
	}
	pubH, err := p.find(pkcs11.CKO_PUBLIC_KEY, label)
	if err != nil {
		return err
	}
	attrs, err := p.ctx.GetAttributeValue(p.login, pubH, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil), pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
	if err != nil {
		return fmt.Errorf("pkcs11: read public key %q: %w", label, err)
	}
	if !bytes.Equal(attrs[0].Value, secp256k1OID) {
		return fmt.Errorf("pkcs11: key %q is not on secp256k1", label)
	}
	point := attrs[1].Value
	var inner []byte // CKA_EC_POINT is a DER OCTET STRING holding the point
	if rest, err := asn1.Unmarshal(point, &inner); err == nil && len(rest) == 0 {
		point = inner
	}
	pub, err := crypto.UnmarshalPubkey(point)
	if err != nil {
		return fmt.Errorf("pkcs11: key %q: public point: %w", label, err)
	}
	p.priv, p.pub, p.addr = priv, crypto.FromECDSAPub(pub), crypto.PubkeyToAddress(*pub)
	return nil
}

func (p *PKCS11) find(class uint, label string) (pkcs11.ObjectHandle, error) {
	tmpl := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class), pkcs11.NewAttribute(pkcs11.CKA_LABEL, []byte(label)),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC)}
	if err := p.ctx.FindObjectsInit(p.login, tmpl); err != nil {
		return 0, fmt.Errorf("pkcs11: find key %q: %w", label, err)
	}
	hs, _, err := p.ctx.FindObjects(p.login, 2)
	if ferr := p.ctx.FindObjectsFinal(p.login); err == nil {
		err = ferr
	}
	switch {
	case err != nil:
		return 0, fmt.Errorf("pkcs11: find key %q: %w", label, err)
	case len(hs) == 0:
		return 0, fmt.Errorf("pkcs11: no EC key labelled %q in the token", label)
	case len(hs) > 1:
		return 0, fmt.Errorf("pkcs11: several keys labelled %q in the token", label)
	}
	return hs[0], nil
}

// Address is the key's account.
func (p *PKCS11) Address() common.Address { return p.addr }

// SignDigest signs with CKM_ECDSA, then normalises s and finds v.
func (p *PKCS11) SignDigest(ctx context.Context, digest [32]byte) ([]byte, error) {
	var sh pkcs11.SessionHandle
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case sh = <-p.sessions:
	}
	defer func() { p.sessions <- sh }()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := p.ctx.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}, p.priv); err != nil {
		return nil, unavailable("pkcs11", fmt.Errorf("sign init: %w", err))
	}
	rs, err := p.ctx.Sign(sh, digest[:])
	if err != nil {
		return nil, unavailable("pkcs11", fmt.Errorf("sign: %w", err))
	}
	return recoverable(digest, rs, p.pub)
}

// recoverable turns a raw r||s into [R || S || V]: low s, and the V with
// which the signature recovers to pub.
func recoverable(digest [32]byte, rs, pub []byte) ([]byte, error) {
	if len(rs) != 64 {
		return nil, unavailable("pkcs11", fmt.Errorf("signature of %d bytes, want 64", len(rs)))
	}
	sig := make([]byte, 65)
	copy(sig, rs)
	if s := new(big.Int).SetBytes(rs[32:]); s.Cmp(secpHalfN) > 0 {
		s.Sub(secpN, s).FillBytes(sig[32:64])
	}
	for v := range byte(2) {
		sig[64] = v
		if got, err := crypto.Ecrecover(digest[:], sig); err == nil && bytes.Equal(got, pub) {
			return sig, nil
		}
	}
	return nil, unavailable("pkcs11", errors.New("signature recovers to neither recovery id: the token signed with another key"))
}

// Health checks that the token still answers and the session is logged in.
func (p *PKCS11) Health(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	info, err := p.ctx.GetSessionInfo(p.login)
	if err != nil {
		return unavailable("pkcs11", err)
	}
	if info.State != pkcs11.CKS_RW_USER_FUNCTIONS && info.State != pkcs11.CKS_RO_USER_FUNCTIONS {
		return unavailable("pkcs11", errors.New("token session is not logged in"))
	}
	return nil
}

// Close closes the signer's sessions, and unloads the module when no
// other signer uses it (which also logs out of the token).
func (p *PKCS11) Close() {
	p.closeOnce.Do(func() {
		for len(p.sessions) > 0 {
			_ = p.ctx.CloseSession(<-p.sessions)
		}
		if p.login != 0 {
			_ = p.ctx.CloseSession(p.login)
		}
		releaseModule(p.module)
	})
}
