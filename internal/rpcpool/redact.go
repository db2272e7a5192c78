package rpcpool

import (
	"errors"
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

// redactErr hides the URL inside a transport error (net/http puts the
// whole URL, provider key included, in its message). It changes err in
// place: each attempt's error is its own.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = RedactURL(ue.URL)
	}
	return err
}
