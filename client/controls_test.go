package client_test

import (
	"context"
	"testing"

	"github.com/sluicepay/sluice/client"
)

func TestPausesAndAudit(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil, nil)
	c := client.New(s.url, apiKey, fast()...)
	ctx := context.Background()
	p, err := c.CreatePause(ctx, client.CreatePauseParams{Scope: client.PauseChain, Chain: "sandbox", Reason: "node incident"})
	if err != nil || p.ResumedAt != nil || p.Chain != "sandbox" {
		t.Fatalf("CreatePause = %+v, %v", p, err)
	}
	if _, err := c.CreatePause(ctx, client.CreatePauseParams{Scope: client.PauseAsset, Chain: "sandbox", Reason: "x"}); client.ErrorCode(err) != "invalid_pause" {
		t.Errorf("asset pause without an asset: %v, want invalid_pause", err)
	}
	list, err := c.ListPauses(ctx)
	if err != nil || len(list.Data) != 1 || list.Data[0].ID != p.ID {
		t.Fatalf("ListPauses = %+v, %v", list, err)
	}
	if r, err := c.ResumePause(ctx, p.ID); err != nil || r.ResumedAt == nil {
		t.Fatalf("ResumePause = %+v, %v", r, err)
	}
	if _, err := c.DeletePause(ctx, p.ID); client.ErrorCode(err) != "pause_already_resumed" {
		t.Errorf("DeletePause of a resumed pause: %v, want pause_already_resumed", err)
	}
	page, err := c.ListAudit(ctx, client.ListAuditParams{Limit: 1})
	if err != nil || len(page.Data) != 1 || !page.HasMore || page.Data[0].Action != "pause.create" || page.Data[0].Object != p.ID {
		t.Fatalf("ListAudit(limit 1) = %+v, %v", page, err)
	}
	next, err := c.ListAudit(ctx, client.ListAuditParams{After: page.Data[0].Seq})
	if err != nil || len(next.Data) != 1 || next.Data[0].Action != "pause.resume" || next.Data[0].PrevHash != page.Data[0].Hash {
		t.Fatalf("ListAudit(after 1) = %+v, %v; want the resume, linked to the first entry", next, err)
	}
}
