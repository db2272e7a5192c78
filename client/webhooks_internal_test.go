package client

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

// TestVerifyWebhookSpecVector checks the Standard Webhooks specification's
// own example (secret, id, timestamp, payload and signature from the spec).
func TestVerifyWebhookSpecVector(t *testing.T) {
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)
	at := time.Unix(1614265330, 0)
	if err := verifyWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", h, body, 0, at.Add(time.Minute)); err != nil {
		t.Fatalf("spec vector: %v", err)
	}
	if err := verifyWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", h, body, 0, at.Add(6*time.Minute)); !errors.Is(err, ErrWebhookTimestamp) {
		t.Errorf("6 minutes later: %v, want ErrWebhookTimestamp", err)
	}
}
