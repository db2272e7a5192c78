// Package api holds the REST API's contract, api/openapi.yaml, embedded so
// that the server can serve it (GET /v1/openapi.yaml) and tests can check
// every answer against it.
package api

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document of the v1 API.
//
//go:embed openapi.yaml
var OpenAPI []byte
