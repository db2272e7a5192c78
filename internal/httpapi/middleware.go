package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// reqInfo travels with a request: its id and, once authenticated, its key.
// It is one pointer in the context, filled in place, so that the
// middleware adds a single context value per request.
type reqInfo struct {
	id  string
	key *APIKey
}

type reqInfoKey struct{}

func reqInfoFrom(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

// maxRequestIDLen bounds an incoming Request-Id we are willing to reuse.
const maxRequestIDLen = 128

// saneRequestID reports whether an incoming Request-Id may be reused in
// our logs and answers: short, and only letters, digits and -_.:
func saneRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == ':'
		if !ok {
			return false
		}
	}
	return true
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe gives every request an id (echoed in the Request-Id header),
// turns panics into 500 problems, and records metrics and a log line.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &reqInfo{id: r.Header.Get("Request-Id")}
		if !saneRequestID(ri.id) {
			ri.id = s.reqIDs.New("req_", start)
		}
		w.Header().Set("Request-Id", ri.id)
		r = r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri))
		sw := &statusWriter{ResponseWriter: w}
		s.metrics.inFlight.Inc()
		defer func() {
			s.metrics.inFlight.Dec()
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.fail(sw, r, fmt.Errorf("panic: %v", v))
			}
			s.record(r, ri, sw.status, time.Since(start))
		}()
		next.ServeHTTP(sw, r)
	})
}

// record counts a finished request and logs it.
func (s *Server) record(r *http.Request, ri *reqInfo, status int, took time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	route := r.Pattern // set by the mux on this very request, e.g. "GET /v1/payouts/{id}"
	if i := strings.IndexByte(route, ' '); i >= 0 {
		route = route[i+1:]
	}
	if route == "" {
		route = "unmatched"
	}
	s.metrics.observe(route, r.Method, status, took)
	ctx := r.Context()
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", ri.id), slog.String("method", r.Method), slog.String("route", route),
		slog.Int("status", status), slog.Float64("duration_ms", float64(took.Microseconds())/1000),
	}
	if ri.key != nil {
		attrs = append(attrs, slog.String("api_key_id", ri.key.ID))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
}
