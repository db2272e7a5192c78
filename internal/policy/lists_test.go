package policy_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicepay/sluice/internal/policy"
)

func TestReadListSDN(t *testing.T) {
	f, err := os.Open("testdata/sdn_sample.xml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := policy.ReadList(f)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, e := range got.Entries {
		addrs = append(addrs, e.Address.Hex()+" "+e.Note)
	}
	want := []string{
		"0x1111111111111111111111111111111111111111 sdn 90001",
		"0x2222222222222222222222222222222222222222 sdn 90002",
		"0xABCDEfaBcDefaBCdEFaBcdEfAbcdEfABcdeF0003 sdn 90002",
	}
	if diff := cmp.Diff(want, addrs); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if !got.SDN || got.Skipped != 2 {
		t.Errorf("SDN %v, skipped %d; want true, 2 (the XBT and the TRON address)", got.SDN, got.Skipped)
	}
}

func TestReadListPlain(t *testing.T) {
	b, err := os.ReadFile("testdata/plain.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, err := policy.ReadList(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Entries) != 2 || got.SDN {
		t.Fatalf("ReadList(plain) = %+v, want 2 unique addresses, not SDN", got)
	}
	_, err = policy.ReadList(strings.NewReader("0x4444444444444444444444444444444444444444\nnot-an-address\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("ReadList(bad line) = %v, want an error naming line 2", err)
	}
	if _, err := policy.ReadList(strings.NewReader("<html><body>not sdn</body></html>")); err == nil {
		t.Fatal("ReadList(html) succeeded, want an error")
	}
}

// FuzzReadList: any input parses or fails cleanly, and every entry is a
// unique 20-byte address.
func FuzzReadList(f *testing.F) {
	for _, name := range []string{"testdata/sdn_sample.xml", "testdata/plain.txt"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("<Sanctions><FeatureType ID=\"1\">Digital Currency Address - ETH</FeatureType><Feature FeatureTypeID=\"1\"><VersionDetail>0x1111111111111111111111111111111111111111</VersionDetail></Feature></Sanctions>"))
	f.Add([]byte("\xef\xbb\xbf  # only a comment\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := policy.ReadList(bytes.NewReader(b))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, e := range got.Entries {
			if seen[e.Address.Hex()] {
				t.Fatalf("address %s listed twice", e.Address.Hex())
			}
			seen[e.Address.Hex()] = true
		}
	})
}
