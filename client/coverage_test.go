package client_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/sluicepay/sluice/client"
)

// sdkNames maps operations whose SDK method is not their operationId
// with a capital letter.
var sdkNames = map[string]string{
	"speedUpPayout":      "SpeedUp",
	"listPayoutAttempts": "ListAttempts",
	"rebroadcastPayout":  "Rebroadcast",
}

// TestEveryOperationHasAMethod: the SDK covers every /v1 operation of
// api/openapi.yaml, so an endpoint cannot ship without its typed method.
func TestEveryOperationHasAMethod(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	methods := reflect.TypeFor[*client.Client]()
	checked := 0
	for path, item := range doc.Paths.Map() {
		if !strings.HasPrefix(path, "/v1/") || path == "/v1/openapi.yaml" {
			continue
		}
		for method, op := range item.Operations() {
			name, ok := sdkNames[op.OperationID]
			if !ok {
				name = strings.ToUpper(op.OperationID[:1]) + op.OperationID[1:]
			}
			m, found := methods.MethodByName(name)
			if !found {
				t.Errorf("%s %s (%s) has no client method %s", method, path, op.OperationID, name)
				continue
			}
			if m.Type.NumIn() < 2 || m.Type.In(1) != reflect.TypeFor[context.Context]() {
				t.Errorf("client.%s does not take a context first", name)
			}
			checked++
		}
	}
	if checked < 20 {
		t.Errorf("only %d operations checked; the spec did not load as expected", checked)
	}
}
