package servetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	pathpkg "path"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// This file sends a Mount's requests to a real host's HTTP API and makes
// of the answers what the emulation returns: a *logical.Response as the
// SDK translates Vault's JSON (logical.HTTPResponseToLogicalResponse), and
// a *ResponseError with the host's status and "errors".

// doOnHost is Do on a real host: req's operation, path and data, as the
// CLI sends them.
func (m *Mount) doOnHost(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	path := m.MountPoint + strings.TrimPrefix(req.Path, "/")
	var method string
	var query url.Values
	var body any
	switch req.Operation {
	case logical.ReadOperation:
		method, query = http.MethodGet, dataQuery(req.Data)
	case logical.ListOperation:
		method, query = "LIST", dataQuery(req.Data)
	case logical.DeleteOperation:
		method, query = http.MethodDelete, dataQuery(req.Data)
	case logical.CreateOperation, logical.UpdateOperation:
		// The host's existence check decides between them, as for
		// `vault write`.
		method, body = http.MethodPut, req.Data
	case logical.PatchOperation:
		method, body = http.MethodPatch, req.Data
	case logical.HelpOperation:
		method, query = http.MethodGet, url.Values{"help": {"1"}}
	default:
		return nil, emulationOnly(fmt.Sprintf("Mount.Do(%s)", req.Operation),
			"a real host's API sends a backend only reads, lists, writes, patches, deletes and help; renewals and revocations go through sys/leases (Mount.Renew, Revoke)")
	}
	if body == nil && (method == http.MethodPut || method == http.MethodPatch) {
		body = map[string]any{}
	}
	api := m.host.srv.api
	status, raw, err := api.do(ctx, method, path, query, body, !req.Unauthenticated)
	if err != nil {
		return nil, err
	}
	if req.Operation == logical.HelpOperation && status == http.StatusOK {
		var data map[string]any
		if err := json.Unmarshal(raw, &data); err != nil {
			return nil, fmt.Errorf("servetest: help for %s: %s answered %d, not with JSON: %.200s", path, api.info.Name, status, raw)
		}
		return &logical.Response{Data: data}, nil
	}
	resp, err := api.response(method, path, status, raw)
	if err != nil {
		return alongside(err), err
	}
	return resp, nil
}

// dataQuery is data as a read's, list's or delete's query, which the host
// hands the backend as the request's data.
func dataQuery(data map[string]any) url.Values {
	if len(data) == 0 {
		return nil
	}
	q := url.Values{}
	for k, v := range data {
		switch v := v.(type) {
		case []string:
			q[k] = v
		case []any:
			for _, e := range v {
				q.Add(k, fmt.Sprint(e))
			}
		default:
			q.Set(k, fmt.Sprint(v))
		}
	}
	return q
}

// response is the answer (status, raw) to method path: a response for a
// success (nil for 204), a *ResponseError for anything from 300 on.
func (a *hostAPI) response(method, path string, status int, raw []byte) (*logical.Response, error) {
	if status >= 300 {
		return nil, a.responseError(status, raw)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	var hr logical.HTTPResponse
	if err := json.Unmarshal(raw, &hr); err != nil {
		return nil, fmt.Errorf("servetest: %s %s: %s answered %d, not with its JSON: %w", method, path, a.info.Name, status, err)
	}
	resp := logical.HTTPResponseToLogicalResponse(&hr)
	var extra struct {
		MountType string `json:"mount_type"`
	}
	if json.Unmarshal(raw, &extra) == nil && extra.MountType != "" {
		setMountType(resp, extra.MountType)
	}
	return resp, nil
}

// responseError is the *ResponseError of an answer of status (300 or
// more) with the body raw: the host's status and its "errors", and a
// cause of the same text that errors.Is matches against the SDK's errors
// it names (logical.ErrPermissionDenied and the others Vault maps to a
// status), as the emulation's cause is the backend's error.
func (a *hostAPI) responseError(status int, raw []byte) *ResponseError {
	var body struct {
		Errors []string `json:"errors"`
	}
	_ = json.Unmarshal(raw, &body) // a redirect's body is no JSON: no errors
	re := &ResponseError{StatusCode: status, host: a.info.Name}
	if len(body.Errors) > 0 {
		re.Errors = body.Errors
		re.err = &hostCause{msg: strings.Join(body.Errors, "; ")}
	}
	return re
}

// hostCause is the cause of a real host's error answer: its text, and
// the SDK's errors that the text names.
type hostCause struct{ msg string }

func (e *hostCause) Error() string { return e.msg }

func (e *hostCause) Unwrap() []error {
	var out []error
	for _, known := range []error{
		logical.ErrPermissionDenied, logical.ErrUnsupportedPath, logical.ErrUnsupportedOperation,
		logical.ErrInvalidRequest, logical.ErrInvalidCredentials, logical.ErrUpstreamRateLimited,
		logical.ErrRateLimitQuotaExceeded, logical.ErrLeaseCountQuotaExceeded, logical.ErrMissingRequiredState,
	} {
		if strings.Contains(e.msg, known.Error()) {
			out = append(out, known)
		}
	}
	return out
}

// multiErrors matches the text of Vault's list of errors ("1 error
// occurred:…"), which it answers for a backend's error, where a backend's
// error response is answered with its message alone.
var multiErrors = regexp.MustCompile(`^\d+ errors? occurred:`)

// alongside is the response the emulation returns with err, as well as
// it can be told from the host's answer: an error response holding the
// message when the host answered one message that is not its list of
// errors, with a 4xx other than 404 and 405, as Vault answers a backend's
// logical.ErrorResponse (and its own refusals, such as a write to a path
// ending in "/"); nil otherwise. The emulation knows which the backend
// returned; the API does not say, so a backend's plain error on a login
// path, which Vault answers unwrapped, gets a response here and none in
// the emulation.
func alongside(err error) *logical.Response {
	re, ok := err.(*ResponseError)
	if !ok || len(re.Errors) != 1 || re.StatusCode < 400 || re.StatusCode >= 500 ||
		re.StatusCode == http.StatusNotFound || re.StatusCode == http.StatusMethodNotAllowed || multiErrors.MatchString(re.Errors[0]) {
		return nil
	}
	return logical.ErrorResponse(re.Errors[0])
}

// sys sends servetest's own request to a system or token endpoint and
// makes a response of the answer, as Renew and RenewToken return it.
func (h *hostMount) sys(ctx context.Context, path string, body map[string]any) (*logical.Response, error) {
	api := h.srv.api
	status, raw, err := api.do(ctx, http.MethodPut, path, nil, body, true)
	if err != nil {
		return nil, err
	}
	return api.response(http.MethodPut, path, status, raw)
}

// seconds is d in whole seconds, as the API takes an increment.
func seconds(d time.Duration) int64 { return int64(d / time.Second) }

// renewOnHost is Renew on a real host: sys/leases/renew.
func (m *Mount) renewOnHost(ctx context.Context, leaseID string, increment time.Duration) (*logical.Response, error) {
	return m.host.sys(ctx, "sys/leases/renew", map[string]any{"lease_id": leaseID, "increment": seconds(increment)})
}

// revokeOnHost is Revoke on a real host: sys/leases/revoke, with sync.
func (m *Mount) revokeOnHost(ctx context.Context, leaseID string) error {
	_, err := m.host.sys(ctx, "sys/leases/revoke", map[string]any{"lease_id": leaseID, "sync": true})
	return err
}

// revokePrefixOnHost is RevokePrefix on a real host:
// sys/leases/revoke-prefix/PREFIX, with sync, the prefix cleaned as the
// emulation cleans it.
func (m *Mount) revokePrefixOnHost(ctx context.Context, prefix string) error {
	// As the API client cleans a path: an empty prefix asks for
	// sys/leases/revoke-prefix itself.
	path := pathpkg.Join("sys/leases/revoke-prefix", pathpkg.Clean("/"+prefix))
	_, err := m.host.sys(ctx, path, map[string]any{"sync": true})
	return err
}

// renewTokenOnHost is RenewToken on a real host: auth/token/renew.
func (m *Mount) renewTokenOnHost(ctx context.Context, token string, increment time.Duration) (*logical.Response, error) {
	return m.host.sys(ctx, "auth/token/renew", map[string]any{"token": token, "increment": seconds(increment)})
}
