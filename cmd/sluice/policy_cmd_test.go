package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const cliPolicy = `version: 1
rules:
  - name: big
    when: amount > units("5000000000000000000")
    action: deny
  - name: busy
    when: velocity.count("destination", "24h") >= 3
    action: require_approval
    approvals: {quorum: 2, group: treasury}
  - name: rest
    when: "true"
    action: allow
default: deny
`

func writePolicyFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyCommands(t *testing.T) {
	t.Parallel()
	e := newControlEnv(t)
	good := writePolicyFile(t, "policy.yaml", cliPolicy)
	code, out, errOut := e.sluice(false, "policy", "check", good)
	if code != 0 || !strings.Contains(out, "ok, 3 rule(s); velocity read: destination/24h") {
		t.Fatalf("policy check: %d %q %q", code, out, errOut)
	}
	bad := writePolicyFile(t, "bad.yaml", strings.Replace(cliPolicy, `>= 3`, `>= "3"`, 1))
	if code, _, errOut = e.sluice(false, "policy", "check", bad); code != 1 || !strings.Contains(errOut, `rule 2 "busy": when:`) {
		t.Fatalf("policy check of a bad file: %d %q, want exit 1 naming rule busy", code, errOut)
	}

	// test: local, with the facts given.
	to := "0x2222222222222222222222222222222222222222"
	payout := `{"chain":"sandbox","asset":"ETH","decimals":18,"to":"` + to + `","amount":"1000000000000000000","velocity":{"destination/24h":{"sum":"3","count":3}}}`
	code, out, errOut = e.sluice(false, "policy", "test", good, "--payout", payout)
	if code != 0 || !strings.Contains(out, "Decision: require_approval (approval_required)") || !strings.Contains(out, " 2. busy") {
		t.Fatalf("policy test: %d %q %q", code, out, errOut)
	}
	code, out, _ = e.sluice(false, "policy", "test", good, "--json", "--payout",
		`{"chain":"sandbox","asset":"ETH","to":"`+to+`","amount":"1","lists":[{"name":"ofac","kind":"deny","sanctions":true}]}`)
	var got struct {
		Decision struct{ Action, Code string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Decision.Code != "sanctioned_destination" {
		t.Fatalf("policy test of a sanctioned destination: %d %s", code, out)
	}
	if code, _, errOut = e.sluice(false, "policy", "test", good, "--payout", `{"amount":"x"}`); code != 2 {
		t.Fatalf("policy test with a bad payout: %d %q, want usage", code, errOut)
	}

	// lists import: the SDN fixture, then a plain file that replaces it.
	sdn, err := filepath.Abs("../../internal/policy/testdata/sdn_sample.xml")
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut = e.sluice(true, "lists", "import", "--name", "ofac", "--kind", "deny", sdn)
	if code != 0 || !strings.Contains(out, `Created deny list "ofac": 3 address(es), 3 added, 0 removed (OFAC SDN; 2 non-EVM address(es) skipped)`) {
		t.Fatalf("lists import sdn: %d %q %q", code, out, errOut)
	}
	plain := writePolicyFile(t, "ofac.txt", "0x1111111111111111111111111111111111111111\n0x3333333333333333333333333333333333333333 # new\n")
	code, out, errOut = e.sluice(true, "lists", "import", "--name", "ofac", "--kind", "deny", plain)
	if code != 0 || !strings.Contains(out, "2 address(es), 1 added, 2 removed") || !strings.Contains(out, "+ 0x3333333333333333333333333333333333333333") {
		t.Fatalf("lists import plain: %d %q %q", code, out, errOut)
	}
	if code, out, _ = e.sluice(true, "lists", "list"); code != 0 || !strings.Contains(out, "ofac") || !strings.Contains(out, "true") {
		t.Fatalf("lists list: %d %q", code, out)
	}

	// apply, then the API refuses a payout to a sanctioned address.
	if code, out, errOut = e.sluice(true, "policy", "apply", good); code != 0 || !strings.Contains(out, "Policy version 1 is active") {
		t.Fatalf("policy apply: %d %q %q", code, out, errOut)
	}
	if code, out, _ = e.sluice(true, "policy", "get"); code != 0 || !strings.Contains(out, "name: busy") {
		t.Fatalf("policy get: %d %q", code, out)
	}
	if code, out, _ = e.sluice(true, "policy", "versions"); code != 0 || !strings.Contains(out, "1        true") {
		t.Fatalf("policy versions: %d %q", code, out)
	}
	code, _, errOut = e.sluice(true, "payout", "create", "--chain", "sandbox", "--asset", "ETH", "--to",
		"0x3333333333333333333333333333333333333333", "--amount", "1", "--base-units")
	if code != 1 || !strings.Contains(errOut, "sanctioned_destination") {
		t.Fatalf("payout to a sanctioned address: %d %q, want sanctioned_destination", code, errOut)
	}
	if code, _, errOut = e.sluice(true, "policy", "apply", bad); code != 1 || !strings.Contains(errOut, "busy") {
		t.Fatalf("policy apply of a bad file: %d %q", code, errOut)
	}
}
