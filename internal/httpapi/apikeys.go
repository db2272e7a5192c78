package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/policy"
)

// Secret prefixes: keys made by an engine on the sandbox or dev chain
// (Config.TestMode) start with sk_test_, others with sk_live_.
const (
	testKeyPrefix = "sk_test_"
	liveKeyPrefix = "sk_live_"
	// displayPrefixLen is how much of a secret lists show: the prefix and
	// four random characters.
	displayPrefixLen = 12
	secretBytes      = 32
)

// apiKeyView is the wire form of an API key. Secret is set only in the
// answer that created the key.
type apiKeyView struct {
	Object         string         `json:"object"`
	ID             string         `json:"id"`
	Name           string         `json:"name"`
	Prefix         string         `json:"prefix"`
	Scopes         []payout.Scope `json:"scopes"`
	APIVersion     string         `json:"api_version"`
	RequireSigning bool           `json:"require_signing"`
	RateLimit      *rateLimitView `json:"rate_limit"`
	// Labels are set when the key is made; policy rules read them as
	// api_key_labels. Always an object.
	Labels     map[string]string `json:"labels"`
	CreatedAt  time.Time         `json:"created_at"`
	LastUsedAt *time.Time        `json:"last_used_at"`
	RevokedAt  *time.Time        `json:"revoked_at"`
	Secret     string            `json:"secret,omitempty"`
}

type rateLimitView struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst"`
}

func viewAPIKey(k *payout.APIKey, labels map[string]string) apiKeyView {
	if labels == nil {
		labels = map[string]string{}
	}
	v := apiKeyView{Object: "api_key", ID: k.ID, Name: k.Name, Prefix: k.Prefix, Scopes: k.Scopes, APIVersion: k.Version,
		RequireSigning: k.RequireSigning, Labels: labels, CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt}
	if k.RateLimit != (payout.RateLimit{}) {
		v.RateLimit = &rateLimitView{PerSecond: k.RateLimit.PerSecond, Burst: k.RateLimit.Burst}
	}
	return v
}

type apiKeyList struct {
	Object  string       `json:"object"`
	Data    []apiKeyView `json:"data"`
	HasMore bool         `json:"has_more"`
	URL     string       `json:"url"`
}

// createAPIKeyBody is the wire form of POST /v1/api_keys.
type createAPIKeyBody struct {
	Name           *string        `json:"name"`
	Scopes         []string       `json:"scopes"`
	APIVersion     string         `json:"api_version"`
	RequireSigning bool           `json:"require_signing"`
	RateLimit      *rateLimitView `json:"rate_limit"`
	// Labels, e.g. {"team": "payroll"}, are fixed when the key is made.
	Labels map[string]string `json:"labels"`
}

// labeledKeyStore is an API key store that keeps labels with its keys
// (the SQL stores do).
type labeledKeyStore interface {
	CreateLabeledAPIKey(ctx context.Context, k *payout.APIKey, labels map[string]string) error
	APIKeyLabels(ctx context.Context, ids ...string) (map[string]map[string]string, error)
}

// keyLabels returns the labels of the keys ids, by id; none when the
// store keeps no labels.
func (s *Server) keyLabels(ctx context.Context, ids ...string) (map[string]map[string]string, error) {
	ls, ok := s.apiKeys.(labeledKeyStore)
	if !ok {
		return map[string]map[string]string{}, nil
	}
	return ls.APIKeyLabels(ctx, ids...)
}

// maxRate bounds a key's own rate limit.
const maxRate = 1_000_000

// createAPIKey handles POST /v1/api_keys: a new random key, answered once
// with its secret; only its SHA-256 (and, for a signing key, its HMAC key)
// is stored.
func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request) {
	if s.apiKeys == nil {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server keeps no API keys in a database"))
		return
	}
	k, labels, err := s.decodeAPIKey(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ls, labeled := s.apiKeys.(labeledKeyStore)
	if len(labels) > 0 && !labeled {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server's key store keeps no labels"))
		return
	}
	secret, err := newSecret(s.testMode)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	k.ID, k.Hash, k.Prefix, k.CreatedAt = s.ids.New("key_", s.now()), HashAPIKey(secret), secret[:displayPrefixLen], s.now()
	if k.RequireSigning {
		k.SigningKey = SigningKey(secret)
	}
	if labeled {
		err = ls.CreateLabeledAPIKey(r.Context(), k, labels)
	} else {
		err = s.apiKeys.CreateAPIKey(r.Context(), k)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "api key created", "request_id", reqInfoFrom(r.Context()).id, "api_key_id", k.ID,
		"name", k.Name, "scopes", k.Scopes, "labels", labels, "require_signing", k.RequireSigning, "by_api_key_id", reqInfoFrom(r.Context()).key.ID)
	v := viewAPIKey(k, labels)
	s.audited(r, payout.AuditAPIKeyCreate, k.ID, v) // before the secret is set: the log never holds it
	v.Secret = secret
	writeJSON(w, "application/json", http.StatusCreated, v)
}

// newSecret returns sk_test_ or sk_live_ and 64 hex digits of crypto/rand.
func newSecret(test bool) (string, error) {
	var b [secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("api key secret: %w", err)
	}
	prefix := liveKeyPrefix
	if test {
		prefix = testKeyPrefix
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

// decodeAPIKey reads and checks a create request, reporting every wrong
// field at once.
func (s *Server) decodeAPIKey(r *http.Request) (*payout.APIKey, map[string]string, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, nil, err
	}
	var in createAPIKeyBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return nil, nil, newError(payout.CodeUnknownField, "unknown field %s; fields are name, scopes, api_version, require_signing, rate_limit, labels", f)
		}
		return nil, nil, newError(payout.CodeMalformedJSON, "the body must be a JSON object with name, scopes and optionally api_version, require_signing, rate_limit, labels: %s", err.Error())
	}
	if dec.More() {
		return nil, nil, newError(payout.CodeMalformedJSON, "the body must hold one JSON object")
	}
	k := &payout.APIKey{Version: in.APIVersion, RequireSigning: in.RequireSigning}
	var ve payout.ValidationError
	bad := func(field string, code payout.Code, format string, args ...any) {
		ve.Errors = append(ve.Errors, &payout.FieldError{Field: field, Code: code, Message: fmt.Sprintf(format, args...)})
	}
	switch {
	case in.Name == nil || strings.TrimSpace(*in.Name) == "":
		bad("name", payout.CodeInvalidRequest, "name is required")
	case utf8.RuneCountInString(*in.Name) > 100 || strings.ContainsFunc(*in.Name, func(c rune) bool { return c < ' ' || c == 0x7f }):
		bad("name", payout.CodeInvalidRequest, "name must be at most 100 printable characters")
	default:
		k.Name = *in.Name
	}
	if len(in.Scopes) == 0 {
		bad("scopes", payout.CodeInvalidScope, "scopes must name at least one of %s", scopeNames())
	}
	for i, name := range in.Scopes {
		sc, err := payout.ParseScope(name)
		if err != nil {
			bad("scopes/"+strconv.Itoa(i), payout.CodeInvalidScope, "scope %q does not exist; scopes are %s", truncate(name, 32), scopeNames())
			continue
		}
		if !containsScope(k.Scopes, sc) {
			k.Scopes = append(k.Scopes, sc)
		}
	}
	if k.Version == "" {
		k.Version = s.versions[len(s.versions)-1].Name
	} else if versionIndex(s.versions, k.Version) < 0 {
		bad("api_version", payout.CodeInvalidAPIVersion, "api_version %q is not a known version; known versions: %s", truncate(k.Version, 32), versionNames(s.versions))
	}
	if rl := in.RateLimit; rl != nil {
		if !(rl.PerSecond > 0 && rl.PerSecond <= maxRate) {
			bad("rate_limit/per_second", payout.CodeInvalidRequest, "rate_limit.per_second must be above 0 and at most %d", maxRate)
		}
		if rl.Burst < 1 || rl.Burst > maxRate {
			bad("rate_limit/burst", payout.CodeInvalidRequest, "rate_limit.burst must be from 1 to %d", maxRate)
		}
		k.RateLimit = payout.RateLimit{PerSecond: rl.PerSecond, Burst: rl.Burst}
	}
	if len(in.Labels) > policy.MaxLabels {
		bad("labels", payout.CodeInvalidRequest, "labels: %d given, at most %d", len(in.Labels), policy.MaxLabels)
	}
	for _, name := range slices.Sorted(maps.Keys(in.Labels)) {
		if err := policy.ValidateLabel(name, in.Labels[name]); err != nil {
			bad("labels/"+truncate(name, 64), payout.CodeInvalidRequest, "%s", err.Error())
		}
	}
	if len(ve.Errors) > 0 {
		return nil, nil, &ve
	}
	return k, in.Labels, nil
}

func scopeNames() string {
	names := make([]string, len(payout.Scopes))
	for i, s := range payout.Scopes {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

func containsScope(scopes []payout.Scope, s payout.Scope) bool {
	for _, x := range scopes {
		if x == s {
			return true
		}
	}
	return false
}

// listAPIKeys handles GET /v1/api_keys: the database's keys, newest first,
// without secrets or hashes. Keys from the config file are not listed.
func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request) {
	if s.apiKeys == nil {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server keeps no API keys in a database"))
		return
	}
	q := r.URL.Query()
	f := payout.APIKeyFilter{StartingAfter: q.Get("starting_after"), Limit: defaultLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			s.fail(w, r, newError(payout.CodeInvalidLimit, "limit must be a whole number from 1 to %d, got %q", maxLimit, truncate(v, 32)))
			return
		}
		f.Limit = n
	}
	if c := f.StartingAfter; c != "" && (!strings.HasPrefix(c, "key_") || len(c) > 64) {
		s.fail(w, r, newError(payout.CodeInvalidCursor, "starting_after must be an API key id (key_…), got %q", truncate(c, 64)))
		return
	}
	ks, more, err := s.apiKeys.ListAPIKeys(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = k.ID
	}
	labels, err := s.keyLabels(r.Context(), ids...)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := apiKeyList{Object: "list", Data: make([]apiKeyView, len(ks)), HasMore: more, URL: "/v1/api_keys"}
	for i, k := range ks {
		out.Data[i] = viewAPIKey(k, labels[k.ID])
	}
	writeJSON(w, "application/json", http.StatusOK, out)
}

// revokeAPIKey handles POST /v1/api_keys/{id}/revoke. The key stops
// working on this instance at once and on others within KeyCacheTTL.
// Revoking the key making the request is allowed; revoking twice answers
// the key as revoked the first time.
func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request) {
	if s.apiKeys == nil {
		s.fail(w, r, newError(payout.CodeUnavailable, "this server keeps no API keys in a database"))
		return
	}
	id := r.PathValue("id")
	k, err := s.apiKeys.RevokeAPIKey(r.Context(), id)
	if errors.Is(err, payout.ErrNotFound) {
		s.fail(w, r, newError(payout.CodeNotFound, "no API key has id %q (keys from the config file are revoked by removing them there)", truncate(id, 64)))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.forgetKey(k.ID)
	labels, err := s.keyLabels(r.Context(), k.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := viewAPIKey(k, labels[k.ID])
	s.audited(r, payout.AuditAPIKeyRevoke, k.ID, v)
	s.log.InfoContext(r.Context(), "api key revoked", "request_id", reqInfoFrom(r.Context()).id, "api_key_id", k.ID,
		"by_api_key_id", reqInfoFrom(r.Context()).key.ID)
	writeJSON(w, "application/json", http.StatusOK, v)
}

// authMetrics count refused requests.
type authMetrics struct {
	failures    *prometheus.CounterVec
	rateLimited prometheus.Counter
}

func newAuthMetrics(reg prometheus.Registerer) (*authMetrics, error) {
	m := &authMetrics{
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_http_auth_failures_total",
			Help: "Requests refused by authentication, rate limiting, versioning or scope, by error code.",
		}, []string{"code"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_http_rate_limited_total",
			Help: "Requests refused 429 rate_limited by a key's token bucket.",
		}),
	}
	for _, c := range []prometheus.Collector{m.failures, m.rateLimited} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// initKeys sets up what auth needs: the key store, the configured keys'
// ids, the versions, the key cache, the rate limiters and their metrics.
// A configured key pinned to an unknown version is refused, naming it.
func (s *Server) initKeys(cfg Config) error {
	s.apiKeys, s.testMode = cfg.APIKeyStore, cfg.TestMode
	if s.apiKeys == nil {
		s.apiKeys, _ = cfg.Store.(payout.APIKeyStore)
	}
	s.versions = append([]apiVersion(nil), apiVersions...)
	s.configKeys = map[string]map[string]string{}
	for i, k := range s.keys {
		if k.Version != "" && versionIndex(s.versions, k.Version) < 0 {
			return fmt.Errorf("httpapi: Config.APIKeys[%d].Version: %q is not a known version; known versions: %s", i, k.Version, versionNames(s.versions))
		}
		labels := map[string]string{}
		for name, v := range k.Labels {
			labels[name] = v
		}
		s.configKeys[k.ID] = labels
	}
	s.cache = keyCache{byHash: map[[32]byte]cachedKey{}, touched: map[string]time.Time{}}
	def := cfg.RateLimit
	if def.PerSecond <= 0 || def.Burst <= 0 {
		def = DefaultRateLimit
	}
	s.limits = limiters{def: def, m: map[string]*rate.Limiter{}}
	m, err := newAuthMetrics(cfg.Registry)
	if err != nil {
		return fmt.Errorf("httpapi: metrics: %w", err)
	}
	s.authMetrics = m
	return nil
}
