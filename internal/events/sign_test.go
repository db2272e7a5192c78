package events_test

import (
	"testing"

	"github.com/sluicepay/sluice/internal/events"
)

// TestSignatureSpecVector signs the Standard Webhooks specification's own
// example and gets its signature.
func TestSignatureSpecVector(t *testing.T) {
	got, err := events.Signature([]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "msg_p5jXN8AQM9LWM0D4loKWxJek",
		1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; err != nil || got != want {
		t.Errorf("Signature = %q, %v; want %q", got, err, want)
	}
}
