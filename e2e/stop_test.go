package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestStopUnderLoad: the plugin process gets SIGTERM while eight clients
// stream reads through the host's HTTP API over two mounts it serves.
// Requests that arrive once the stop began are held back until every
// backend is cleaned up, then refused with the text the host answers by
// replacing the process and sending the request again: every request sent
// after the signal must be answered 200, none may reach a backend after
// its Cleanup (the test plugin records any that does), and a new process
// must serve.
func TestStopUnderLoad(t *testing.T) {
	eachHost(t, "SIGTERM under load: every request answered", nil, func(t *testing.T, h *host) {
		v := startVault(t, h, "testplugin")
		violations := filepath.Join(t.TempDir(), "violations")
		if out, err := v.register("secret", "stopper", "testplugin", "", "-env=TESTPLUGIN_STOP_FILE="+violations); err != nil {
			t.Fatalf("register: %v\n%s", err, out)
		}
		paths := []string{"s1/work", "s2/work"}
		for _, p := range paths {
			v.must("secrets", "enable", "-path="+strings.TrimSuffix(p, "/work"), "stopper")
			v.must("read", p)
		}
		pids := pluginPIDs(v.pluginDir)
		if len(pids) != 1 {
			t.Fatalf("plugin processes %v, want one serving both mounts", pids)
		}

		var (
			signalled         atomic.Bool
			okBefore, okAfter atomic.Int64
			mu                sync.Mutex
			failures          []string
			stop              = make(chan struct{})
			wg                sync.WaitGroup
		)
		for c := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					after := signalled.Load()
					status, body := get(v.addr+"/v1/"+paths[(c+i)%len(paths)], rootToken)
					switch {
					case status == http.StatusOK && after:
						okAfter.Add(1)
					case status == http.StatusOK:
						okBefore.Add(1)
					default:
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%d %s (sent after SIGTERM: %v)", status, body, after))
						mu.Unlock()
					}
				}
			}()
		}
		eventually(t, 30*time.Second, func() error {
			if n := okBefore.Load(); n < 200 {
				return fmt.Errorf("%d requests answered before SIGTERM", n)
			}
			return nil
		})
		signalled.Store(true)
		if err := syscall.Kill(pids[0], syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, func() error {
			now := pluginPIDs(v.pluginDir)
			if slices.Contains(now, pids[0]) && !zombie(pids[0]) {
				return fmt.Errorf("process %d still runs", pids[0])
			}
			if n := okAfter.Load(); n < 200 {
				return fmt.Errorf("%d requests answered after SIGTERM", n)
			}
			return nil
		})
		close(stop)
		wg.Wait()

		if len(failures) > 0 {
			t.Errorf("%d requests failed (%d answered after SIGTERM), first: %s", len(failures), okAfter.Load(), failures[0])
		}
		if b, _ := os.ReadFile(violations); len(b) > 0 {
			t.Errorf("calls reached a backend after its Cleanup:\n%s", b)
		}
		if now := pluginPIDs(v.pluginDir); len(now) != 1 || now[0] == pids[0] {
			t.Errorf("plugin processes after the stop %v (stopped %d)", now, pids[0])
		}
		t.Logf("%d requests answered before SIGTERM, %d after", okBefore.Load(), okAfter.Load())
	})
}

// get reads path with token and returns the status and the body's first
// line.
func get(url, token string) (int, string) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("X-Vault-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return resp.StatusCode, line
}
