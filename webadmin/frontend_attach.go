package webadmin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"postern/webadmin/form"
)

// attachStart starts "Add this device as frontend server (no local
// database)" in the background and shows its progress page: the checks
// (a refused attach lists every problem at once), the registration at the
// backend, then the result once the appliance answers as a frontend.
func (s *Server) attachStart(w http.ResponseWriter, r *http.Request) {
	f, err := form.ParseAttach(r)
	if err != nil {
		s.failed(w, r, "/cluster#attach", err)
		return
	}
	j, fresh := s.jobs.start("attach", "Add this device as frontend server", s.cfg.Now())
	if !fresh {
		s.failed(w, r, j.path(), busy(j))
		return
	}
	body, _ := json.Marshal(f)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		j.add("starting: backend " + orDefault(f.Member, "from clusterid.txt") + ", this device " + f.Self)
		failure, attached := "", false
		err := s.be.stream(s.ctx, "/v1/cluster/frontend/attach", bytes.NewReader(body), "application/json", func(line []byte) error {
			var p joinProgress
			if err := json.Unmarshal(line, &p); err != nil {
				return fmt.Errorf("bad progress line %q", line)
			}
			switch {
			case p.Error != "":
				failure = p.Error
			case p.Done:
				attached = true
			default:
				j.add(p.Line)
			}
			return nil
		})
		if err != nil && failure == "" {
			failure = errorText(err)
		}
		if failure == "" && !attached {
			failure = "the attach ended without a result (appliance stopping?)"
		}
		result := ""
		if failure == "" {
			st, err := s.awaitRole(s.ctx, true)
			if err != nil {
				failure = "attached, but " + err.Error()
			} else {
				j.add("running as a frontend: " + st.Frontend.Number)
				result = fmt.Sprintf("This appliance is now frontend server %s of the cluster, without a local database. The cluster page shows its Remote LDAP servers.", st.Frontend.Number)
			}
		}
		j.finish(result, failure)
		s.log.Info("frontend attach from the web menu finished", "ok", failure == "", "err", failure)
	}()
	http.Redirect(w, r, j.path(), http.StatusSeeOther)
}
