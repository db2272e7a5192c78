package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
	"github.com/sluicepay/sluice/internal/policy"
)

// PolicyChangeStore keeps policy versions that wait for an approval quorum.
type PolicyChangeStore interface {
	payout.PolicyStore
	payout.AuditStore
	ProposePolicy(ctx context.Context, v *payout.PolicyVersion, quorum int) error
	DecidePolicy(ctx context.Context, version int64, a policy.ChangeApproval, maxAge time.Duration) (*payout.PolicyVersion, *policy.Change, error)
	ExpirePolicyChanges(ctx context.Context, maxAge time.Duration) ([]int64, error)
	PolicyChanges(ctx context.Context, versions ...int64) (map[int64]*policy.Change, error)
}

// RunPolicyChanges runs the conformance suite of policy changes that need
// approvals. open must return a new, empty store each time.
func RunPolicyChanges(t *testing.T, open func(t *testing.T) PolicyChangeStore) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s PolicyChangeStore)
	}{
		{"ActiveFollowsEverySave", testActiveFollowsEverySave},
		{"Quorum", testPolicyQuorum},
		{"RejectAndSupersede", testPolicyRejectSupersede},
		{"Concurrent", testPolicyConcurrent},
		{"Expiry", testPolicyExpiry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func approve(key string) policy.ChangeApproval {
	return policy.ChangeApproval{ApproverKeyID: key, ApproverName: "name-" + key, Decision: "approve"}
}

func policyActions(t *testing.T, s payout.AuditStore) []string {
	t.Helper()
	es, _, err := s.ListAudit(ctx(t), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Actor+" "+e.Action+" "+e.Object)
	}
	return out
}

func activeVersion(t *testing.T, s payout.PolicyStore) int64 {
	t.Helper()
	v, err := s.ActivePolicy(ctx(t))
	if errors.Is(err, payout.ErrNoPolicy) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return v.Version
}

// testActiveFollowsEverySave reads the active version after every save: a
// store that keeps the answer must let each save end it.
func testActiveFollowsEverySave(t *testing.T, s PolicyChangeStore) {
	steps := []struct {
		activate bool
		want     int64
	}{{true, 1}, {false, 1}, {true, 3}, {true, 4}}
	if got := activeVersion(t, s); got != 0 {
		t.Fatalf("active version %d before any save, want none", got)
	}
	for i, st := range steps {
		v := &payout.PolicyVersion{Document: fmt.Sprintf("version: 1 # %d\n", i), CreatedBy: "key_admin"}
		if err := s.SavePolicy(ctx(t), v, st.activate); err != nil {
			t.Fatal(err)
		}
		if got := activeVersion(t, s); got != st.want {
			t.Fatalf("after saving version %d (activate %v): active version %d, want %d", v.Version, st.activate, got, st.want)
		}
	}
}

func testPolicyQuorum(t *testing.T, s PolicyChangeStore) {
	v1 := &payout.PolicyVersion{Document: "version: 1 # one\n", CreatedBy: "key_admin"}
	if err := s.SavePolicy(ctx(t), v1, true); err != nil {
		t.Fatal(err)
	}
	v2 := &payout.PolicyVersion{Document: "version: 1 # two\n", CreatedBy: "key_proposer"}
	if err := s.ProposePolicy(ctx(t), v2, 2); err != nil {
		t.Fatal(err)
	}
	if v2.Version != 2 || v2.Active || activeVersion(t, s) != 1 {
		t.Fatalf("proposed %+v; active %d; want version 2 pending and 1 active", v2, activeVersion(t, s))
	}
	if _, _, err := s.DecidePolicy(ctx(t), 2, approve("key_proposer"), 0); !errors.Is(err, payout.ErrSelfApproval) {
		t.Fatalf("the proposer approves: %v, want ErrSelfApproval", err)
	}
	v, ch, err := s.DecidePolicy(ctx(t), 2, approve("key_a"), 0)
	if err != nil || v.Active || ch.Status != policy.StatusPending || ch.Approved() != 1 || activeVersion(t, s) != 1 {
		t.Fatalf("first approval = %+v, %+v, %v; want still pending, version 1 active", v, ch, err)
	}
	if _, _, err := s.DecidePolicy(ctx(t), 2, approve("key_a"), 0); !errors.Is(err, payout.ErrAlreadyDecided) {
		t.Fatalf("the same approver twice: %v, want ErrAlreadyDecided", err)
	}
	v, ch, err = s.DecidePolicy(ctx(t), 2, approve("key_b"), 0)
	if err != nil || !v.Active || ch.Status != policy.StatusApplied || ch.Approved() != 2 || activeVersion(t, s) != 2 {
		t.Fatalf("quorum approval = %+v, %+v, %v; want version 2 active", v, ch, err)
	}
	if _, _, err := s.DecidePolicy(ctx(t), 2, approve("key_c"), 0); !errors.Is(err, policy.ErrNotPending) {
		t.Fatalf("approving an applied version: %v, want ErrNotPending", err)
	}
	if _, _, err := s.DecidePolicy(ctx(t), 9, approve("key_c"), 0); !errors.Is(err, payout.ErrNotFound) {
		t.Fatalf("approving an unknown version: %v, want ErrNotFound", err)
	}
	want := []string{
		"key_admin policy.apply policy_v1",
		"key_proposer policy.propose policy_v2",
		"key_a policy.approve policy_v2",
		"key_b policy.approve policy_v2",
		"key_b policy.apply policy_v2",
	}
	if got := policyActions(t, s); !slices.Equal(got, want) {
		t.Errorf("audit = %q, want %q", got, want)
	}
	cs, err := s.PolicyChanges(ctx(t))
	if err != nil || len(cs) != 2 || cs[1].Status != policy.StatusApplied || cs[1].Quorum != 0 ||
		cs[2].Quorum != 2 || len(cs[2].Approvals) != 2 || cs[2].Approvals[0].ApproverKeyID != "key_a" {
		t.Fatalf("PolicyChanges = %+v, %v", cs, err)
	}
}

func testPolicyRejectSupersede(t *testing.T, s PolicyChangeStore) {
	for i, doc := range []string{"version: 1 # a\n", "version: 1 # b\n"} {
		if err := s.ProposePolicy(ctx(t), &payout.PolicyVersion{Document: doc, CreatedBy: "key_p"}, 1); err != nil {
			t.Fatalf("propose %d: %v", i, err)
		}
	}
	cs, err := s.PolicyChanges(ctx(t), 1, 2)
	if err != nil || cs[1].Status != policy.StatusSuperseded || cs[2].Status != policy.StatusPending {
		t.Fatalf("after a second proposal: %+v, %v; want 1 superseded, 2 pending", cs, err)
	}
	if _, _, err := s.DecidePolicy(ctx(t), 1, approve("key_a"), 0); !errors.Is(err, policy.ErrNotPending) {
		t.Fatalf("approving a superseded version: %v, want ErrNotPending", err)
	}
	noReason := policy.ChangeApproval{ApproverKeyID: "key_a", ApproverName: "a", Decision: "reject"}
	if _, _, err := s.DecidePolicy(ctx(t), 2, noReason, 0); err == nil {
		t.Fatal("a rejection without a reason was recorded")
	}
	// The proposer may withdraw (reject) its own proposal.
	rej := policy.ChangeApproval{ApproverKeyID: "key_p", ApproverName: "p", Decision: "reject", Reason: "typo"}
	if _, ch, err := s.DecidePolicy(ctx(t), 2, rej, 0); err != nil || ch.Status != policy.StatusRejected {
		t.Fatalf("reject = %+v, %v", ch, err)
	}
	if activeVersion(t, s) != 0 {
		t.Fatal("a rejected proposal became active")
	}
	// Applying at once supersedes what waits.
	if err := s.ProposePolicy(ctx(t), &payout.PolicyVersion{Document: "version: 1 # c\n", CreatedBy: "key_p"}, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.SavePolicy(ctx(t), &payout.PolicyVersion{Document: "version: 1 # d\n", CreatedBy: "key_admin"}, true); err != nil {
		t.Fatal(err)
	}
	if cs, _ := s.PolicyChanges(ctx(t), 3); cs[3].Status != policy.StatusSuperseded || activeVersion(t, s) != 4 {
		t.Fatalf("after a direct apply: %+v, active %d; want 3 superseded, 4 active", cs[3], activeVersion(t, s))
	}
	got := policyActions(t, s)
	for _, want := range []string{"key_p policy.supersede policy_v1", "key_p policy.reject policy_v2", "key_admin policy.supersede policy_v3"} {
		if !slices.Contains(got, want) {
			t.Errorf("audit %q lacks %q", got, want)
		}
	}
}

// Approvers racing: the version is applied once, every approval recorded
// once.
func testPolicyConcurrent(t *testing.T, s PolicyChangeStore) {
	if err := s.ProposePolicy(ctx(t), &payout.PolicyVersion{Document: "version: 1\n", CreatedBy: "key_p"}, 3); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = s.DecidePolicy(context.Background(), 1, approve([]string{"key_a", "key_b", "key_c"}[i%3]), 0)
		}()
	}
	wg.Wait()
	var ok, dup, notPending int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, payout.ErrAlreadyDecided):
			dup++
		case errors.Is(err, policy.ErrNotPending):
			notPending++
		default:
			t.Errorf("DecidePolicy: %v", err)
		}
	}
	if ok != 3 || dup+notPending != 3 || activeVersion(t, s) != 1 {
		t.Fatalf("%d recorded, %d already decided, %d not pending; active %d; want 3 recorded and version 1 active", ok, dup, notPending, activeVersion(t, s))
	}
	applies := 0
	for _, a := range policyActions(t, s) {
		if a == "key_a policy.apply policy_v1" || a == "key_b policy.apply policy_v1" || a == "key_c policy.apply policy_v1" {
			applies++
		}
	}
	if applies != 1 {
		t.Errorf("%d policy.apply entries, want 1", applies)
	}
}

// testPolicyExpiry: a version that waited longer than the approvals'
// expiry is expired, not decided, when someone approves it, or by the
// sweep; either way it is audited and never becomes active.
func testPolicyExpiry(t *testing.T, s PolicyChangeStore) {
	if err := s.ProposePolicy(ctx(t), &payout.PolicyVersion{Document: "version: 1 # old\n", CreatedBy: "key_p"}, 1); err != nil {
		t.Fatal(err)
	}
	// A version younger than maxAge is decided as usual: here, approved.
	if _, ch, err := s.DecidePolicy(ctx(t), 1, approve("key_z"), time.Hour); err != nil || ch.Status != policy.StatusApplied {
		t.Fatalf("approving a fresh version with an hour's expiry: %+v, %v; want it applied", ch, err)
	}
	if err := s.ProposePolicy(ctx(t), &payout.PolicyVersion{Document: "version: 1 # waits\n", CreatedBy: "key_p"}, 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // it has waited longer than a millisecond now
	_, ch, err := s.DecidePolicy(ctx(t), 2, approve("key_a"), time.Millisecond)
	if !errors.Is(err, policy.ErrChangeExpired) || ch == nil || ch.Status != policy.StatusExpired || ch.Approved() != 0 {
		t.Fatalf("approving an expired version = %+v, %v; want it expired with no approval", ch, err)
	}
	if _, _, err := s.DecidePolicy(ctx(t), 2, approve("key_b"), 0); !errors.Is(err, policy.ErrNotPending) {
		t.Fatalf("approving it again: %v, want ErrNotPending", err)
	}
	if err := s.ProposePolicy(ctx(t), &payout.PolicyVersion{Document: "version: 1 # swept\n", CreatedBy: "key_p"}, 1); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ExpirePolicyChanges(ctx(t), time.Hour); err != nil || len(got) != 0 {
		t.Fatalf("sweep with nothing old enough = %v, %v", got, err)
	}
	time.Sleep(5 * time.Millisecond)
	if got, err := s.ExpirePolicyChanges(ctx(t), time.Millisecond); err != nil || !slices.Equal(got, []int64{3}) {
		t.Fatalf("sweep = %v, %v; want version 3 expired", got, err)
	}
	cs, err := s.PolicyChanges(ctx(t), 1, 2, 3)
	if err != nil || cs[1].Status != policy.StatusApplied || cs[2].Status != policy.StatusExpired || cs[3].Status != policy.StatusExpired ||
		activeVersion(t, s) != 1 {
		t.Fatalf("after expiry: %+v, %v, active %d; want 1 applied and active, 2 and 3 expired", cs, err, activeVersion(t, s))
	}
	got := policyActions(t, s)
	for _, want := range []string{"key_a policy.expire policy_v2", "sluice policy.expire policy_v3"} {
		if !slices.Contains(got, want) {
			t.Errorf("audit %q lacks %q", got, want)
		}
	}
}
