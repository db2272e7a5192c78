package httpapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// SignatureHeader carries a request's signature:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of t.METHOD.path.body>".
const SignatureHeader = "Sluice-Signature"

// SignatureTolerance is how far a signature's time may be from the
// server's clock, either way.
const SignatureTolerance = 5 * time.Minute

// signingContext is the message that derives a key's HMAC key from its
// secret: SigningKey(secret) = HMAC-SHA256(key=secret, msg=signingContext).
const signingContext = "sluice-request-signing-v1"

// maxSignatureHeader bounds the header we parse.
const maxSignatureHeader = 1024

// SigningKey derives the HMAC key of request signatures from an API key's
// secret. The server keeps this, never the secret, so its database cannot
// be used as a bearer token; the client computes it from the secret.
func SigningKey(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(signingContext))
	return m.Sum(nil)
}

// Sign returns the Sluice-Signature header value of a request made at t.
// pathAndQuery is the request target as sent, e.g. "/v1/payouts?limit=5".
func Sign(signingKey []byte, t time.Time, method, pathAndQuery string, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(signatureMAC(signingKey, ts, method, pathAndQuery, body))
}

func signatureMAC(key []byte, ts, method, target string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write([]byte(method))
	m.Write([]byte{'.'})
	m.Write([]byte(target))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// parsedSignature is a parsed Sluice-Signature header.
type parsedSignature struct {
	ts   string   // the t value as sent, part of the signed message
	unix int64    // t as a number
	v1   [][]byte // the v1 MACs (32 bytes each); several during a key rotation
}

// parseSignature reads "t=<unix>,v1=<64 hex>[,v1=…]". Elements are
// separated by commas, with optional spaces; unknown elements (a future
// v2) are ignored; t must appear once, and at least one v1.
func parseSignature(h string) (parsedSignature, error) {
	var p parsedSignature
	if len(h) > maxSignatureHeader {
		return p, errors.New("the header is longer than 1024 bytes")
	}
	seenT := false
	for part := range strings.SplitSeq(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return p, errors.New("each element must be name=value")
		}
		switch k {
		case "t":
			if seenT {
				return p, errors.New("t is given twice")
			}
			seenT = true
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 || len(v) > 12 || v[0] < '1' || v[0] > '9' {
				return p, errors.New("t must be a positive whole number of unix seconds")
			}
			p.ts, p.unix = v, n
		case "v1":
			mac, err := hex.DecodeString(v)
			if err != nil || len(mac) != sha256.Size {
				return p, errors.New("v1 must be 64 hex digits")
			}
			if len(p.v1) == 8 {
				return p, errors.New("more than 8 v1 signatures")
			}
			p.v1 = append(p.v1, mac)
		}
	}
	if !seenT || len(p.v1) == 0 {
		return p, errors.New("t and v1 are both required")
	}
	return p, nil
}

// verifySignature checks the Sluice-Signature of a request by key, which
// requires signing: its form, its time, its MAC (in constant time) and,
// last, that it was not seen before. It reads the body and puts it back
// for the handler.
func (s *Server) verifySignature(ctx context.Context, r *http.Request, key *APIKey) error {
	h := r.Header.Get(SignatureHeader)
	if h == "" {
		return newError(payout.CodeSignatureMissing, "this API key requires signed requests: send %s", SignatureHeader)
	}
	sig, err := parseSignature(h)
	if err != nil {
		return newError(payout.CodeSignatureMalformed, "%s: %s", SignatureHeader, err.Error())
	}
	now := s.now()
	at := time.Unix(sig.unix, 0)
	if d := now.Sub(at); d > SignatureTolerance || d < -SignatureTolerance {
		return newError(payout.CodeSignatureExpired, "the signature's time t=%d is more than %s from the server's time %d",
			sig.unix, SignatureTolerance, now.Unix())
	}
	body, err := signedBody(r)
	if err != nil {
		return err
	}
	target := r.RequestURI
	if target == "" {
		target = r.URL.RequestURI()
	}
	want := signatureMAC(key.SigningKey, sig.ts, r.Method, target, body)
	var match []byte
	for _, mac := range sig.v1 {
		if hmac.Equal(mac, want) {
			match = mac
		}
	}
	if match == nil {
		return newError(payout.CodeSignatureInvalid, "the signature does not match the request; sign t.METHOD.path.body with the key's signing key")
	}
	err = s.apiKeys.RecordSignature(ctx, key.ID, match, at.Add(SignatureTolerance))
	if errors.Is(err, payout.ErrSignatureSeen) {
		return newError(payout.CodeSignatureReplayed, "this signature was used before; sign each request anew")
	}
	if err != nil {
		return err
	}
	s.pruneSignatures(ctx, now)
	return nil
}

// signedBody reads the body (at most MaxBodyBytes) and puts it back.
func signedBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > MaxBodyBytes {
		return nil, tooLarge()
	}
	body, err := readAll(io.LimitReader(r.Body, MaxBodyBytes+1), r.ContentLength)
	if err != nil {
		return nil, newError(payout.CodeMalformedJSON, "the body could not be read")
	}
	if len(body) > MaxBodyBytes {
		return nil, tooLarge()
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}

// pruneSignatures forgets expired signatures, at most once a minute per
// instance, so the table holds about ten minutes of signed requests.
func (s *Server) pruneSignatures(ctx context.Context, now time.Time) {
	s.pruneMu.Lock()
	due := now.Sub(s.lastPrune) >= time.Minute
	if due {
		s.lastPrune = now
	}
	s.pruneMu.Unlock()
	if !due {
		return
	}
	if n, err := s.apiKeys.DeleteSignaturesBefore(ctx, now); err != nil {
		s.log.WarnContext(ctx, "pruning request signatures failed", "err", err)
	} else if n > 0 {
		s.log.DebugContext(ctx, "pruned request signatures", "count", n)
	}
}
