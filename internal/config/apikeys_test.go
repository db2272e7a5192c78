package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestAPIKeyScopesAndRateLimits(t *testing.T) {
	c, err := Parse([]byte(minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.APIKeys[0].Scopes) != "[admin]" || c.RateLimit != (RateLimit{PerSecond: 100, Burst: 200}) || c.TestMode {
		t.Errorf("defaults: scopes %v, rate_limit %+v, test_mode %v; want [admin], 100/200, false", c.APIKeys[0].Scopes, c.RateLimit, c.TestMode)
	}
	withKey := strings.Replace(minimal, "  - name: a\n", "  - name: a\n    scopes: [payouts:read, webhooks:manage]\n    rate_limit: {per_second: 2.5, burst: 5}\n", 1) +
		"rate_limit: {per_second: 10, burst: 20}\ntest_mode: true\n"
	c, err = Parse([]byte(withKey), nil)
	if err != nil {
		t.Fatal(err)
	}
	k := c.APIKeys[0]
	if fmt.Sprint(k.Scopes) != "[payouts:read webhooks:manage]" || k.RateLimit != (RateLimit{2.5, 5}) || c.RateLimit != (RateLimit{10, 20}) || !c.TestMode {
		t.Errorf("parsed key %+v, rate_limit %+v, test_mode %v", k, c.RateLimit, c.TestMode)
	}
	for _, tc := range []struct{ yaml, want string }{
		{strings.Replace(withKey, "webhooks:manage", "payouts:delete", 1), `api_keys[0].scopes[1]: unknown scope "payouts:delete"`},
		{strings.Replace(withKey, "per_second: 2.5", "per_second: 0", 1), "api_keys[0].rate_limit.per_second"},
		{strings.Replace(withKey, "burst: 20", "burst: 0", 1), "rate_limit.burst: 0 must be from 1"},
	} {
		if _, err := Parse([]byte(tc.yaml), nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want it to name %q", err, tc.want)
		}
	}
}
