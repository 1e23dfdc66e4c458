package servetest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	pathpkg "path"
	"reflect"
	"strings"

	"github.com/hashicorp/errwrap"
	"github.com/hashicorp/go-multierror"
	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/helper/salt"
	"github.com/hashicorp/vault/sdk/logical"
)

// This file plays Vault's request handling in front of a mount: what
// happens to a request between Vault's HTTP API and the plugin, and to the
// plugin's answer on the way back. What it mirrors is cited from Vault
// v1.21.0 (vault/request_handling.go, vault/router.go, http/logical.go)
// and from the SDK Vault v1.21.0 builds with, sdk v0.20.0
// (logical/response_util.go).

// Read reads path in the mount, as `vault read MOUNT/PATH` does. A path
// the backend has no value for gives a *ResponseError with status 404, as
// Vault's API answers a GET that finds nothing.
func (m *Mount) Read(ctx context.Context, path string) (*logical.Response, error) {
	return m.Do(ctx, &logical.Request{Operation: logical.ReadOperation, Path: path})
}

// Write writes data to path, as `vault write MOUNT/PATH k=v…` does: the
// backend's existence check decides whether the backend sees a create or
// an update, so a path whose ExistenceCheck reports "absent" gets its
// create handler. A path ending in "/" is refused, as Vault refuses it.
func (m *Mount) Write(ctx context.Context, path string, data map[string]any) (*logical.Response, error) {
	return m.Do(ctx, &logical.Request{Operation: logical.UpdateOperation, Path: path, Data: data})
}

// List lists the keys under path, as `vault list MOUNT/PATH` does: the path
// gets its trailing "/", and an empty list gives a *ResponseError with
// status 404.
func (m *Mount) List(ctx context.Context, path string) (*logical.Response, error) {
	return m.Do(ctx, &logical.Request{Operation: logical.ListOperation, Path: path})
}

// Delete deletes path, as `vault delete MOUNT/PATH` does.
func (m *Mount) Delete(ctx context.Context, path string) (*logical.Response, error) {
	return m.Do(ctx, &logical.Request{Operation: logical.DeleteOperation, Path: path})
}

// Login logs in at path of an auth method with data as the credentials, as
// `vault write auth/MOUNT/PATH …` does without a token. A path that the
// backend does not list as unauthenticated (its PathsSpecial) is refused
// with status 403, as Vault refuses a request without a token. The
// response's Auth gets a token as Vault's token store makes one (see Do),
// which RenewToken renews; its Policies stay the backend's.
func (m *Mount) Login(ctx context.Context, path string, data map[string]any) (*logical.Response, error) {
	return m.Do(ctx, &logical.Request{Operation: logical.UpdateOperation, Path: path, Data: data, Unauthenticated: true})
}

// Do handles req as Vault handles a request to this mount that arrived
// through its HTTP API, with req.Path relative to the mount, and sets the
// fields Vault sets on the way (req is changed):
//
//   - a list path gets its trailing "/"; a write to a path ending in "/"
//     is refused;
//   - a request with Unauthenticated set is a login: it is refused unless
//     the path is one of the backend's unauthenticated paths, and it
//     carries no token;
//   - a create or update runs the backend's existence check first, which
//     decides the operation;
//   - MountPoint, MountType, MountAccessor, the running version and
//     sha256, the mount class, Storage, the client token (salted per
//     mount, as the router hashes it), the request id and a Connection
//     from 127.0.0.1 are set; request headers are not passed through;
//   - a response's secret gets a lease, as Vault's expiration manager
//     registers it: its TTL is the mount's default when the backend set
//     none, capped by the mount's max TTL (and the secret's MaxTTL) with
//     Vault's warning, and Secret.LeaseID is MOUNT_PATH/REQUEST_PATH/ID,
//     as `secrets/creds/web/AbC…`; Renew, Revoke, RevokePrefix and
//     Plugin.Advance then play its life;
//   - a login's auth gets a token, as Vault's token store makes one:
//     ClientToken, Accessor, TokenPolicies (its Policies with "default"),
//     TokenType, Orphan, and its TTL calculated as a secret's, with
//     Period and ExplicitMaxTTL; RenewToken renews it;
//   - the response loses its headers and its secret's and auth's internal
//     data (the lease keeps them for renewals and revocations); with an SDK whose logical.Response has a MountType field
//     (newer than the v0.6.2 floor, which has none), that field is set to
//     the mount's type, as Vault's API shows it in "mount_type".
//
// An error Vault would answer with an HTTP error is a *ResponseError with
// the status Vault maps it to and the messages its JSON "errors" would
// hold; it wraps the backend's error, if any, so errors.Is works on it. A
// response with an error in it (logical.ErrorResponse) gives both the
// response and a *ResponseError. HandleRequest, promoted from Backend,
// stays the raw call without any of this.
//
// On a real host (HostEnv, WithHost) the host does all of the above: Do
// sends req's Operation, Path and Data through its HTTP API and ignores
// the other fields; see the package doc's "On a real host".
func (m *Mount) Do(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if m.host != nil {
		return m.doOnHost(ctx, req)
	}
	path := strings.TrimPrefix(req.Path, "/")
	full := m.MountPoint + path
	// Vault's HTTP server is a net/http ServeMux, which answers a path
	// with "." or ".." segments or "//" with a 307 to the cleaned path.
	if clean := cleanPath("/v1/" + full); clean != "/v1/"+full {
		return nil, &ResponseError{StatusCode: http.StatusTemporaryRedirect, err: fmt.Errorf("the HTTP server redirects %q to %q (a net/http ServeMux cleans paths)", "/v1/"+full, clean)}
	}
	// http/logical.go buildLogicalRequestNoAuth: "LIST" adds the slash.
	if req.Operation == logical.ListOperation && !strings.HasSuffix(full, "/") {
		path += "/"
		full += "/"
	}
	// request_handling.go handleCancelableRequest: "cannot write to a path
	// ending in '/'", checked on the full path, so a write to the mount's
	// root is refused too.
	if strings.HasSuffix(full, "/") && writes(req.Operation) {
		resp := logical.ErrorResponse("cannot write to a path ending in '/'")
		return resp, responseError(req, resp, nil)
	}
	login := m.isLoginPath(path)
	if req.Unauthenticated && !login {
		// CheckToken without a token.
		return tokenCheckFailed(req, logical.ErrPermissionDenied)
	}
	req.Unauthenticated = login
	token := m.token
	if login {
		token = ""
	}
	m.route(req, path, token)

	if req.Operation == logical.CreateOperation || req.Operation == logical.UpdateOperation {
		// The router sets MountAccessor when it resets the request after
		// the existence check (router.go routeCommon's deferred reset), so
		// only writes carry it to the backend.
		req.MountAccessor = m.MountAccessor
		op, err := m.existenceCheck(ctx, req)
		if err != nil {
			return tokenCheckFailed(req, err)
		}
		req.Operation = op
	}
	var resp *logical.Response
	err := m.call(ctx, func(be logical.Backend) (err error) {
		resp, err = be.HandleRequest(ctx, req)
		return err
	})
	if resp != nil {
		// router.go routeCommon: no allowed_response_headers on the mount.
		resp.Headers = nil
		// request_handling.go handleRequest: "Add mount type information".
		setMountType(resp, m.MountType)
		// handleRequest registers a secret with the expiration manager;
		// handleLoginRequest makes a token of an auth, unless the backend
		// refused the credentials. Both keep the internal data that is
		// stripped below.
		var leaseErr error
		switch {
		case !login && resp.Secret != nil:
			leaseErr = m.registerSecret(resp, path)
		case login && resp.Auth != nil && err != logical.ErrInvalidCredentials:
			var refused *logical.Response
			if refused, leaseErr = m.createToken(resp, path); refused != nil && leaseErr != nil {
				// A policy Vault does not let an auth method give.
				return refused, responseError(req, refused, leaseErr)
			}
		}
		if leaseErr != nil {
			return nil, responseError(req, nil, multierror.Append(nil, errInternal))
		}
		// handleCancelableRequest: "Ensure we don't leak internal data".
		if resp.Secret != nil {
			resp.Secret.InternalData = nil
		}
		if resp.Auth != nil {
			resp.Auth.InternalData = nil
			if resp.Auth.Alias != nil {
				resp.Auth.Alias.MountAccessor = m.MountAccessor
			}
		}
	}
	if err != nil && !login {
		// handleRequest returns the backend's error appended to a
		// multierror; handleLoginRequest returns it as it is.
		err = multierror.Append(nil, err)
	}
	return resp, responseError(req, resp, err)
}

// writes reports whether op is one Vault refuses on a path ending in "/".
func writes(op logical.Operation) bool {
	switch op {
	case logical.UpdateOperation, logical.CreateOperation, logical.PatchOperation, "recover":
		return true
	}
	return false
}

// route sets what Vault's router sets before the backend sees req
// (router.go routeCommon, and its deferred reset, which sets MountAccessor
// for the requests that follow an existence check).
func (m *Mount) route(req *logical.Request, path, token string) {
	req.Path = path
	req.MountPoint = m.MountPoint
	req.MountType = m.MountType
	st := m.inst.state()
	setMountInfo(req, st.version, st.sha256, m.class)
	req.Storage = m.Storage
	req.ClientToken = saltID(m.uuid, token)
	if token != "" {
		// CheckToken and handleRequest: the token's accessor and display
		// name; servetest's token is a root token with the display name a
		// dev server's root token has.
		req.ClientTokenAccessor = m.tokenAccessor
		req.DisplayName = "token"
	}
	req.ClientTokenRemainingUses = 0
	req.Headers = nil
	if req.ID == "" {
		req.ID, _ = newID()
	}
	if req.Connection == nil {
		// http/logical.go getConnection: the client's address.
		req.Connection = &logical.Connection{RemoteAddr: "127.0.0.1", RemotePort: 50000}
	}
}

// existenceCheck is request_handling.go existenceCheck: the operation a
// write becomes. A path the backend does not know, or one without an
// existence check, stays an update. An error is the backend's when it is
// a user error (as the framework's invalid fields are) and Vault's
// "internal error" otherwise, which hides the backend's message.
func (m *Mount) existenceCheck(ctx context.Context, req *logical.Request) (logical.Operation, error) {
	var checked, exists bool
	err := m.call(ctx, func(be logical.Backend) (err error) {
		checked, exists, err = be.HandleExistenceCheck(ctx, req)
		return err
	})
	switch {
	case errors.Is(err, logical.ErrUnsupportedPath):
		checked = false
	case err != nil:
		if _, ok := err.(errutil.UserError); ok || err.Error() == "relative paths not supported" {
			return "", err
		}
		return "", errInternal
	}
	switch {
	case !checked, exists:
		return logical.UpdateOperation, nil
	default:
		return logical.CreateOperation, nil
	}
}

// errInternal is Vault's ErrInternalError, which it answers in place of
// an error whose message it will not show.
var errInternal = errors.New("internal error")

// tokenCheckFailed is the answer to a request that CheckToken (which also
// runs the existence check) refused with ctErr, as handleRequest makes
// it: an internal error alone; otherwise an error response with ctErr's
// message, and the status of permission denied or of an invalid request.
func tokenCheckFailed(req *logical.Request, ctErr error) (*logical.Response, error) {
	switch {
	case errors.Is(ctErr, errInternal):
		return nil, responseError(req, nil, multierror.Append(nil, ctErr))
	case errors.Is(ctErr, logical.ErrPermissionDenied):
		resp := logical.ErrorResponse(ctErr.Error())
		return resp, responseError(req, resp, multierror.Append(nil, ctErr))
	default:
		resp := logical.ErrorResponse(ctErr.Error())
		return resp, responseError(req, resp, &wrappedErr{logical.ErrInvalidRequest, ctErr})
	}
}

// wrappedErr is multierror's one-error list of Vault's error, shown by
// errwrap as Vault shows it, that still unwraps to the backend's error.
type wrappedErr struct{ shown, cause error }

func (e *wrappedErr) Error() string   { return multierror.Append(nil, e.shown).Error() }
func (e *wrappedErr) Unwrap() []error { return []error{e.shown, e.cause} }

// ResponseError is a request's failure as Vault's HTTP API reports it.
type ResponseError struct {
	// StatusCode is the HTTP status Vault answers with.
	StatusCode int
	// Errors are the messages of the answer's JSON "errors" list; empty
	// for a 404 of a read or list that found nothing.
	Errors []string

	err  error
	host string // the real host that answered; "" in the emulation
}

func (e *ResponseError) Error() string {
	who := "Vault would answer"
	if e.host != "" {
		who = e.host + " answered"
	}
	if len(e.Errors) == 0 && e.err != nil {
		return fmt.Sprintf("%s %d %s: %v", who, e.StatusCode, http.StatusText(e.StatusCode), e.err)
	}
	if len(e.Errors) == 0 {
		return fmt.Sprintf("%s %d %s", who, e.StatusCode, http.StatusText(e.StatusCode))
	}
	return fmt.Sprintf("%s %d %s: %s", who, e.StatusCode, http.StatusText(e.StatusCode), strings.Join(e.Errors, "; "))
}

// Unwrap returns the backend's error, if there was one. On a real host,
// whose answer holds no error values, it returns an error of the answer's
// messages that errors.Is matches against the SDK's errors they name
// (logical.ErrPermissionDenied, ErrUnsupportedPath and the others Vault
// maps to a status).
func (e *ResponseError) Unwrap() error { return e.err }

// responseError is the *ResponseError Vault's HTTP API makes of a
// request's outcome, or nil when it answers 200 or 204.
func responseError(req *logical.Request, resp *logical.Response, err error) error {
	status, msg := statusOf(req, resp, err)
	if status == 0 {
		return nil
	}
	if msg != nil {
		adjustStatus(&status, msg)
	}
	re := &ResponseError{StatusCode: status, err: err}
	if msg != nil {
		re.Errors = []string{msg.Error()}
	}
	return re
}

// statusOf is logical.RespondErrorCommon of sdk v0.20.0 (response_util.go),
// which Vault v1.21.0's HTTP handler calls: the status of a request's
// outcome (0 when it succeeded) and the error to show. It is copied so the
// status is Vault 1.21's whatever SDK the test builds with; the errors
// that older SDKs lack are matched by their text, as Vault matches them.
func statusOf(req *logical.Request, resp *logical.Response, err error) (int, error) {
	if err == nil && (resp == nil || !resp.IsError()) {
		switch {
		case req.Operation == logical.ReadOperation:
			if resp == nil {
				return http.StatusNotFound, nil
			}
		case req.Operation == logical.ListOperation && (resp == nil || resp.WrapInfo == nil):
			if resp == nil {
				return http.StatusNotFound, nil
			}
			if len(resp.Data) == 0 {
				if len(resp.Warnings) > 0 {
					return 0, nil
				}
				return http.StatusNotFound, nil
			}
			keysRaw, ok := resp.Data["keys"]
			if !ok || keysRaw == nil {
				return 0, nil
			}
			var n int
			switch keys := keysRaw.(type) {
			case []any:
				for _, k := range keys {
					if _, ok := k.(string); !ok {
						return http.StatusInternalServerError, nil
					}
				}
				n = len(keys)
			case []string:
				n = len(keys)
			default:
				return http.StatusInternalServerError, nil
			}
			if n == 0 {
				return http.StatusNotFound, nil
			}
		}
		return 0, nil
	}

	status := http.StatusInternalServerError
	if resp != nil {
		status = http.StatusBadRequest
	}
	if err != nil {
		switch {
		case errwrap.Contains(err, "overloaded, try again later"):
			status = http.StatusServiceUnavailable
		case errwrap.ContainsType(err, new(logical.StatusBadRequest)):
			status = http.StatusBadRequest
		case errwrap.Contains(err, logical.ErrPermissionDenied.Error()):
			status = http.StatusForbidden
		case errwrap.Contains(err, "wrapping token is not valid or does not exist"):
			status = http.StatusBadRequest
		case errwrap.Contains(err, logical.ErrUnsupportedOperation.Error()):
			status = http.StatusMethodNotAllowed
		case errwrap.Contains(err, logical.ErrUnsupportedPath.Error()):
			status = http.StatusNotFound
		case errwrap.Contains(err, logical.ErrInvalidRequest.Error()):
			status = http.StatusBadRequest
		case errwrap.Contains(err, logical.ErrUpstreamRateLimited.Error()):
			status = http.StatusBadGateway
		case errwrap.Contains(err, logical.ErrRateLimitQuotaExceeded.Error()):
			status = http.StatusTooManyRequests
		case errwrap.Contains(err, logical.ErrLeaseCountQuotaExceeded.Error()):
			status = http.StatusTooManyRequests
		case errwrap.Contains(err, logical.ErrMissingRequiredState.Error()):
			status = http.StatusPreconditionFailed
		case errwrap.Contains(err, "functionality on this path has been removed"):
			status = http.StatusNotFound
		case errwrap.Contains(err, "relative paths not supported"):
			status = http.StatusBadRequest
		case errwrap.Contains(err, logical.ErrInvalidCredentials.Error()):
			status = http.StatusBadRequest
			// errors.Is(err, logical.ErrNotFound) (404) is left out: that
			// sentinel does not cross the plugin's gRPC boundary (the
			// SDK's pb translation makes it a plain error), so it never
			// matches for a plugin in Vault either.
		}
	}
	if resp != nil && resp.IsError() {
		respErr := resp.Error()
		err = errors.New(respErr.Error())
		if strings.Contains(respErr.Error(), "overloaded, try again later") {
			status = http.StatusServiceUnavailable
		}
	}
	return status, err
}

// adjustStatus is logical.AdjustErrorStatusCode of sdk v0.20.0, which
// Vault's respondError applies last: a coded error anywhere in a
// multierror sets the status.
func adjustStatus(status *int, err error) {
	var merr *multierror.Error
	if errors.As(err, &merr) && merr == err {
		for _, e := range merr.Errors {
			adjustStatus(status, e)
		}
	}
	for _, s := range []string{"overloaded, try again later", "Vault is sealed", "API access to this namespace has been locked by an administrator"} {
		if errwrap.Contains(err, s) {
			*status = http.StatusServiceUnavailable
		}
	}
	if errwrap.Contains(err, "http: request body too large") {
		*status = http.StatusRequestEntityTooLarge
	}
	if coded, ok := err.(logical.HTTPCodedError); ok {
		*status = coded.Code()
	}
}

// saltID is the client token as the router hands it to a mount's backend
// (router.go routeEntry.SaltID): hashed with the mount's UUID, so a
// plugin never sees a usable token.
func saltID(mountUUID, token string) string {
	return salt.SaltID(mountUUID, token, salt.SHA1Hash)
}

// isLoginPath reports whether path is one of the backend's unauthenticated
// paths, matched as router.go specialPath matches them: the longest entry
// that prefixes path decides when it is a prefix entry ("login*") or equal
// to path; otherwise the entries with "+" wildcards are tried.
func (m *Mount) isLoginPath(path string) bool {
	var best string
	var bestPrefix, found bool
	var wildcards [][]string
	var wildcardPrefix []bool
	for _, p := range m.inst.state().loginPaths {
		prefix := strings.HasSuffix(p, "*")
		p = strings.TrimSuffix(p, "*")
		if strings.Contains(p, "+") {
			wildcards = append(wildcards, strings.Split(p, "/"))
			wildcardPrefix = append(wildcardPrefix, prefix)
			continue
		}
		if strings.HasPrefix(path, p) && (!found || len(p) > len(best)) {
			best, bestPrefix, found = p, prefix, true
		}
	}
	if found && (bestPrefix || best == path) {
		return true
	}
	parts := strings.Split(path, "/")
	for i, w := range wildcards {
		if matchesWildcard(parts, w, wildcardPrefix[i]) {
			return true
		}
	}
	return false
}

// matchesWildcard is router.go pathMatchesWildcardPath.
func matchesWildcard(path, wc []string, prefix bool) bool {
	if len(wc) == 0 || len(path) < len(wc) || (!prefix && len(wc) != len(path)) {
		return false
	}
	for i, part := range wc {
		switch {
		case part == "+", part == path[i]:
		case prefix && i == len(wc)-1 && strings.HasPrefix(path[i], part):
		default:
			return false
		}
	}
	return true
}

// setMountInfo sets the mount's running version and sha256, its class and
// that it is an external plugin, where the SDK the test builds with has
// those fields: sdk v0.6.2, the module's floor, has none of them.
func setMountInfo(req *logical.Request, version, sha256, class string) {
	r := any(req)
	if s, ok := r.(interface{ SetMountRunningVersion(string) }); ok {
		s.SetMountRunningVersion(version)
	}
	if s, ok := r.(interface{ SetMountRunningSha256(string) }); ok {
		s.SetMountRunningSha256(sha256)
	}
	if s, ok := r.(interface{ SetMountIsExternalPlugin(bool) }); ok {
		s.SetMountIsExternalPlugin(true)
	}
	if s, ok := r.(interface{ SetMountClass(string) }); ok {
		s.SetMountClass(class)
	}
}

// setMountType sets the response's MountType, which Vault's API shows as
// "mount_type", where the SDK has the field (sdk v0.6.2 has not).
func setMountType(resp *logical.Response, typ string) {
	if f := reflect.ValueOf(resp).Elem().FieldByName("MountType"); f.IsValid() && f.Kind() == reflect.String && f.CanSet() {
		f.SetString(typ)
	}
}

// cleanPath is net/http's cleanPath (server.go), which ServeMux redirects
// to when a request's path differs from it.
func cleanPath(p string) string {
	np := pathpkg.Clean(p)
	if strings.HasSuffix(p, "/") && np != "/" {
		if len(p) == len(np)+1 && strings.HasPrefix(p, np) {
			np = p
		} else {
			np += "/"
		}
	}
	return np
}
