package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	sdkplugin "github.com/hashicorp/vault/sdk/plugin"
	"google.golang.org/grpc/status"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// roundTrip sends a fresh mount the requests Vault's router would: the
// root help (as `vault path-help` does), then a read, or a list, of a
// path the backend's OpenAPI document names, preferring one without
// parameters. An error the backend returns (unsupported path, bad
// request) still proves the round trip; a transport error does not.
func roundTrip(ctx context.Context, be logical.Backend, proc *servetest.Process) Result {
	ctx, cancel := context.WithTimeout(ctx, RequestBound)
	defer cancel()
	help, err := be.HandleRequest(ctx, &logical.Request{Operation: logical.HelpOperation, Path: ""})
	if transportFailed(err) {
		return requestFailure("help on the root path", err, proc)
	}
	path, op := pickPath(help)
	start := time.Now()
	resp, err := be.HandleRequest(ctx, &logical.Request{Operation: op, Path: path})
	if transportFailed(err) {
		return requestFailure(fmt.Sprintf("%s %q", op, path), err, proc)
	}
	return Result{ID: idRequest, Status: Pass,
		Detail: fmt.Sprintf("%s %q on a fresh mount answered in %s: %s", op, path, time.Since(start).Round(time.Millisecond), describeResponse(resp, err))}
}

// transportFailed reports whether err is the gRPC call failing, rather
// than the backend answering with an error.
func transportFailed(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, sdkplugin.ErrPluginShutdown) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	_, isStatus := status.FromError(err)
	return isStatus
}

func requestFailure(what string, err error, proc *servetest.Process) Result {
	r := Result{ID: idRequest, Status: Fail, Detail: what + " failed: " + firstLine(err.Error()),
		Fix: "answer requests: the plugin's stderr says what went wrong"}
	var raw []string
	for _, rec := range proc.Logs() {
		raw = append(raw, rec.Raw)
	}
	if p := panicLine(raw); p != "" {
		r.Detail += "; the plugin crashed: " + quote(p)
		r.Fix = "fix the panic in the request's handler: its stack is on the plugin's stderr"
	} else if errors.Is(err, context.DeadlineExceeded) {
		r.Fix = fmt.Sprintf("answer within %s: the handler blocks", RequestBound)
	}
	return r
}

// describeResponse says what a request got back, briefly.
func describeResponse(resp *logical.Response, err error) string {
	switch {
	case err != nil:
		return "an error, " + quote(firstLine(err.Error()))
	case resp == nil:
		return "no response (nothing stored there)"
	case resp.IsError():
		return "an error response, " + quote(resp.Error().Error())
	case len(resp.Data) == 0:
		return "a response without data"
	}
	keys := make([]string, 0, len(resp.Data))
	for k := range resp.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return "data with " + strings.Join(keys, ", ")
}

// pickPath chooses the path to send from the backend's root help: a path
// its OpenAPI document lists with a GET, by preference a read without
// parameters, then a list without parameters (a GET with a "list"
// parameter), then one with parameters, filled in; the first by name of
// the best kind. Without a document (a backend not built on the SDK's
// framework) it is a read of the root path, which a backend answers even
// if only with "unsupported path".
func pickPath(help *logical.Response) (string, logical.Operation) {
	if help == nil || help.Data["openapi"] == nil {
		return "", logical.ReadOperation
	}
	raw, err := json.Marshal(help.Data["openapi"])
	if err != nil {
		return "", logical.ReadOperation
	}
	var doc struct {
		Paths map[string]struct {
			Get *struct {
				Parameters []struct {
					Name string `json:"name"`
				} `json:"parameters"`
			} `json:"get"`
		} `json:"paths"`
	}
	if json.Unmarshal(raw, &doc) != nil {
		return "", logical.ReadOperation
	}
	type candidate struct {
		rank int // 0 a plain read, 1 a plain list, 2 with parameters
		path string
		op   logical.Operation
	}
	var best *candidate
	for p, item := range doc.Paths {
		if item.Get == nil {
			continue
		}
		c := candidate{path: p, op: logical.ReadOperation}
		for _, param := range item.Get.Parameters {
			if param.Name == "list" {
				c.op, c.rank = logical.ListOperation, 1
			}
		}
		filled, hasParams := fillParams(p)
		if hasParams {
			c.rank = 2
		}
		c.path = strings.TrimPrefix(filled, "/")
		if best == nil || c.rank < best.rank || c.rank == best.rank && c.path < best.path {
			best = &c
		}
	}
	if best == nil {
		return "", logical.ReadOperation
	}
	return best.path, best.op
}

// fillParams fills each parameter of an OpenAPI path template ({name})
// with a value no backend is likely to hold, and reports whether there
// was any.
func fillParams(p string) (string, bool) {
	var b strings.Builder
	templated := false
	for {
		i := strings.IndexByte(p, '{')
		j := strings.IndexByte(p[max(i, 0):], '}')
		if i < 0 || j < 0 {
			b.WriteString(p)
			return b.String(), templated
		}
		b.WriteString(p[:i])
		b.WriteString("vaultplugin-check")
		p = p[i+j+1:]
		templated = true
	}
}
