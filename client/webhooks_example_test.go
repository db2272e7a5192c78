package client_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluicepay/sluice/client"
)

// A webhook receiver checks each delivery before trusting it.
func ExampleVerifyWebhook() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // from `sluice webhook create`
	body := []byte(`{"id":"evt_01J0","object":"event","type":"payout.completed"}`)

	// What Sluice sends (built here with the secret, for the example).
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("evt_01J0." + ts + "." + string(body)))
	h := http.Header{}
	h.Set("webhook-id", "evt_01J0")
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))

	// In the receiver's handler: verify, then decode.
	if err := client.VerifyWebhook(secret, h, body, client.DefaultWebhookTolerance); err != nil {
		fmt.Println("refused:", err)
		return
	}
	var ev client.Event
	_ = json.Unmarshal(body, &ev)
	fmt.Println("verified", ev.Type)

	// A changed body does not verify.
	fmt.Println(client.VerifyWebhook(secret, h, append(body, ' '), 0))
	// Output:
	// verified payout.completed
	// sluice webhook: no signature matches
}
