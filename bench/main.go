// Command bench measures the example secrets engine served by a bare SDK
// main (the docs' ServeMultiplex snippet) and by serve.Run, built in the same
// run and measured interleaved, and prints each figure with its ratio to
// the bare SDK:
//
//	go run ./bench
//
// Ratios, not absolute times, are the result: the machines are shared and
// noisy, and interleaving exposes both binaries to the same noise.
//
// Both binaries are built with bench/bench.mod, which pins the SDK plugin
// authors build with today (vault/sdk v0.25.1, vault/api v1.22.0, go-plugin
// v1.8.0), not go.mod's floor: the docs' bare main cannot start under
// AutoMTLS with the floor's vault/api (v1.5.0), whose TLS provider does not
// read VAULT_PLUGIN_AUTOMTLS_ENABLED and tries to unwrap a token the host
// never sent. Update bench.mod with go mod tidy -modfile=bench/bench.mod.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

func main() {
	rounds := flag.Int("rounds", 30, "handshakes measured per binary (the median is reported)")
	requests := flag.Int("requests", 10000, "requests per throughput run")
	mounts := flag.Int("mounts", 50, "mounts for the memory comparison")
	flag.Parse()
	if err := run(*rounds, *requests, *mounts); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type subject struct{ name, bin string }

// modfile is the go flag that builds both binaries with bench.mod.
const modfile = "-modfile=bench/bench.mod"

func run(rounds, requests, mounts int) error {
	dir, err := os.MkdirTemp("", "vaultplugin-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pkgs := []subject{{"bare SDK", "./bench/internal/bare"}, {"serve.Run", "./bench/internal/ours"}}
	var subjects []subject
	res := map[string]map[string]float64{}
	for _, s := range pkgs {
		out, size, err := build(dir, filepath.Base(s.bin), s.bin)
		if err != nil {
			return err
		}
		subjects = append(subjects, subject{s.name, out})
		res[s.name] = map[string]float64{"binary size (MiB)": size}
	}
	ctx := context.Background()
	// The same binaries stripped, as release builds are, and serve.Run
	// without the operator endpoint (-tags vaultplugin_noendpoint); the
	// bare SDK main is the same build in both rows, so each ratio is the
	// cost of that variant.
	for _, v := range []struct {
		figure string
		flags  []string
	}{
		{"binary size, -ldflags=-s -w (MiB)", []string{"-ldflags=-s -w"}},
		{"binary size, -s -w, no endpoint (MiB)", []string{"-ldflags=-s -w", "-tags=vaultplugin_noendpoint"}},
	} {
		for _, s := range pkgs {
			_, size, err := build(dir, "variant", s.bin, v.flags...)
			if err != nil {
				return err
			}
			res[s.name][v.figure] = size
		}
	}

	// Handshakes, alternating binaries so both see the same noise.
	hs := map[string][]float64{}
	for i := 0; i < rounds; i++ {
		for _, s := range subjects {
			p, err := servetest.New(ctx, s.bin)
			if err != nil {
				return err
			}
			hs[s.name] = append(hs[s.name], float64(p.HandshakeTime().Microseconds())/1000)
			_ = p.Close()
		}
	}
	for n, v := range hs {
		res[n]["exec to handshake, median (ms)"] = median(v)
	}

	// Exec to the handshake line alone, without TLS (metadata mode): the
	// process's start-up cost, which is what serve.Run adds to.
	lines := map[string][]float64{}
	for i := 0; i < 2*rounds; i++ {
		for _, s := range subjects {
			ms, err := execToHandshake(s.bin)
			if err != nil {
				return err
			}
			lines[s.name] = append(lines[s.name], ms)
		}
	}
	for n, v := range lines {
		res[n]["exec to handshake line, no TLS, median (ms)"] = median(v)
	}

	// Round trips and throughput through the gRPC boundary, then RSS.
	type live struct {
		p *servetest.Plugin
		m *servetest.Mount
	}
	lives := map[string]live{}
	for _, s := range subjects {
		p, err := servetest.New(ctx, s.bin)
		if err != nil {
			return err
		}
		defer p.Close()
		m, err := p.NewMount(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := m.HandleRequest(ctx, &logical.Request{Operation: logical.CreateOperation, Path: "data/k", Data: map[string]any{"v": "x"}}); err != nil {
			return err
		}
		lives[s.name] = live{p, m}
	}
	for round := 0; round < 3; round++ {
		for _, s := range subjects {
			l := lives[s.name]
			lat, err := roundTrips(ctx, l.m, requests/10)
			if err != nil {
				return err
			}
			res[s.name]["round trip c=1, median (µs)"] += lat / 3
			for _, c := range []int{1, 16} {
				rps, err := throughput(ctx, l.m, requests, c)
				if err != nil {
					return err
				}
				res[s.name][fmt.Sprintf("throughput c=%d (req/s)", c)] += rps / 3
			}
		}
	}
	for _, s := range subjects {
		res[s.name]["RSS after the requests (MiB)"] = rssMiB(lives[s.name].p.PID())
	}

	// Memory: many mounts in one process versus one process per mount.
	for _, s := range subjects {
		p, err := servetest.New(ctx, s.bin)
		if err != nil {
			return err
		}
		for i := 0; i < mounts; i++ {
			if _, err := p.NewMount(ctx, nil); err != nil {
				return err
			}
		}
		res[s.name][fmt.Sprintf("%d mounts, 1 process: RSS (MiB)", mounts)] = rssMiB(p.PID())
		_ = p.Close()

		var total float64
		var ps []*servetest.Plugin
		for i := 0; i < mounts; i++ {
			p, err := servetest.New(ctx, s.bin)
			if err != nil {
				return err
			}
			ps = append(ps, p)
			if _, err := p.NewMount(ctx, nil); err != nil {
				return err
			}
		}
		for _, p := range ps {
			total += rssMiB(p.PID())
			_ = p.Close()
		}
		res[s.name][fmt.Sprintf("%d mounts, %d processes: RSS (MiB)", mounts, mounts)] = total
	}

	print(res)
	return nil
}

// build builds pkg with bench.mod and flags into dir/name and returns its
// path and size in MiB.
func build(dir, name, pkg string, flags ...string) (path string, mib float64, err error) {
	path = filepath.Join(dir, name)
	args := append(append([]string{"build", modfile, "-o", path}, flags...), pkg)
	if b, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return "", 0, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	return path, float64(st.Size()) / (1 << 20), nil
}

// execToHandshake starts bin as a host in metadata mode would (the
// cookie, no TLS) and returns the time until it printed its handshake
// line, then kills it.
func execToHandshake(bin string) (float64, error) {
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"VAULT_BACKEND_PLUGIN=6669da05-b1c8-4f49-97d9-c8e5bed98e20",
		"VAULT_PLUGIN_METADATA_MODE=true",
		"VAULT_PLUGIN_AUTOMTLS_ENABLED=false",
		"PLUGIN_PROTOCOL_VERSIONS=4,5",
		"TMPDIR=" + os.TempDir(),
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	took := time.Since(start)
	if err != nil || strings.Count(line, "|") < 4 {
		return 0, fmt.Errorf("%s: no handshake line (%q): %v", bin, line, err)
	}
	return float64(took.Microseconds()) / 1000, nil
}

func roundTrips(ctx context.Context, m *servetest.Mount, n int) (float64, error) {
	lat := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := m.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "data/k"}); err != nil {
			return 0, err
		}
		lat = append(lat, float64(time.Since(start).Nanoseconds())/1000)
	}
	return median(lat), nil
}

func throughput(ctx context.Context, m *servetest.Mount, n, c int) (float64, error) {
	var wg sync.WaitGroup
	errs := make(chan error, c)
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/c; i++ {
				if _, err := m.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "data/k"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(n/c*c) / time.Since(start).Seconds(), nil
}

func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// print shows each figure and the ratio serve.Run / bare SDK. For
// throughput a ratio above 1 is better; for everything else, below 1.
func print(res map[string]map[string]float64) {
	var keys []string
	for k := range res["bare SDK"] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Printf("%-44s %12s %12s %8s\n", "figure", "bare SDK", "serve.Run", "ratio")
	for _, k := range keys {
		b, o := res["bare SDK"][k], res["serve.Run"][k]
		ratio := 0.0
		if b != 0 {
			ratio = o / b
		}
		fmt.Printf("%-44s %12.2f %12.2f %8.3f\n", k, b, o, ratio)
	}
	fmt.Println("\nratio = serve.Run / bare SDK; for throughput higher is better, for the rest lower is better.")
}
