package events_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/events"
	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/store"
)

// nodeReceiver is testdata/receiver.mjs: deliveries verified by the
// standardwebhooks npm package.
type nodeReceiver struct {
	url string
	mu  sync.Mutex
	got []nodeReport
}

type nodeReport struct {
	ID           string  `json:"id"`
	Type         *string `json:"type"`
	Signatures   int     `json:"signatures"`
	VerifiedWith []int   `json:"verified_with"`
	Error        *string `json:"error"`
}

func startNodeReceiver(t *testing.T) *nodeReceiver {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (CI installs it)")
	}
	if _, err := os.Stat("testdata/node_modules/standardwebhooks"); err != nil {
		t.Fatalf("run `npm ci --prefix internal/events/testdata` first: %v", err)
	}
	cmd := exec.Command(node, "receiver.mjs")
	cmd.Dir = "testdata"
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("receiver stderr: %s", stderr.String())
		}
	})
	r := &nodeReceiver{}
	lines := bufio.NewScanner(out)
	if !lines.Scan() {
		t.Fatalf("receiver did not start: %s", stderr.String())
	}
	var hello struct{ Listening int }
	if err := json.Unmarshal(lines.Bytes(), &hello); err != nil || hello.Listening == 0 {
		t.Fatalf("receiver said %q: %v", lines.Text(), err)
	}
	r.url = "http://127.0.0.1:" + strconv.Itoa(hello.Listening)
	go func() {
		for lines.Scan() {
			var rep nodeReport
			if err := json.Unmarshal(lines.Bytes(), &rep); err != nil {
				t.Errorf("receiver line %q: %v", lines.Text(), err)
				continue
			}
			r.mu.Lock()
			r.got = append(r.got, rep)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *nodeReceiver) setSecrets(t *testing.T, secrets ...string) {
	t.Helper()
	b, _ := json.Marshal(secrets)
	resp, err := http.Post(r.url+"/_secrets", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
}

func (r *nodeReceiver) reports() []nodeReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// createPayouts stores n real payouts (payout.created each) and cancels
// every other one (payout.cancelled).
func createPayouts(t *testing.T, db *store.DB, n int) {
	t.Helper()
	ids := &payout.IDGenerator{}
	for i := range n {
		now := time.Now().UTC().Truncate(time.Millisecond)
		p := &payout.Payout{ID: ids.New("po_", now), Status: payout.StatusQueued, Chain: "sandbox", ChainID: 1337,
			Asset: "ETH", To: common.HexToAddress("0xAbC0000000000000000000000000000000000123"), Amount: big.NewInt(int64(1000 + i)),
			Sender: common.HexToAddress("0x5A1cE0000000000000000000000000000000bEEF"), Priority: payout.PriorityStandard,
			Version: 1, CreatedAt: now, UpdatedAt: now}
		if err := db.CreatePayout(context.Background(), p, nil); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			if _, err := db.CancelPayout(context.Background(), p.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestStandardWebhooksVerifiesDeliveries has the standardwebhooks npm
// package verify real deliveries of real payout events, before, during
// (both signatures, each valid) and after a secret rotation.
func TestStandardWebhooksVerifiesDeliveries(t *testing.T) {
	t.Parallel()
	recv := startNodeReceiver(t)
	db := openSQLite(t, nil)
	ep := addEndpoint(t, db, recv.url+"/hooks/sluice")
	recv.setSecrets(t, ep.Secret)
	start(t, events.Config{Store: db, Committed: db.Committed})

	createPayouts(t, db, 10) // 10 created, 5 cancelled
	eventually(t, "15 verified deliveries", func() bool { return len(recv.reports()) >= 15 })

	rotated, err := db.UpdateWebhookEndpoint(context.Background(), ep.ID, func(e *payout.WebhookEndpoint) error {
		e.Rotate(time.Now())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	recv.setSecrets(t, ep.Secret, rotated.Secret)
	createPayouts(t, db, 4) // 4 created, 2 cancelled, during the rotation
	eventually(t, "21 deliveries", func() bool { return len(recv.reports()) >= 21 })

	evs := allEvents(t, db)
	if len(evs) != 21 {
		t.Fatalf("%d events in the outbox, want 21", len(evs))
	}
	byID := map[string]payout.Event{}
	for _, e := range evs {
		byID[e.ID] = e
	}
	reports := recv.reports()
	seen := map[string]bool{}
	for i, rep := range reports {
		ev, ok := byID[rep.ID]
		if !ok || rep.Type == nil || *rep.Type != ev.Type {
			t.Errorf("report %d: %+v is not an outbox event's", i, rep)
			continue
		}
		seen[rep.ID] = true
		want := []int{0}
		if i >= 15 {
			// During the rotation: two signatures, each verified by
			// standardwebhooks with its own secret.
			want = []int{0, 1}
			if rep.Signatures != 2 {
				t.Errorf("delivery %s during the rotation has %d signatures, want 2", rep.ID, rep.Signatures)
			}
		}
		if !slices.Equal(rep.VerifiedWith, want) {
			t.Errorf("delivery %s (%s): verified with secrets %v, want %v; error %v", rep.ID, ev.Type, rep.VerifiedWith, want, rep.Error)
		}
	}
	if len(seen) != len(evs) {
		t.Errorf("%d distinct events verified, want %d", len(seen), len(evs))
	}
	t.Logf("standardwebhooks verified %d deliveries (%d during a rotation, with both signatures)", len(reports), len(reports)-15)
}
