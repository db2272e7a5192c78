package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicepay/sluice/internal/payout"
)

// WebhookConfig is what the webhook endpoints of the API need. Without a
// Store, they answer 503.
type WebhookConfig struct {
	// Store keeps endpoints and deliveries. Default: Config.Store, when it
	// implements payout.WebhookStore.
	Store payout.WebhookStore
	// CheckURL refuses a URL that may not receive webhooks (not http(s),
	// userinfo, a refused address after DNS resolution); its error message
	// is shown to the client. Default: http(s) with a host and no
	// userinfo, any address.
	CheckURL func(ctx context.Context, url string) error
}

// webhookRoutes registers the webhook endpoints.
func (s *Server) webhookRoutes(route func(path string, methods map[string]http.HandlerFunc)) {
	manage := func(h http.HandlerFunc) http.HandlerFunc { return s.auth(payout.ScopeWebhooksManage, h) }
	route("/v1/webhook_endpoints", map[string]http.HandlerFunc{"POST": manage(s.createWebhookEndpoint), "GET": manage(s.listWebhookEndpoints)})
	route("/v1/webhook_endpoints/{id}", map[string]http.HandlerFunc{"GET": manage(s.getWebhookEndpoint),
		"POST": manage(s.updateWebhookEndpoint), "DELETE": manage(s.deleteWebhookEndpoint)})
	route("/v1/webhook_endpoints/{id}/rotate_secret", map[string]http.HandlerFunc{"POST": manage(s.rotateWebhookSecret)})
	route("/v1/webhook_endpoints/{id}/deliveries", map[string]http.HandlerFunc{"GET": manage(s.listWebhookDeliveries)})
	route("/v1/webhook_deliveries/{id}/attempts", map[string]http.HandlerFunc{"GET": manage(s.listWebhookAttempts)})
	route("/v1/events/{id}/redeliver", map[string]http.HandlerFunc{"POST": manage(s.redeliverEvent)})
}

// endpointWithSecret is an endpoint as shown at creation and rotation, the
// only times its secret is shown.
type endpointWithSecret struct {
	*payout.WebhookEndpoint
	Secret string `json:"secret"`
}

func (e endpointWithSecret) MarshalJSON() ([]byte, error) {
	b, err := e.WebhookEndpoint.MarshalJSON()
	if err != nil {
		return nil, err
	}
	sec, err := json.Marshal(e.Secret)
	if err != nil {
		return nil, err
	}
	return append(append(append(b[:len(b)-1], `,"secret":`...), sec...), '}'), nil
}

// endpointBody is a create or update request; absent fields are nil.
type endpointBody struct {
	URL           *string   `json:"url"`
	EnabledEvents *[]string `json:"enabled_events"`
	Description   *string   `json:"description"`
	Enabled       *bool     `json:"enabled"`
}

const endpointFields = "url, enabled_events, description, enabled"

// webhooks returns the webhook store: WebhookConfig.Store, else Store when
// it is one; an error when the API has none.
func (s *Server) webhooks() (payout.WebhookStore, error) {
	if s.hooks.Store != nil {
		return s.hooks.Store, nil
	}
	if ws, ok := s.store.(payout.WebhookStore); ok {
		return ws, nil
	}
	return nil, newError(payout.CodeUnavailable, "webhooks are not available on this server")
}

// decodeEndpoint reads an endpoint request and checks the fields it has,
// reporting every wrong one; create requires url and enabled_events.
func (s *Server) decodeEndpoint(r *http.Request, create bool) (*endpointBody, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	var in endpointBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return nil, newError(payout.CodeUnknownField, "unknown field %s; fields are %s", truncate(f, 64), endpointFields)
		}
		return nil, newError(payout.CodeMalformedJSON, "the body must be a JSON object with %s: %s", endpointFields, truncate(err.Error(), 200))
	}
	if dec.More() {
		return nil, newError(payout.CodeMalformedJSON, "the body must hold one JSON object")
	}
	var ve payout.ValidationError
	bad := func(field string, code payout.Code, msg string) {
		ve.Errors = append(ve.Errors, &payout.FieldError{Field: field, Code: code, Message: msg})
	}
	if create && in.URL == nil {
		bad("url", payout.CodeInvalidWebhookURL, "url is required: the https URL that receives events")
	} else if in.URL != nil {
		if err := s.checkWebhookURL(r.Context(), *in.URL); err != nil {
			bad("url", payout.CodeInvalidWebhookURL, err.Error())
		}
	}
	if create && in.EnabledEvents == nil {
		bad("enabled_events", payout.CodeInvalidRequest, `enabled_events is required: event types, or ["*"] for all`)
	} else if in.EnabledEvents != nil {
		var fe *payout.FieldError
		if err := payout.CheckEnabledEvents(*in.EnabledEvents); errors.As(err, &fe) {
			ve.Errors = append(ve.Errors, fe)
		}
	}
	if d := in.Description; d != nil && (utf8.RuneCountInString(*d) > 500 || !utf8.ValidString(*d)) {
		bad("description", payout.CodeInvalidRequest, "description must be at most 500 characters")
	}
	if len(ve.Errors) > 0 {
		return nil, &ve
	}
	return &in, nil
}

func (s *Server) checkWebhookURL(ctx context.Context, u string) error {
	if s.hooks.CheckURL != nil {
		return s.hooks.CheckURL(ctx, u)
	}
	p, err := url.Parse(u)
	switch {
	case err != nil:
		return errors.New("url is not a valid URL")
	case p.Scheme != "http" && p.Scheme != "https":
		return fmt.Errorf("url scheme must be http or https, got %q", truncate(p.Scheme, 16))
	case p.User != nil:
		return errors.New("url must not carry a user name or password")
	case p.Hostname() == "":
		return errors.New("url has no host")
	}
	return nil
}

// apply writes a request's fields onto an endpoint.
func (in *endpointBody) apply(e *payout.WebhookEndpoint) {
	if in.URL != nil {
		e.URL = *in.URL
	}
	if in.EnabledEvents != nil {
		e.EnabledEvents = *in.EnabledEvents
	}
	if in.Description != nil {
		e.Description = *in.Description
	}
	if in.Enabled != nil && *in.Enabled != e.Enabled {
		e.Enabled, e.DisabledReason = *in.Enabled, ""
		if !e.Enabled {
			e.DisabledReason = payout.DisabledByUser
		}
		e.FailingSince = time.Time{} // the disable window starts again
	}
}

// createWebhookEndpoint handles POST /v1/webhook_endpoints: 201 with the
// endpoint and its secret.
func (s *Server) createWebhookEndpoint(w http.ResponseWriter, r *http.Request) {
	st, err := s.webhooks()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	in, err := s.decodeEndpoint(r, true)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	e := &payout.WebhookEndpoint{ID: payout.NewWebhookEndpointID(s.now()), Enabled: true, Secret: payout.NewWebhookSecret()}
	in.apply(e)
	if err := st.CreateWebhookEndpoint(r.Context(), e); err != nil {
		s.fail(w, r, err)
		return
	}
	s.audited(r, payout.AuditWebhookCreate, e.ID, e)
	w.Header().Set("Location", "/v1/webhook_endpoints/"+e.ID)
	writeJSON(w, "application/json", http.StatusCreated, endpointWithSecret{e, e.Secret})
}

// endpointID reads {id}, refusing what cannot be an endpoint id.
func endpointID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !strings.HasPrefix(id, "we_") || len(id) > 64 {
		return "", newError(payout.CodeNotFound, "no webhook endpoint %q", truncate(id, 64))
	}
	return id, nil
}

// endpointNotFound words ErrNotFound for an endpoint.
func endpointNotFound(id string, err error) error {
	if errors.Is(err, payout.ErrNotFound) {
		return newError(payout.CodeNotFound, "no webhook endpoint %s", id)
	}
	return err
}

func (s *Server) getWebhookEndpoint(w http.ResponseWriter, r *http.Request) {
	st, err := s.webhooks()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := endpointID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	e, err := st.GetWebhookEndpoint(r.Context(), id)
	if err != nil {
		s.fail(w, r, endpointNotFound(id, err))
		return
	}
	writeJSON(w, "application/json", http.StatusOK, e)
}

// updateWebhookEndpoint handles POST /v1/webhook_endpoints/{id}: the
// fields given change; enabling clears the disabled reason and the
// failure history.
func (s *Server) updateWebhookEndpoint(w http.ResponseWriter, r *http.Request) {
	s.changeEndpoint(w, r, false)
}

// rotateWebhookSecret handles POST …/rotate_secret: a new secret, shown
// once; the old one keeps signing for 24 hours.
func (s *Server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) {
	s.changeEndpoint(w, r, true)
}

func (s *Server) changeEndpoint(w http.ResponseWriter, r *http.Request, rotate bool) {
	st, err := s.webhooks()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := endpointID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var in *endpointBody
	if !rotate {
		if in, err = s.decodeEndpoint(r, false); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	now := s.now()
	e, err := st.UpdateWebhookEndpoint(r.Context(), id, func(e *payout.WebhookEndpoint) error {
		if rotate {
			e.Rotate(now)
		} else {
			in.apply(e)
		}
		return nil
	})
	if err != nil {
		s.fail(w, r, endpointNotFound(id, err))
		return
	}
	if rotate {
		s.audited(r, payout.AuditWebhookRotate, e.ID, e)
		writeJSON(w, "application/json", http.StatusOK, endpointWithSecret{e, e.Secret})
		return
	}
	s.audited(r, payout.AuditWebhookUpdate, e.ID, e)
	writeJSON(w, "application/json", http.StatusOK, e)
}

// deletedEndpoint answers a delete.
type deletedEndpoint struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Deleted bool   `json:"deleted"`
}

// deleteWebhookEndpoint handles DELETE /v1/webhook_endpoints/{id}: the
// endpoint goes with its deliveries and their log.
func (s *Server) deleteWebhookEndpoint(w http.ResponseWriter, r *http.Request) {
	st, err := s.webhooks()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := endpointID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := st.DeleteWebhookEndpoint(r.Context(), id); err != nil {
		s.fail(w, r, endpointNotFound(id, err))
		return
	}
	s.audited(r, payout.AuditWebhookDelete, id, nil)
	writeJSON(w, "application/json", http.StatusOK, deletedEndpoint{ID: id, Object: "webhook_endpoint", Deleted: true})
}

// page reads limit, starting_after and ending_before; cursors must carry
// prefix.
func pageQuery(r *http.Request, prefix string) (payout.Page, error) {
	q := r.URL.Query()
	p := payout.Page{StartingAfter: q.Get("starting_after"), EndingBefore: q.Get("ending_before"), Limit: defaultLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return p, newError(payout.CodeInvalidLimit, "limit must be a whole number from 1 to %d, got %q", maxLimit, truncate(v, 32))
		}
		p.Limit = n
	}
	if p.StartingAfter != "" && p.EndingBefore != "" {
		return p, newError(payout.CodeInvalidCursor, "use starting_after or ending_before, not both")
	}
	for name, v := range map[string]string{"starting_after": p.StartingAfter, "ending_before": p.EndingBefore} {
		if v != "" && (!strings.HasPrefix(v, prefix) || len(v) > 64) {
			return p, newError(payout.CodeInvalidCursor, "%s must be an id starting %s, got %q", name, prefix, truncate(v, 64))
		}
	}
	return p, nil
}

// list is a Stripe-style page.
type list[T any] struct {
	Object  string `json:"object"`
	Data    []T    `json:"data"`
	HasMore bool   `json:"has_more"`
	URL     string `json:"url"`
}

func newList[T any](data []T, more bool, url string) list[T] {
	if data == nil {
		data = []T{}
	}
	return list[T]{Object: "list", Data: data, HasMore: more, URL: url}
}

func (s *Server) listWebhookEndpoints(w http.ResponseWriter, r *http.Request) {
	st, err := s.webhooks()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := pageQuery(r, "we_")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	es, more, err := st.ListWebhookEndpoints(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, "application/json", http.StatusOK, newList(es, more, "/v1/webhook_endpoints"))
}

// listWebhookDeliveries handles GET …/{id}/deliveries: the delivery log,
// newest first.
func (s *Server) listWebhookDeliveries(w http.ResponseWriter, r *http.Request) {
	st, err := s.webhooks()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := endpointID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := pageQuery(r, "wd_")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ds, more, err := st.ListWebhookDeliveries(r.Context(), id, p)
	if err != nil {
		s.fail(w, r, endpointNotFound(id, err))
		return
	}
	writeJSON(w, "application/json", http.StatusOK, newList(ds, more, "/v1/webhook_endpoints/"+id+"/deliveries"))
}

// listWebhookAttempts handles GET /v1/webhook_deliveries/{id}/attempts:
// every attempt of a delivery, oldest first.
func (s *Server) listWebhookAttempts(w http.ResponseWriter, r *http.Request) {
	st, err := s.webhooks()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	if !strings.HasPrefix(id, "wd_") || len(id) > 64 {
		s.fail(w, r, newError(payout.CodeNotFound, "no webhook delivery %q", truncate(id, 64)))
		return
	}
	as, err := st.ListWebhookAttempts(r.Context(), id)
	if errors.Is(err, payout.ErrNotFound) {
		err = newError(payout.CodeNotFound, "no webhook delivery %s", id)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, "application/json", http.StatusOK, newList(as, false, "/v1/webhook_deliveries/"+id+"/attempts"))
}

// redeliverEvent handles POST /v1/events/{id}/redeliver: the event goes
// again to every endpoint whose filter matches, or to endpoint_id alone;
// 202 with the deliveries made pending.
func (s *Server) redeliverEvent(w http.ResponseWriter, r *http.Request) {
	st, err := s.webhooks()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	if !plausibleEventID(id) {
		s.fail(w, r, newError(payout.CodeNotFound, "no event %q", truncate(id, 64)))
		return
	}
	var in struct {
		EndpointID string `json:"endpoint_id"`
	}
	if r.ContentLength != 0 {
		body, err := readBody(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if len(bytes.TrimSpace(body)) > 0 {
			if err := dec.Decode(&in); err != nil {
				if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
					s.fail(w, r, newError(payout.CodeUnknownField, "unknown field %s; the only field is endpoint_id", truncate(f, 64)))
					return
				}
				s.fail(w, r, newError(payout.CodeMalformedJSON, "the body must be a JSON object, optionally with endpoint_id"))
				return
			}
		}
	}
	ds, err := st.RedeliverEvent(r.Context(), id, in.EndpointID, s.now())
	if errors.Is(err, payout.ErrNotFound) {
		what := "no event " + id
		if in.EndpointID != "" {
			what = fmt.Sprintf("no event %s or no webhook endpoint %s", id, truncate(in.EndpointID, 64))
		}
		s.fail(w, r, newError(payout.CodeNotFound, "%s", what))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, "application/json", http.StatusAccepted, newList(ds, false, "/v1/events/"+id+"/redeliver"))
}
