package events_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sluicepay/sluice/internal/events"
	"github.com/sluicepay/sluice/internal/payout"
)

// fakeDNS answers every name with the same addresses.
type fakeDNS []netip.Addr

func (f fakeDNS) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) { return f, nil }

func TestCheckURL(t *testing.T) {
	t.Parallel()
	public := fakeDNS{netip.MustParseAddr("93.184.216.34")}
	tests := []struct {
		url     string
		dns     fakeDNS
		private bool
		want    string // substring of the refusal; "" for allowed
	}{
		{url: "https://hooks.example.com/x", dns: public},
		{url: "http://93.184.216.34:8080/x"},
		{url: "https://[2606:2800:220:1:248:1893:25c8:1946]/"},
		{url: "ftp://example.com/", want: `scheme must be http or https, got "ftp"`},
		{url: "example.com/hook", want: "scheme must be http or https"},
		{url: "https://user:pw@example.com/", want: "user name or password"},
		{url: "https:///path", want: "no host"},
		{url: "http://127.0.0.1/", want: "a loopback address"},
		{url: "http://10.1.2.3/", want: "a private address"},
		{url: "http://192.168.1.1/", want: "a private address"},
		{url: "http://172.16.0.1/", want: "a private address"},
		{url: "http://169.254.169.254/latest/meta-data", want: "a link-local address"},
		{url: "http://0.0.0.0/", want: "an unspecified address"},
		{url: "http://239.1.2.3/", want: "a multicast address"},
		{url: "http://100.64.0.1/", want: "a reserved address"},
		{url: "http://[::1]/", want: "a loopback address"},
		{url: "http://[::]/", want: "an unspecified address"},
		{url: "http://[fe80::1]/", want: "a link-local address"},
		{url: "http://[fd00::1]/", want: "a private address"},
		{url: "http://[ff0e::1]/", want: "a multicast address"},
		{url: "http://[::ffff:127.0.0.1]/", want: "a loopback address"},
		{url: "http://[::ffff:10.0.0.1]/", want: "a private address"},
		{url: "https://rebind.example/", dns: fakeDNS{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("10.0.0.7")},
			want: `"rebind.example" resolves to 10.0.0.7, a private address`},
		{url: "https://nowhere.example/", dns: fakeDNS{}, want: `"nowhere.example" does not resolve`},
		{url: "http://127.0.0.1:9000/", private: true},
		{url: "http://localhost:9000/", dns: fakeDNS{netip.MustParseAddr("127.0.0.1")}, private: true},
		{url: "ftp://127.0.0.1/", private: true, want: "scheme"},
	}
	for _, tc := range tests {
		var r events.Resolver = tc.dns
		if tc.dns == nil {
			r = fakeDNS{netip.MustParseAddr("10.9.9.9")} // must not be asked
		}
		err := events.CheckURL(context.Background(), tc.url, tc.private, r)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.url, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err %v, want one saying %q", tc.url, err, tc.want)
		}
	}
}

// TestRefusedAtConnect: an endpoint whose host passed the check when it
// was created but now resolves to a loopback address (DNS rebinding) is
// not connected to.
func TestRefusedAtConnect(t *testing.T) {
	t.Parallel()
	db := openSQLite(t, nil)
	r := newReceiver(t)
	port := r.srv.URL[strings.LastIndex(r.srv.URL, ":"):]
	ep := addEndpoint(t, db, "http://localhost"+port+"/hook") // localhost resolves to 127.0.0.1 / ::1
	d, err := events.New(events.Config{Store: db, Committed: db.Committed, Owner: "x", Logger: quiet, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d.Start(context.Background())
	t.Cleanup(d.Stop)
	appendEvents(t, db, payout.StatusCompleted.EventType(), 1)
	eventually(t, "a refused attempt", func() bool {
		ds, _, _ := db.ListWebhookDeliveries(context.Background(), ep.ID, payout.Page{})
		return len(ds) == 1 && ds[0].Attempts == 1 && strings.Contains(ds[0].LastError, "a loopback address")
	})
	if n := len(r.accepted()); n != 0 {
		t.Errorf("receiver on loopback got %d deliveries", n)
	}
}
