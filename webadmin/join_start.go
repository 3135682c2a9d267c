package webadmin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"postern/webadmin/form"
)

// joinStart starts "Add this device to existing cluster" in the
// background and shows its progress page: the checks, then `copied N/M
// entries`, then the result. A second join while one runs is answered
// "busy" (here, and by the cluster when another device joins).
func (s *Server) joinStart(w http.ResponseWriter, r *http.Request) {
	f, err := form.ParseJoin(r)
	if err != nil {
		s.failed(w, r, "/cluster#join", err)
		return
	}
	j, fresh := s.jobs.start("join", "Add this device to existing cluster", s.cfg.Now())
	if !fresh {
		s.failed(w, r, j.path(), busy(j))
		return
	}
	body, _ := json.Marshal(f)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		j.add("starting: member " + orDefault(f.Member, "from clusterid.txt") + ", this device " + f.Self)
		result, failure := "", ""
		err := s.be.stream(s.ctx, "/v1/cluster/join", bytes.NewReader(body), "application/json", func(line []byte) error {
			var p joinProgress
			if err := json.Unmarshal(line, &p); err != nil {
				return fmt.Errorf("bad progress line %q", line)
			}
			switch {
			case p.Error != "":
				failure = p.Error
			case p.Done:
				result = "This device is now a member of the cluster."
			default:
				j.add(p.Line)
			}
			return nil
		})
		if err != nil && failure == "" {
			failure = errorText(err)
		}
		if failure == "" && result == "" {
			failure = "the join ended without a result (appliance stopping?)"
		}
		j.finish(result, failure)
		s.log.Info("join from the web menu finished", "ok", failure == "", "err", failure)
	}()
	http.Redirect(w, r, j.path(), http.StatusSeeOther)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
