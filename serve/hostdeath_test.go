//go:build unix

// Unix only: it kills by pid with SIGKILL and waits on the plugin through
// waitGone (signals_unix_test.go). On Windows the plugin watches its
// host's process handle instead (internal/server/stop_windows.go).

package serve_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

// fakeHostEnv makes the test binary act as a host: it starts the plugin
// named by the variable, prints the plugin's pid and waits to be killed.
const fakeHostEnv = "SERVE_TEST_FAKE_HOST"

func TestMain(m *testing.M) {
	if bin := os.Getenv(fakeHostEnv); bin != "" {
		p, err := servetest.New(context.Background(), bin)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		if _, err := p.NewMount(context.Background(), nil); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(p.PID())
		select {}
	}
	os.Exit(m.Run())
}

// TestHostKilled: Vault killed with SIGKILL cannot stop its plugins; the
// plugin must notice and exit by itself within two seconds.
func TestHostKilled(t *testing.T) {
	bin := servetest.Build(t, testPlugin)
	host := exec.Command(os.Args[0], "-test.run=^$")
	host.Env = append(os.Environ(), fakeHostEnv+"="+bin)
	out, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	host.Stderr = os.Stderr
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Process.Kill(); _ = host.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	pid, convErr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || convErr != nil {
		t.Fatalf("fake host said %q (%v)", line, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	if err := host.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = host.Wait()
	took := waitGone(t, pid, 2*time.Second)
	t.Logf("plugin %d exited %s after its host was killed", pid, took.Round(time.Millisecond))
}
