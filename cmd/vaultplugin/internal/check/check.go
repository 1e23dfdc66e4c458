// Package check is `vaultplugin check`: it starts a Vault plugin binary the
// way Vault does, in every way an operator's Vault may start it, and
// reports what works and what to fix. The command's documentation
// describes each check and the report's JSON form.
package check

import (
	"context"
	"sync"
	"time"
)

// Bounds. Each is far above what a healthy plugin needs, and far below
// what makes a check of a broken one tedious to wait for.
const (
	// HandshakeBound bounds each start up to the handshake. Vault waits a
	// minute (go-plugin's default StartTimeout), but a plugin answers in
	// milliseconds (about 10 ms here), and every mount, unseal and reload
	// waits on its start: a plugin that needs seconds is already a
	// problem, and a check must not hang CI for a minute on a plugin that
	// never answers.
	HandshakeBound = 10 * time.Second
	// RequestBound bounds each call to a started plugin: a mount's Setup,
	// a request, a database's Type.
	RequestBound = 10 * time.Second
	// SIGTERMBound is how long a plugin has to exit after SIGTERM: twice
	// serve.Run's default shutdown timeout for the backends' Cleanup.
	SIGTERMBound = 10 * time.Second
	// SIGINTWait is how long a plugin must survive SIGINT. The default
	// action ends a process at once, so a second is plenty to see it.
	SIGINTWait = time.Second
	// HostDeathBound is how long a plugin has to exit once its host was
	// killed: serve.Run notices within 250 ms (it polls its parent), so
	// five seconds is twenty times that.
	HostDeathBound = 5 * time.Second
	// ByHandBound is how long a binary run by hand, or with -version, has
	// to answer and exit.
	ByHandBound = 5 * time.Second
)

// Check IDs, in the order the report lists them.
const (
	idPlatform  = "platform"
	idStatic    = "static"
	idModules   = "modules"
	idType      = "type"
	idStdout    = "stdout"
	idHandshake = "handshake"
	idProtocol  = "protocol"
	idMetadata  = "metadata"
	idVersion   = "version"
	idRequest   = "request"
	idSIGINT    = "sigint"
	idSIGTERM   = "sigterm"
	idHostDeath = "host-death"
	idByHand    = "by-hand"
	idMlock     = "mlock"
)

// IDStatic is the static-linking check's ID: release refuses what it
// only warns about.
const IDStatic = idStatic

// IDs returns the check IDs in report order.
func IDs() []string {
	return []string{idPlatform, idStatic, idModules, idType, idStdout, idHandshake, idProtocol, idMetadata,
		idVersion, idRequest, idSIGINT, idSIGTERM, idHostDeath, idByHand, idMlock}
}

// Config is what to check and how the operator registers it.
type Config struct {
	// Binary is the plugin's path.
	Binary string
	// Args are the plugin's command-line arguments, as `vault plugin
	// register -args` gives them.
	Args []string
	// Env are KEY=VALUE entries added to the plugin's environment, as
	// `vault plugin register -env` adds them.
	Env []string
	// Self is the path of the vaultplugin binary, which the host-death
	// and mlock checks run as a short-lived host (the hidden HostCommand).
	Self string
}

// Run checks the binary and returns the report. It stops every process it
// started before it returns, also when ctx is cancelled; the error is
// ctx's then, or the failure to set the checks up.
func Run(ctx context.Context, c Config) (*Report, error) {
	rs := resultSet{}
	rs.add(timed(func() []Result { return append(checkHeader(c.Binary), checkModules(c.Binary)) })...)
	if rs[idPlatform].Status == Fail {
		return rs.report(ctx, c.Binary, nil, "", "", "cannot run it on this machine (see platform)")
	}

	h, err := newHost(c)
	if err != nil {
		return nil, err
	}
	defer h.close()

	// Which cookie it answers decides how everything else starts it; a
	// backend that fails its AutoMTLS start is tried on the legacy TLS
	// path, as Vault then does.
	var probe cookieProbe
	rs.add(timed(func() []Result {
		probe = h.probeCookies(ctx)
		return []Result{probe.stdoutResult(), probe.typeResult()}
	})...)
	k := probe.kind
	if k == nil {
		rs.add(timed(func() []Result { return []Result{h.checkByHand(ctx)} })...)
		return rs.report(ctx, c.Binary, probe.took(), "", "", "needs a handshake (see type)")
	}

	// The handshake as Vault does it, which the remaining checks need.
	var sess *session
	rs.add(timed(func() []Result {
		sess = h.startSession(ctx, *k, probe.autoMTLS)
		return []Result{sess.handshakeResult()}
	})...)
	if sess.proc == nil {
		rs.add(timed(func() []Result { return []Result{h.checkByHand(ctx)} })...)
		return rs.report(ctx, c.Binary, k, "", "", "needs a handshake (see handshake)")
	}
	// From here on every start takes the path the session took.
	h.legacy = sess.legacy
	h.checkServed(ctx, *k, sess, rs)
	tls := "automtls"
	if sess.legacy {
		tls = "legacy"
	}
	return rs.report(ctx, c.Binary, k, sess.typ, tls, "")
}

// checkServed runs the checks of a plugin that completed its handshake
// and adds their results to rs. They are independent, so they run side by
// side, and the checks that wait out a bound (host death, SIGINT) overlap.
// Some gather facts that checks combine at the end; those time themselves.
func (h *host) checkServed(ctx context.Context, k kind, sess *session, rs resultSet) {
	var (
		mu                                sync.Mutex
		wg                                sync.WaitGroup
		probes                            protocolProbe
		flagVer                           versionFlag
		meta                              metadataRun
		exploreMs, probeMs, verMs, metaMs int64
	)
	spawn := func(f func() []Result) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := timed(f)
			mu.Lock()
			rs.add(r...)
			mu.Unlock()
		}()
	}
	gather := func(ms *int64, f func()) {
		spawn(func() []Result {
			start := time.Now()
			f()
			*ms = time.Since(start).Milliseconds()
			return nil
		})
	}
	gather(&exploreMs, func() { sess.explore(ctx) })
	gather(&probeMs, func() { probes = h.probeProtocols(ctx, k) })
	gather(&verMs, func() { flagVer = h.runVersionFlag(ctx) })
	gather(&metaMs, func() { meta = h.runMetadata(ctx, k) })
	spawn(func() []Result { return h.checkSignals(ctx, k) })
	spawn(func() []Result { return []Result{h.checkHostDeath(ctx, k)} })
	spawn(func() []Result { return []Result{h.checkByHand(ctx)} })
	spawn(func() []Result { return []Result{h.checkMlock(ctx, k)} })
	wg.Wait()

	typ, req := sess.typeResult(), sess.requestResult()
	proto, ver, md := sess.protocolResult(probes), sess.versionResult(flagVer), sess.metadataResult(meta)
	typ.Millis = rs[idType].Millis + exploreMs
	req.Millis = exploreMs
	proto.Millis = max(probeMs, exploreMs)
	ver.Millis = max(verMs, exploreMs)
	md.Millis = metaMs
	rs.add(typ, req, proto, ver, md)
}
