package httpapi

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluicepay/sluice/internal/payout"
)

// VersionHeader chooses the API version of a request and names the one
// used in every /v1 answer.
const VersionHeader = "Sluice-Version"

// apiVersion is one dated version of the /v1 API.
type apiVersion struct {
	Name string // a date, e.g. "2026-11-01"
	// Downgrade turns an answer in the next newer version's shape into
	// this version's shape; nil when the two are the same. route is the
	// request's pattern, e.g. "GET /v1/payouts/{id}".
	Downgrade func(route string, status int, body []byte) []byte
}

// apiVersions are the versions, oldest first; the last is current, and new
// API keys are pinned to it. This is the one list: a new version is added
// here with a Downgrade on the version before it. Changes that need no new
// version are listed in api/openapi.yaml (info.description, "Versions").
var apiVersions = []apiVersion{
	{Name: "2026-11-01"},
}

// CurrentVersion is the version new API keys are pinned to.
func CurrentVersion() string { return apiVersions[len(apiVersions)-1].Name }

func versionIndex(vs []apiVersion, v string) int {
	for i := range vs {
		if vs[i].Name == v {
			return i
		}
	}
	return -1
}

func versionNames(vs []apiVersion) string {
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = v.Name
	}
	return strings.Join(names, ", ")
}

// chooseVersion picks the version of a request: its Sluice-Version header
// when sent, else the key's pinned version, else the current one. It
// returns the version's index, or an invalid_api_version error.
func (s *Server) chooseVersion(r *http.Request, pinned string) (int, error) {
	v, sent := r.Header.Get(VersionHeader), true
	if v == "" {
		v, sent = pinned, false
	}
	if v == "" {
		return len(s.versions) - 1, nil
	}
	i := versionIndex(s.versions, v)
	if i < 0 {
		if !sent { // a key pinned to a version this server no longer speaks
			return len(s.versions) - 1, nil
		}
		return -1, newError(payout.CodeInvalidAPIVersion, "%s %q is not a known version; known versions: %s",
			VersionHeader, truncate(v, 32), versionNames(s.versions))
	}
	return i, nil
}

// downgrading wraps w so that the answer, written in the current shape,
// reaches the client in the shape of version i. It returns nil when
// version i needs no change (the usual case), so that nothing is buffered.
func (s *Server) downgrading(w http.ResponseWriter, i int) *versionWriter {
	for j := i; j < len(s.versions)-1; j++ {
		if s.versions[j].Downgrade != nil {
			return &versionWriter{ResponseWriter: w, versions: s.versions[i : len(s.versions)-1]}
		}
	}
	return nil
}

// versionWriter buffers an answer and downgrades it when the handler is done.
type versionWriter struct {
	http.ResponseWriter
	versions []apiVersion // the versions whose Downgrade applies, oldest first
	status   int
	body     bytes.Buffer
}

func (w *versionWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *versionWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer. A streaming
// answer (Server-Sent Events) cannot be downgraded after the fact: a
// version that changes one downgrades it in its handler instead.
func (w *versionWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish applies the downgrades, newest first, and writes the answer.
func (w *versionWriter) finish(route string) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	body := w.body.Bytes()
	for j := len(w.versions) - 1; j >= 0; j-- {
		if d := w.versions[j].Downgrade; d != nil {
			body = d(route, w.status, body)
		}
	}
	if w.Header().Get("Content-Length") != "" {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.ResponseWriter.WriteHeader(w.status)
	_, _ = w.ResponseWriter.Write(body)
}
