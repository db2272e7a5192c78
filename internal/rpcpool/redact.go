package rpcpool

import (
	"net/url"
	"strings"
)

// keyLen is the length from which a path segment or query value is taken
// for a provider key (Infura, Alchemy and QuickNode keys are 32 or more).
const keyLen = 16

// RedactURL returns raw with what may be a credential replaced: user info,
// every query value, and path segments long enough to be a provider key.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable url>"
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	segs := strings.Split(u.Path, "/")
	for i, s := range segs {
		if len(s) >= keyLen {
			segs[i] = "redacted"
		}
	}
	u.Path, u.RawPath = strings.Join(segs, "/"), ""
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"redacted"}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// scrubbed is an error whose message had a secret taken out; it still
// unwraps to the original for errors.Is and errors.As.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// scrub hides the upstream's URL in err's message (net/http puts the whole
// URL, provider key included, in its errors).
func (u *upstream) scrub(err error) error {
	if err == nil || u.rawURL == u.url || !strings.Contains(err.Error(), u.rawURL) {
		return err
	}
	return &scrubbed{msg: strings.ReplaceAll(err.Error(), u.rawURL, u.url), err: err}
}
