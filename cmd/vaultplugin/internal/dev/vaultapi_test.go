package dev

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// What an error says when something other than Vault answers (a proxy, a
// load balancer), and when Vault itself does.
func TestCallErrors(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, c := range []struct {
		name        string
		code        int
		contentType string
		body        string
		want        string
	}{
		{"nginx", 502, "text/html", "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
			"PUT sys/x: Vault answered 502: 502 Bad Gateway"},
		{"plain", 503, "text/plain", "\n  upstream connect error or disconnect/reset before headers  \nreset reason: connection failure\n",
			"PUT sys/x: Vault answered 503: upstream connect error or disconnect/reset before headers"},
		{"long", 502, "text/plain", long + "\nmore", "PUT sys/x: Vault answered 502: " + long[:maxLine] + "…"},
		{"empty", 502, "", "", "PUT sys/x: Vault answered 502 with an empty body"},
		{"foreign JSON", 502, "application/json", `{"message":"An invalid response was received from the upstream server"}`,
			`PUT sys/x: Vault answered 502: {"message":"An invalid response was received from the upstream server"}`},
		{"Vault", 400, "application/json", `{"errors":["1 error occurred:\n\t* no such plugin\n\n", "two"]}`,
			"PUT sys/x: Vault answered 400: 1 error occurred:\n\t* no such plugin; two"},
		{"Vault without a message", 404, "application/json", `{"errors":[]}`, "PUT sys/x: Vault answered 404 with no error message"},
		{"success that is no JSON", 200, "text/html", "<html><body>Sign in</body></html>", "PUT sys/x: Vault answered 200, not with JSON: Sign in"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.contentType != "" {
					w.Header().Set("Content-Type", c.contentType)
				}
				w.WriteHeader(c.code)
				_, _ = io.WriteString(w, c.body)
			}))
			defer srv.Close()
			v := &vault{addr: srv.URL, token: "tok", client: srv.Client()}
			_, err := v.call(context.Background(), "PUT", "sys/x", nil)
			if err == nil || err.Error() != c.want {
				t.Errorf("error %q, want %q", err, c.want)
			}
		})
	}
}

// An answer cut short says so, with the status that came before it.
func TestCallBodyFailsToRead(t *testing.T) {
	srv := httptest.NewServer(cutShort(http.StatusBadGateway))
	defer srv.Close()
	v := &vault{addr: srv.URL, token: "tok", client: srv.Client()}
	_, err := v.call(context.Background(), "PUT", "sys/x", nil)
	const want = "PUT sys/x: Vault answered 502, and reading the answer failed: unexpected EOF"
	if err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// cutShort answers code with a body shorter than its Content-Length, then
// drops the connection.
func cutShort(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "<html>")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
}

// A database plugin is mounted through the database engine: enabled at
// the path unless it is there already, refused when another engine is,
// and its connection configured with the plugin's name and version.
func TestMountDatabase(t *testing.T) {
	p := plugin{name: "mydb", typ: "database", version: "v0.1.0"}
	for _, c := range []struct {
		name    string
		mounts  string // sys/mounts' data
		want    []string
		wantErr string
	}{
		{"no engine yet", `{"secret/":{"type":"kv"}}`, []string{"GET sys/mounts", `POST sys/mounts/db {"type":"database"}`, `PUT db/config/mydb {"allowed_roles":"*","plugin_name":"mydb","plugin_version":"v0.1.0"}`}, ""},
		{"the engine is there", `{"db/":{"type":"database"}}`, []string{"GET sys/mounts", `PUT db/config/mydb {"allowed_roles":"*","plugin_name":"mydb","plugin_version":"v0.1.0"}`}, ""},
		{"another engine is there", `{"db/":{"type":"kv"}}`, []string{"GET sys/mounts"}, "db/ is a kv secrets engine, not the database engine: give -path another MOUNT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				got = append(got, strings.TrimSpace(r.Method+" "+strings.TrimPrefix(r.URL.Path, "/v1/")+" "+string(body)))
				w.Header().Set("Content-Type", "application/json")
				if r.URL.Path == "/v1/sys/mounts" && r.Method == "GET" {
					_, _ = io.WriteString(w, `{"data":`+c.mounts+`}`)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			v := &vault{addr: srv.URL, token: "tok", client: srv.Client()}
			ctx := context.Background()
			err := v.mount(ctx, p, "db")
			if err == nil {
				err = v.connect(ctx, p, "db")
			}
			if (err == nil) != (c.wantErr == "") || err != nil && err.Error() != c.wantErr {
				t.Errorf("error %v, want %q", err, c.wantErr)
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}
