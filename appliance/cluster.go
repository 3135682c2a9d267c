package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"postern/cluster"
	"postern/firmware"
	"postern/ldapstore"
	"postern/ldapstore/csn"
	"postern/replication"
)

// startCluster makes the cluster agent once the LDAP and SMTP listeners
// are bound (the agent opens tunnels to exactly those addresses), plugs
// the replication provider into the LDAP server, and serves the cluster
// SSH listener.
func (a *Appliance) startCluster() error {
	replication.NewProvider(a.store, replication.ProviderOptions{Logger: a.log.With("component", "replication")}).Register(a.ldap)
	agent, err := cluster.New(cluster.Config{
		DataDir:   a.cfg.DataDir,
		Store:     a.store,
		DeviceID:  a.identity.DeviceID,
		UUID:      a.identity.UUID,
		RootDN:    a.cfg.AdminDN(),
		ServeLDAP: a.ldap.ServeConn,
		// frontends read as themselves, never a write, never a secret
		ServeLDAPRestricted: a.ldap.ServeConnRestricted,
		ServeInjected:       a.smtp.ServeInjected,
		LDAPAddr:            a.addrs["ldap"],
		SMTPAddr:            a.addrs["smtp"],
		Local: func() cluster.Local {
			s := a.System()
			return cluster.Local{Hostname: s.Hostname, Comment: s.Comment, Location: s.Location, NTPServer: s.NTPServer}
		},
		NewLink: a.newReplicationLink,
		CopiedCookie: func(peer string, rid int, seen csn.Vector) (string, string) {
			return replication.CopiedCookie(rid, rid, peer, seen)
		},
		Call: a.memberCall,
		// what frontends may ask: the keys and policy of secure mail, per
		// message (they keep no key material)
		FrontendOps: secureOps,
		Secrets:     a.kekSecrets(),
		Version:     firmware.Version,
		Heartbeat:   a.cfg.ClusterHeartbeat,
		ClockSkew:   a.cfg.ClockSkew,
		Registry:    a.registry,
		Logger:      a.log.With("component", "cluster"),
	})
	if err != nil {
		return err
	}
	a.clusterMu.Lock()
	a.cluster = agent
	a.clusterMu.Unlock()
	if enabled(a.cfg.ClusterAddr) {
		l, err := a.listen("cluster", a.cfg.ClusterAddr)
		if err != nil {
			return err
		}
		a.goServe("cluster", func() error { return agent.Serve(l) })
	}
	return nil
}

// injectAllowed is the SMTP gateway's injection ACL (smtp.Config.InjectAllowed).
func (a *Appliance) injectAllowed(member string) bool {
	a.clusterMu.Lock()
	c := a.cluster
	a.clusterMu.Unlock()
	return c != nil && c.InjectAllowed(member)
}

// replicationLink adapts a replication consumer to the cluster's Link.
type replicationLink struct{ c *replication.Consumer }

func (l replicationLink) Run(ctx context.Context) error { return l.c.Run(ctx) }

func (l replicationLink) Status() cluster.LinkStatus {
	s := l.c.Status()
	return cluster.LinkStatus{OK: s.Connected && s.Phase == replication.PhasePersist, Text: s.Text,
		RemoteEntries: s.RemoteEntries, LocalEntries: s.LocalEntries, Lag: s.Lag, Since: s.Since}
}

// newReplicationLink is one consumer per peer; its connections are tunnels
// the peer serves pre-authenticated, so it binds to nothing.
func (a *Appliance) newReplicationLink(lc cluster.LinkConfig) cluster.Link {
	return replicationLink{replication.NewConsumer(replication.ConsumerConfig{
		RID:      lc.RID,
		Provider: lc.Peer,
		Store:    a.store,
		Dial:     lc.Dial,
		Paused:   lc.Paused,
		Version:  firmware.Version,
		// a member back from a restart is OK again within 2 s: the
		// tunnel's own redial is capped alike (cluster.redialMax)
		MaxBackoff: 2 * time.Second,
		Logger:     a.log.With("component", "replication"),
		Registry:   a.registry,
	})}
}

func (a *Appliance) clusterRoutes(mux *http.ServeMux) {
	h := func(f func(r *http.Request, c *cluster.Agent) (any, error)) http.HandlerFunc {
		return a.jsonHandler(func(r *http.Request) (any, error) {
			a.clusterMu.Lock()
			c := a.cluster
			a.clusterMu.Unlock()
			if c == nil {
				return nil, &apiError{http.StatusServiceUnavailable, "cluster agent not running"}
			}
			return f(r, c)
		})
	}
	mux.HandleFunc("GET /v1/cluster/status", h(func(r *http.Request, c *cluster.Agent) (any, error) { return c.Status(r.Context()) }))
	mux.HandleFunc("POST /v1/cluster/prepare", h(func(r *http.Request, c *cluster.Agent) (any, error) {
		var req cluster.PrepareRequest
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		id, err := c.Prepare(r.Context(), req)
		if err != nil {
			return nil, clusterError(err)
		}
		return map[string]string{"clusterid": string(id)}, nil
	}))
	mux.HandleFunc("POST /v1/cluster/check", h(func(r *http.Request, c *cluster.Agent) (any, error) {
		var req cluster.JoinRequest
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		return c.Check(r.Context(), req), nil
	}))
	mux.HandleFunc("POST /v1/cluster/join", a.handleJoin)
	mux.HandleFunc("POST /v1/cluster/frontend/attach", a.handleAttach)
	// a frontend's own commands, asked of an appliance that is none
	notFrontend := a.jsonHandler(func(r *http.Request) (any, error) {
		what := "standalone"
		a.clusterMu.Lock()
		c := a.cluster
		a.clusterMu.Unlock()
		if c != nil && c.Member() {
			what = "a cluster member (backend)"
		}
		return nil, &apiError{http.StatusConflict, "this appliance is not a cluster frontend (it is " + what + "): backend add, backend remove and frontend detach are a frontend's commands; make it one with postern cluster frontend attach"}
	})
	mux.HandleFunc("POST /v1/cluster/backend/add", notFrontend)
	mux.HandleFunc("POST /v1/cluster/backend/remove", notFrontend)
	mux.HandleFunc("POST /v1/cluster/frontend/detach", notFrontend)
	mux.HandleFunc("POST /v1/cluster/compare", a.handleCompare)
	mux.HandleFunc("POST /v1/cluster/password", h(func(r *http.Request, c *cluster.Agent) (any, error) {
		n, err := c.RetireIdentifiers(r.Context())
		return map[string]int{"retired": n}, clusterError(err)
	}))
	mux.HandleFunc("POST /v1/cluster/rekey", h(func(r *http.Request, c *cluster.Agent) (any, error) {
		var req cluster.RekeyRequest
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		res, err := c.Rekey(r.Context(), req)
		return res, clusterError(err)
	}))
	mux.HandleFunc("POST /v1/cluster/readdress", h(func(r *http.Request, c *cluster.Agent) (any, error) {
		var req struct {
			Self string `json:"self"`
		}
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		return map[string]string{"addr": req.Self}, clusterError(c.Readdress(r.Context(), req.Self))
	}))
	mux.HandleFunc("POST /v1/cluster/leave", h(func(r *http.Request, c *cluster.Agent) (any, error) {
		res, err := c.Leave(r.Context())
		return res, clusterError(err)
	}))
	mux.HandleFunc("POST /v1/cluster/remove/{id}", h(func(r *http.Request, c *cluster.Agent) (any, error) {
		return map[string]bool{"ok": true}, clusterError(c.Remove(r.Context(), r.PathValue("id")))
	}))
	mux.HandleFunc("POST /v1/cluster/forget/{id}", h(func(r *http.Request, c *cluster.Agent) (any, error) {
		return map[string]bool{"ok": true}, clusterError(c.Forget(r.Context(), r.PathValue("id")))
	}))
	mux.HandleFunc("GET /v1/cluster/protect", h(func(r *http.Request, c *cluster.Agent) (any, error) {
		p, err := c.Protection(r.Context())
		return p, clusterError(err)
	}))
	mux.HandleFunc("POST /v1/cluster/protect", h(func(r *http.Request, c *cluster.Agent) (any, error) {
		var req cluster.ProtectRequest
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		p, err := c.Protect(r.Context(), req)
		return p, clusterError(err)
	}))
	mux.HandleFunc("POST /v1/cluster/inject", h(func(r *http.Request, c *cluster.Agent) (any, error) {
		var req cluster.InjectRequest
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		to, err := c.SetInject(r.Context(), req)
		return map[string][]string{"inject_to": to}, clusterError(err)
	}))
}

// clusterError maps the agent's refusals to 4xx answers.
func clusterError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "cluster: ") {
		return &apiError{http.StatusConflict, msg}
	}
	return err
}

// JoinProgress is one line of the join's streamed answer.
type JoinProgress struct {
	Line  string `json:"line,omitempty"`
	Error string `json:"error,omitempty"`
	Done  bool   `json:"done,omitempty"`
}

// handleAttach streams `cluster frontend attach` like a join; on success
// the appliance is made anew as a frontend (its directory closed and
// removed) in the same process.
func (a *Appliance) handleAttach(w http.ResponseWriter, r *http.Request) {
	var req AttachRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	areq := cluster.AttachRequest{JoinRequest: req.JoinRequest}
	if !req.DiscardLocal {
		if p, err := a.localDirectoryProblem(r.Context()); err != nil {
			writeError(w, err)
			return
		} else if p != nil {
			areq.Local = append(areq.Local, *p)
		}
	}
	a.clusterMu.Lock()
	c := a.cluster
	a.clusterMu.Unlock()
	if c == nil {
		writeError(w, &apiError{http.StatusServiceUnavailable, "cluster agent not running"})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	fl, _ := w.(http.Flusher)
	send := func(p JoinProgress) {
		json.NewEncoder(w).Encode(p)
		if fl != nil {
			fl.Flush()
		}
	}
	if err := c.AttachFrontend(r.Context(), areq, func(line string) { send(JoinProgress{Line: line}) }); err != nil {
		send(JoinProgress{Error: err.Error()})
		return
	}
	send(JoinProgress{Line: "restarting as a frontend"})
	send(JoinProgress{Done: true})
	a.requestRestart()
}

// AttachRequest is `postern cluster frontend attach` on the control API: a
// join's inputs, and DiscardLocal to attach although this appliance's own
// directory holds entries (a frontend keeps none: they are deleted).
type AttachRequest struct {
	cluster.JoinRequest
	DiscardLocal bool `json:"discard_local,omitempty"`
}

// localDirectoryProblem names the entries of this appliance's directory
// beyond the default tree (suffix, its base OUs, ou=cluster's records),
// which an attach would delete with the directory; nil when there are
// none.
func (a *Appliance) localDirectoryProblem(ctx context.Context) (*cluster.Problem, error) {
	base := map[string]bool{strings.ToLower(a.cfg.Suffix): true}
	for _, ou := range baseOUs {
		base[strings.ToLower("ou="+ou+","+a.cfg.Suffix)] = true
	}
	clusterOU := strings.ToLower(",ou=cluster," + a.cfg.Suffix)
	var mine []string
	n := 0
	err := a.store.Search(ctx, &ldapstore.SearchRequest{BaseDN: a.cfg.Suffix, Scope: ldapstore.ScopeSub}, func(e *ldapstore.Entry) error {
		dn := strings.ToLower(e.DN)
		if base[dn] || strings.HasSuffix(dn, clusterOU) || ldapstore.IsGlue(e) {
			return nil
		}
		n++
		if len(mine) < 3 {
			mine = append(mine, e.DN)
		}
		return nil
	})
	if err != nil || n == 0 {
		return nil, err
	}
	return &cluster.Problem{
		What: fmt.Sprintf("this appliance's directory holds %d entries of its own (%s%s): a frontend keeps no directory, so they would be deleted", n, strings.Join(mine, "; "), map[bool]string{true: "; …", false: ""}[n > len(mine)]),
		Fix:  "save them first (postern ldif export > mine.ldif) and import them on a backend, or attach with --discard-local",
	}, nil
}

// handleJoin streams the join's progress as JSON lines, then the result.
func (a *Appliance) handleJoin(w http.ResponseWriter, r *http.Request) {
	var req cluster.JoinRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	a.clusterMu.Lock()
	c := a.cluster
	a.clusterMu.Unlock()
	if c == nil {
		writeError(w, &apiError{http.StatusServiceUnavailable, "cluster agent not running"})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	fl, _ := w.(http.Flusher)
	send := func(p JoinProgress) {
		json.NewEncoder(w).Encode(p)
		if fl != nil {
			fl.Flush()
		}
	}
	err := c.Join(r.Context(), req, func(line string) { send(JoinProgress{Line: line}) })
	if err != nil {
		send(JoinProgress{Error: err.Error()})
		return
	}
	send(JoinProgress{Done: true})
}

// ClusterStatus returns the cluster agent's status (Member false on a
// standalone appliance).
func (a *Appliance) ClusterStatus(ctx context.Context) (*cluster.Status, error) {
	a.clusterMu.Lock()
	c := a.cluster
	a.clusterMu.Unlock()
	if c == nil {
		return &cluster.Status{}, nil
	}
	return c.Status(ctx)
}

// CompareProgress is one line of a comparison's streamed answer: progress
// lines, then the report (or the error).
type CompareProgress struct {
	Line   string                 `json:"line,omitempty"`
	Report *cluster.CompareReport `json:"report,omitempty"`
	Error  string                 `json:"error,omitempty"`
}

// handleCompare streams `cluster compare`: POST /v1/cluster/compare?attrs=true.
func (a *Appliance) handleCompare(w http.ResponseWriter, r *http.Request) {
	a.clusterMu.Lock()
	c := a.cluster
	a.clusterMu.Unlock()
	if c == nil {
		writeError(w, &apiError{http.StatusServiceUnavailable, "cluster agent not running"})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	fl, _ := w.(http.Flusher)
	var mu sync.Mutex
	send := func(p CompareProgress) {
		mu.Lock()
		defer mu.Unlock()
		json.NewEncoder(w).Encode(p)
		if fl != nil {
			fl.Flush()
		}
	}
	rep, err := c.Compare(r.Context(), r.URL.Query().Get("attrs") == "true", func(line string) { send(CompareProgress{Line: line}) })
	if err != nil {
		send(CompareProgress{Error: clusterError(err).Error()})
		return
	}
	send(CompareProgress{Report: rep})
}

// memberCall runs the appliance operations members ask for (cluster.Config.Call).
func (a *Appliance) memberCall(ctx context.Context, op string, arg json.RawMessage) (any, error) {
	switch op {
	case "secure.managed", "secure.policy", "secure.public", "secure.private", "secure.dkim", "secure.roots", "secure.collect":
		return a.secureCall(ctx, op, arg)
	case "queue.list":
		return a.queueList(ctx)
	case "queue.flush":
		n, err := a.smtp.Flush(ctx)
		return map[string]int{"scheduled": n}, err
	}
	return nil, fmt.Errorf("unknown operation %q", op)
}

// callAll runs op on every backend member (the cluster view of a queue).
func (a *Appliance) callAll(r *http.Request, op string) (any, error) {
	a.clusterMu.Lock()
	c := a.cluster
	a.clusterMu.Unlock()
	if c == nil {
		return nil, &apiError{http.StatusServiceUnavailable, "cluster agent not running"}
	}
	res, err := c.CallAll(r.Context(), op, nil)
	return res, clusterError(err)
}
