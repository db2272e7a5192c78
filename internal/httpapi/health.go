package httpapi

import (
	"context"
	"errors"
	"github.com/sluicepay/sluice/api"
	"net/http"
	"sync"
	"time"
)

// readyTimeout bounds each readiness check.
const readyTimeout = 3 * time.Second

// healthz answers 200 while the process serves HTTP at all.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, "application/json", http.StatusOK, map[string]string{"status": "ok", "version": s.version})
}

// checkResult is one readiness check's outcome. The error's text is
// logged, not sent: /readyz needs no key and upstream errors may quote
// URLs that carry credentials.
type checkResult struct {
	Status     string  `json:"status"` // "ok" or "fail"
	Error      string  `json:"error,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

type readiness struct {
	Status  string                 `json:"status"` // "ready" or "not_ready"
	Version string                 `json:"version"`
	Checks  map[string]checkResult `json:"checks"`
}

// readyz runs every check at once and answers 200 when all pass, else 503.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	out := readiness{Status: "ready", Version: s.version, Checks: make(map[string]checkResult, len(s.ready))}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for name, check := range s.ready {
		wg.Go(func() {
			res := s.runCheck(r.Context(), name, check)
			mu.Lock()
			defer mu.Unlock()
			out.Checks[name] = res
			if res.Status != "ok" {
				out.Status = "not_ready"
			}
		})
	}
	wg.Wait()
	status := http.StatusOK
	if out.Status != "ready" {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, "application/json", status, out)
}

func (s *Server) runCheck(ctx context.Context, name string, check func(context.Context) error) checkResult {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	start := time.Now()
	err := check(ctx)
	res := checkResult{Status: "ok", DurationMS: float64(time.Since(start).Microseconds()) / 1000}
	if err != nil {
		res.Status, res.Error = "fail", "check failed; see the server log"
		if errors.Is(err, context.DeadlineExceeded) {
			res.Error = "timed out"
		}
		s.log.WarnContext(ctx, "readiness check failed", "check", name,
			"request_id", reqInfoFrom(ctx).id, "err", err)
	}
	return res
}

// serveOpenAPI handles GET /v1/openapi.yaml: the API's contract.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	writeBody(w, "application/yaml", http.StatusOK, api.OpenAPI)
}
