package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sluicepay/sluice/internal/evm"
)

// rpcClient calls one upstream directly, with its configured headers.
type rpcClient struct {
	http    *http.Client
	url     string // the real URL; never shown
	shown   string // redacted
	headers map[string]string
}

// httpError is an answer that was not HTTP 200.
type httpError struct {
	code       int
	retryAfter string
}

func (e *httpError) Error() string {
	if e.retryAfter != "" {
		return fmt.Sprintf("HTTP %d (Retry-After %s)", e.code, e.retryAfter)
	}
	return fmt.Sprintf("HTTP %d", e.code)
}

// rpcError is a JSON-RPC error object.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *rpcError) Error() string { return fmt.Sprintf("rpc error %d: %s", e.Code, e.Message) }

// call sends one JSON-RPC request and decodes its result, returning how
// long the round trip took.
func (c *rpcClient) call(ctx context.Context, result any, method string, params ...any) (time.Duration, error) {
	if params == nil {
		params = []any{}
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("bad url")
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, c.scrub(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	took := time.Since(start)
	if err != nil {
		return took, c.scrub(err)
	}
	if resp.StatusCode != http.StatusOK {
		return took, &httpError{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	}
	var msg struct {
		Result json.RawMessage `json:"result"`
		Error  *rpcError       `json:"error"`
	}
	if err := json.Unmarshal(b, &msg); err != nil {
		return took, fmt.Errorf("%s: malformed answer: %w", method, err)
	}
	if msg.Error != nil {
		return took, msg.Error
	}
	if err := json.Unmarshal(msg.Result, result); err != nil {
		return took, fmt.Errorf("%s: malformed result: %w", method, err)
	}
	return took, nil
}

// scrub hides the real URL (net/http puts it, key included, in its errors).
func (c *rpcClient) scrub(err error) error {
	if err == nil || !strings.Contains(err.Error(), c.url) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), c.url, c.shown))
}

// rateLimited reports whether err is a rate-limit answer: HTTP 429 or a
// provider's message saying so.
func rateLimited(err error) bool {
	var he *httpError
	if errors.As(err, &he) {
		return he.code == http.StatusTooManyRequests
	}
	kind, _ := evm.Classify(err)
	return kind == evm.KindRateLimited
}
