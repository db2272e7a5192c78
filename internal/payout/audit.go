package payout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Actors of audit entries that are not API keys.
const (
	ActorCLI    = "cli"
	ActorConfig = "config"
)

// Audit actions.
const (
	AuditPauseCreate       = "pause.create"
	AuditPauseResume       = "pause.resume"
	AuditAPIKeyCreate      = "api_key.create"
	AuditAPIKeyRevoke      = "api_key.revoke"
	AuditWebhookCreate     = "webhook_endpoint.create"
	AuditWebhookUpdate     = "webhook_endpoint.update"
	AuditWebhookDelete     = "webhook_endpoint.delete"
	AuditWebhookRotate     = "webhook_endpoint.rotate_secret"
	AuditPayoutCancel      = "payout.cancel"
	AuditPayoutFeeCapRaise = "payout.speed_up"
)

// AuditEntry is one administrative action in the append-only audit log.
// Entries are hash-chained: Hash = SHA-256(PrevHash || canonical entry),
// so changing, removing or reordering any entry breaks the chain from it
// on (see VerifyAudit).
type AuditEntry struct {
	Seq      int64           `json:"seq"` // 1, 2, 3, … without gaps
	Time     time.Time       `json:"time"`
	Actor    string          `json:"actor"`  // API key id, ActorCLI or ActorConfig
	Action   string          `json:"action"` // e.g. AuditPauseCreate
	Object   string          `json:"object"` // the id of what it acted on
	Details  json.RawMessage `json:"details"`
	PrevHash string          `json:"prev_hash"` // hex; 64 zeros for the first entry
	Hash     string          `json:"hash"`      // hex
}

// AuditGenesis is the PrevHash of the first entry.
var AuditGenesis = hex.EncodeToString(make([]byte, sha256.Size))

// NewAuditEntry builds an entry (Seq, Time and hashes are set on append);
// details is encoded as compact JSON.
func NewAuditEntry(actor, action, object string, details any) (*AuditEntry, error) {
	b, err := json.Marshal(details)
	if err != nil {
		return nil, fmt.Errorf("audit details: %w", err)
	}
	return &AuditEntry{Actor: actor, Action: action, Object: object, Details: b}, nil
}

// ComputeHash returns the entry's hash over prevHash and its canonical
// encoding: each field length-prefixed (seq as 8 bytes big-endian, time as
// RFC 3339 UTC with microseconds, then actor, action, object and the
// details' bytes as stored), so no two entries encode alike.
func (e *AuditEntry) ComputeHash(prevHash string) string {
	h := sha256.New()
	prev, _ := hex.DecodeString(prevHash)
	h.Write(prev)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(e.Seq))
	h.Write(n[:])
	for _, f := range [][]byte{
		[]byte(e.Time.UTC().Format("2006-01-02T15:04:05.000000Z")),
		[]byte(e.Actor), []byte(e.Action), []byte(e.Object), e.Details,
	} {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write(f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Seal sets the entry's Seq, Time, PrevHash and Hash as the next entry
// after prev (nil for the first).
func (e *AuditEntry) Seal(prev *AuditEntry, now time.Time) {
	e.Seq, e.PrevHash = 1, AuditGenesis
	if prev != nil {
		e.Seq, e.PrevHash = prev.Seq+1, prev.Hash
	}
	e.Time = now.UTC().Truncate(time.Microsecond)
	e.Details = compactJSON(e.Details)
	e.Hash = e.ComputeHash(e.PrevHash)
}

func compactJSON(b []byte) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}

// AuditBreak says where and how the chain is broken.
type AuditBreak struct {
	Seq  int64  // the first entry affected
	Kind string // "changed", "removed" or "reordered"
	Msg  string
}

func (b *AuditBreak) Error() string {
	return fmt.Sprintf("audit entry %d %s: %s", b.Seq, b.Kind, b.Msg)
}

// AuditVerifier checks entries in seq order, one page at a time.
type AuditVerifier struct {
	next int64  // the seq expected next
	prev string // the hash the next entry must link to
	// Checked counts the entries verified.
	Checked int64
	// Head is the last entry verified.
	Head *AuditEntry
	// Anchor, when its Seq is not 0, is an entry known from before (a
	// previous verify or export, kept elsewhere): the log must still hold
	// it with this hash, which also detects entries removed from the end.
	Anchor struct {
		Seq  int64
		Hash string
	}
}

// NewAuditVerifier starts at the first entry.
func NewAuditVerifier() *AuditVerifier { return &AuditVerifier{next: 1, prev: AuditGenesis} }

// Check verifies the next entry and returns an *AuditBreak at the first
// that was changed (its hash no longer matches its content), removed (its
// seq is missing) or reordered (it does not link to the entry before it).
func (v *AuditVerifier) Check(e *AuditEntry) error {
	switch {
	case e.Seq > v.next:
		return &AuditBreak{Seq: v.next, Kind: "removed",
			Msg: fmt.Sprintf("entry %d is missing (the next entry found is %d)", v.next, e.Seq)}
	case e.Seq < v.next:
		return &AuditBreak{Seq: e.Seq, Kind: "reordered", Msg: fmt.Sprintf("entry %d appears after entry %d", e.Seq, v.next-1)}
	case e.PrevHash != v.prev:
		return &AuditBreak{Seq: e.Seq, Kind: "reordered",
			Msg: "it does not link to the entry before it (moved, or an entry before it was removed and the rest renumbered)"}
	case e.ComputeHash(e.PrevHash) != e.Hash:
		return &AuditBreak{Seq: e.Seq, Kind: "changed", Msg: "its content no longer matches its hash"}
	}
	if v.Anchor.Seq == e.Seq && v.Anchor.Hash != e.Hash {
		return &AuditBreak{Seq: e.Seq, Kind: "changed", Msg: "its hash is not the one recorded before (" + v.Anchor.Hash + "): the log was rewritten"}
	}
	v.next, v.prev = e.Seq+1, e.Hash
	v.Checked++
	v.Head = e
	return nil
}

// Finish reports entries removed from the end: the anchor lies beyond the
// last entry.
func (v *AuditVerifier) Finish() error {
	if v.Anchor.Seq >= v.next {
		return &AuditBreak{Seq: v.next, Kind: "removed",
			Msg: fmt.Sprintf("the log ends at entry %d but entry %d was recorded before", v.next-1, v.Anchor.Seq)}
	}
	return nil
}

// AuditStore keeps the audit log.
type AuditStore interface {
	// AppendAudit seals e as the next entry and stores it; appends are
	// serialised, so the chain has no forks or gaps.
	AppendAudit(ctx context.Context, e *AuditEntry) error
	// ListAudit returns entries with Seq > afterSeq in seq order, at most
	// limit (1..1000), and whether more exist.
	ListAudit(ctx context.Context, afterSeq int64, limit int) ([]*AuditEntry, bool, error)
}

// VerifyAuditLog reads the whole log from s, page by page, and returns how
// many entries it checked and the first break (an *AuditBreak), if any.
func VerifyAuditLog(ctx context.Context, s AuditStore) (int64, error) {
	v := NewAuditVerifier()
	err := v.VerifyAll(ctx, s)
	return v.Checked, err
}

// VerifyAll checks every entry of s, page by page, then Finish.
func (v *AuditVerifier) VerifyAll(ctx context.Context, s AuditStore) error {
	var after int64
	for {
		es, more, err := s.ListAudit(ctx, after, 1000)
		if err != nil {
			return err
		}
		for _, e := range es {
			if err := v.Check(e); err != nil {
				return err
			}
			after = e.Seq
		}
		if !more || len(es) == 0 {
			return v.Finish()
		}
	}
}
