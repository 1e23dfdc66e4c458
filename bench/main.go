// Command bench measures the example secrets engine served by a bare SDK
// main (the docs' ServeMultiplex snippet) and by serve.Run, built in the same
// run and measured interleaved, and prints each figure with its ratio to
// the bare SDK:
//
//	go run ./bench          # every figure
//	go run ./bench -size    # the sizes and sha256 at launch only (~1 min)
//	go run ./bench -enable  # secrets enable to first answer through Vault 1.21.0: go build vs release builds
//
// Ratios, not absolute times, are the result: the machines are shared and
// noisy, and interleaving exposes both binaries to the same noise.
//
// Size is stated twice: in bytes, and in the milliseconds Vault spends on
// it at every start of a plugin process, where it hashes the whole binary
// with sha256 to check it against its catalog (go-plugin's
// SecureConfig.Check, which bench runs itself; see hashAll). Both are
// measured for three builds (default; stripped with -ldflags=-s -w, as
// release builds are; stripped with -tags vaultplugin_noendpoint) of two
// backends: the example engine, and HashiCorp's KV engine, whose own main
// is the docs' bare main, built from the module in bench/kv. README.md
// beside this file has the figures measured and how to read them.
//
// The example's binaries are built with bench/bench.mod, which pins the SDK
// plugin authors build with today (vault/sdk v0.25.1, vault/api v1.22.0,
// go-plugin v1.8.0), not go.mod's floor: the docs' bare main cannot start
// under AutoMTLS with the floor's vault/api (v1.5.0), whose TLS provider
// does not read VAULT_PLUGIN_AUTOMTLS_ENABLED and tries to unwrap a token
// the host never sent. Update bench.mod with go mod tidy
// -modfile=bench/bench.mod. bench/kv/go.mod pins the same SDK, so that the
// library's go.mod never requires the KV engine; update it with go mod tidy
// in that folder.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/plugkit/vaultplugin/serve/servetest"
)

func main() {
	rounds := flag.Int("rounds", 30, "handshakes measured per binary (the median is reported)")
	hashes := flag.Int("hashes", 100, "sha256 checks measured per binary (the median is reported)")
	requests := flag.Int("requests", 10000, "requests per throughput run")
	mounts := flag.Int("mounts", 50, "mounts for the memory comparison")
	sizeOnly := flag.Bool("size", false, "only the binary sizes and the sha256 at launch (starts no plugin)")
	enable := flag.Bool("enable", false, "only secrets enable to the first answer through Vault 1.21.0: go build against release builds")
	flag.Parse()
	if *enable {
		if err := runEnable(*rounds); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*rounds, *hashes, *requests, *mounts, *sizeOnly); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// The two sides of every figure.
const (
	bareSDK  = "bare SDK"
	serveRun = "serve.Run"
)

type subject struct{ name, bin string }

// modfile is the go flag that builds the example's binaries with bench.mod.
const modfile = "-modfile=bench/bench.mod"

// A backend is served both ways: by its bare SDK main and by serve.Run.
type backend struct {
	prefix     string   // of its figures' names
	dir        string   // where go build runs; "" is the repository's root
	flags      []string // go build flags both binaries take
	bare, ours string   // the packages of the two mains
}

var backends = []backend{
	// The example secrets engine: every figure.
	{"", "", []string{modfile}, "./bench/internal/bare", "./bench/internal/ours"},
	// HashiCorp's KV engine, a real engine's size: its own main (the docs'
	// bare main) against serve.Run, from the module in bench/kv.
	{"KV engine: ", "bench/kv", nil, "github.com/hashicorp/vault-plugin-secrets-kv/cmd/vault-plugin-secrets-kv", "./ours"},
}

// The builds whose size (and sha256 time) is measured: as go build makes
// them; stripped, as release builds are; stripped and without the operator
// endpoint (-tags vaultplugin_noendpoint). The bare SDK main is the same
// build in the last two, so each ratio is the cost of that variant.
var variants = []struct {
	name, suffix string // suffix: of the figures' names
	flags        []string
}{
	{"default", "", nil},
	{"stripped", ", -ldflags=-s -w", []string{"-ldflags=-s -w"}},
	{"noendpoint", ", -s -w, no endpoint", []string{"-ldflags=-s -w", "-tags=vaultplugin_noendpoint"}},
}

func run(rounds, hashes, requests, mounts int, sizeOnly bool) error {
	dir, err := os.MkdirTemp("", "vaultplugin-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	res := newTable()

	// Every build of every backend, both ways; their sizes, then the time
	// Vault spends hashing each before it starts it.
	var subjects []subject // the example's default builds, started below
	var files []hashed
	for bi, b := range backends {
		for _, v := range variants {
			// In this order: hashAll takes files as (bare, ours) pairs.
			for _, side := range []struct{ name, pkg string }{{bareSDK, b.bare}, {serveRun, b.ours}} {
				out := filepath.Join(dir, fmt.Sprintf("%d-%s-%s", bi, v.name, filepath.Base(side.pkg)))
				size, err := build(b.dir, out, side.pkg, append(append([]string(nil), b.flags...), v.flags...)...)
				if err != nil {
					return err
				}
				res.add(b.prefix+"binary size"+v.suffix+" (MiB)", side.name, size)
				files = append(files, hashed{b.prefix + "sha256 at launch" + v.suffix + ", median (ms)", side.name, out, nil})
				if bi == 0 && v.name == "default" {
					subjects = append(subjects, subject{side.name, out})
				}
			}
		}
	}
	if err := hashAll(res, files, hashes); err != nil {
		return err
	}
	if sizeOnly {
		res.print()
		return nil
	}
	ctx := context.Background()

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
	for _, s := range subjects {
		res.add("exec to handshake, median (ms)", s.name, median(hs[s.name]))
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
	for _, s := range subjects {
		res.add("exec to handshake line, no TLS, median (ms)", s.name, median(lines[s.name]))
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
			res.add("round trip c=1, median (µs)", s.name, lat/3)
			for _, c := range []int{1, 16} {
				rps, err := throughput(ctx, l.m, requests, c)
				if err != nil {
					return err
				}
				res.add(fmt.Sprintf("throughput c=%d (req/s)", c), s.name, rps/3)
			}
		}
	}
	for _, s := range subjects {
		res.add("RSS after the requests (MiB)", s.name, rssMiB(lives[s.name].p.PID()))
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
		res.add(fmt.Sprintf("%d mounts, 1 process: RSS (MiB)", mounts), s.name, rssMiB(p.PID()))
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
		res.add(fmt.Sprintf("%d mounts, %d processes: RSS (MiB)", mounts, mounts), s.name, total)
	}

	res.print()
	return nil
}

// A hashed binary: the figure its sha256 time goes to, and its checksum.
type hashed struct {
	figure, side, path string
	sum                []byte
}

// hashAll measures, for every file, what Vault does before each start of
// a plugin process: go-plugin's Client.Start calls SecureConfig.Check on
// the command's path, with the checksum from Vault's catalog and a fresh
// sha256.New() (vault/sdk's helper/pluginutil/run_config.go); Check opens
// the file and io.Copy's all of it into the hash. The same function runs
// here, rounds times per file; each figure is its file's median.
//
// Each file is first recached, so that it sits in the page cache as a
// binary Vault has read before does (Vault starts a plugin at registration
// too): the figure is the hashing itself; a cold cache adds the disk read
// of the same bytes.
//
// files holds pairs, the bare SDK's build then serve.Run's of the same
// backend and variant. Each round times every pair back to back, the
// pairs in an order that rotates and the two halves of a pair in an order
// that alternates from round to round, so that both halves see the same
// load: the ratio is the median of the pairs' ratios, steadier on a busy
// machine than the ratio of two medians.
func hashAll(res *table, files []hashed, rounds int) error {
	for i := range files {
		f, err := os.Open(files[i].path)
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
		files[i].sum = h.Sum(nil)
		if err := recache(files[i].path); err != nil {
			return err
		}
	}
	ms := make([][]float64, len(files))
	ratios := make([][]float64, len(files)/2)
	timeCheck := func(f hashed) (float64, error) {
		sc := &goplugin.SecureConfig{Checksum: f.sum, Hash: sha256.New()}
		start := time.Now()
		ok, err := sc.Check(f.path)
		took := time.Since(start)
		if err == nil && !ok {
			err = fmt.Errorf("%s: checksum changed while measuring", f.path)
		}
		return float64(took.Microseconds()) / 1000, err
	}
	for r := 0; r < rounds; r++ {
		for j := range ratios {
			p := (j + r) % len(ratios)
			first, second := 2*p, 2*p+1
			if r%2 == 1 {
				first, second = second, first
			}
			a, err := timeCheck(files[first])
			if err != nil {
				return err
			}
			b, err := timeCheck(files[second])
			if err != nil {
				return err
			}
			ms[first], ms[second] = append(ms[first], a), append(ms[second], b)
			bare, ours := a, b
			if r%2 == 1 {
				bare, ours = b, a
			}
			ratios[p] = append(ratios[p], ours/bare)
		}
	}
	for i, f := range files {
		res.add(f.figure, f.side, median(ms[i]))
	}
	for p := range ratios {
		res.ratio[files[2*p].figure] = median(ratios[p])
	}
	return nil
}

// build builds pkg in dir ("" for the repository's root) with flags into
// out (an absolute path) and returns its size in MiB.
func build(dir, out, pkg string, flags ...string) (mib float64, err error) {
	args := append(append([]string{"build", "-o", out}, flags...), pkg)
	if dir != "" {
		args = append([]string{"build", "-C", dir}, args[1:]...)
	}
	if b, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	st, err := os.Stat(out)
	if err != nil {
		return 0, err
	}
	return float64(st.Size()) / (1 << 20), nil
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

// A table holds each figure for both sides, in the order first added.
type table struct {
	order []string
	v     map[string]map[string]float64 // figure → side → value
	ratio map[string]float64            // figure → ratio, when measured apart
}

func newTable() *table {
	return &table{v: map[string]map[string]float64{}, ratio: map[string]float64{}}
}

// add adds x to a figure of one side (a new figure starts at 0).
func (t *table) add(figure, side string, x float64) {
	if t.v[figure] == nil {
		t.order = append(t.order, figure)
		t.v[figure] = map[string]float64{}
	}
	t.v[figure][side] += x
}

// print shows each figure and the ratio serve.Run / bare SDK. For
// throughput a ratio above 1 is better; for everything else, below 1.
func (t *table) print() {
	fmt.Printf("%-60s %12s %12s %8s\n", "figure", bareSDK, serveRun, "ratio")
	for _, k := range t.order {
		b, o := t.v[k][bareSDK], t.v[k][serveRun]
		ratio, ok := t.ratio[k]
		if !ok && b != 0 {
			ratio = o / b
		}
		fmt.Printf("%-60s %12.2f %12.2f %8.3f\n", k, b, o, ratio)
	}
	fmt.Println("\nratio = serve.Run / bare SDK; for throughput higher is better, for the rest lower is better.")
}
