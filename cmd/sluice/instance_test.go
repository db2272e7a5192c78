package main

import (
	"strings"
	"testing"
	"time"
)

func TestInstanceIDIsKeptAndExclusive(t *testing.T) {
	prev := instanceLockWait
	instanceLockWait = 50 * time.Millisecond
	defer func() { instanceLockWait = prev }()
	dir := t.TempDir()
	id, unlock, err := instanceID(dir)
	if err != nil || id == "" {
		t.Fatalf("instanceID = %q, %v", id, err)
	}
	// A second engine on the same data dir would send with the same lease
	// identity: refused while the first lives.
	if _, _, err := instanceID(dir); err == nil || !strings.Contains(err.Error(), "another sluice engine is running with data dir") {
		t.Fatalf("second instanceID on a locked data dir: %v, want a refusal", err)
	}
	unlock()
	// A restart while the old engine is still going away waits for it.
	again0, unlock0, err := instanceID(dir)
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() { time.Sleep(20 * time.Millisecond); unlock0(); close(released) }()
	prevWait := instanceLockWait
	instanceLockWait = 2 * time.Second
	waited, unlockW, err := instanceID(dir)
	instanceLockWait = prevWait
	<-released
	if err != nil || waited != again0 {
		t.Fatalf("instanceID while the holder is releasing: %q, %v; want it to wait and get %q", waited, err, again0)
	}
	unlockW()
	again, unlock2, err := instanceID(dir)
	if err != nil || again != id {
		t.Fatalf("after the first ended: %q, %v; want the same id %q (a restart takes its own leases back at once)", again, err, id)
	}
	unlock2()
	other, unlock3, err := instanceID(t.TempDir())
	if err != nil || other == id {
		t.Fatalf("another data dir: %q, %v; want a different id", other, err)
	}
	unlock3()
}
