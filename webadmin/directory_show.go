package webadmin

import (
	"bufio"
	"context"
	"encoding/base64"
	"net/http"
	"sort"
	"strings"
)

type directoryPage struct {
	// Refused is the control API's refusal on a frontend (no directory).
	Refused    string
	Entries    int
	ContextCSN []string
	Suffix     string
	Branches   []branchCount
}

type branchCount struct {
	DN      string
	Entries int
}

// directoryShow is the Directory page: entry counts per branch, LDIF
// export and import.
func (s *Server) directoryShow(w http.ResponseWriter, r *http.Request) {
	var st statusReport
	if err := s.be.call(r.Context(), "GET", "/v1/status", nil, &st); err != nil {
		s.errorPage(w, r, http.StatusBadGateway, "Directory", err)
		return
	}
	p := directoryPage{Entries: st.Entries, ContextCSN: st.ContextCSN}
	var err error
	if p.Suffix, p.Branches, err = s.countBranches(r.Context()); err != nil {
		msg, ok := refusal(err)
		if !ok {
			s.errorPage(w, r, http.StatusBadGateway, "Directory", err)
			return
		}
		p.Refused = msg
	}
	s.render(w, r, http.StatusOK, "directory", &page{Title: "Directory", Nav: "directory", Data: p})
}

// countBranches counts the entries below each child of the suffix, from
// the export (the suffix comes first in it, parents before children).
func (s *Server) countBranches(ctx context.Context) (string, []branchCount, error) {
	resp, err := s.be.do(ctx, "GET", "/v1/ldif/export", nil, "")
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	suffix := ""
	counts := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		var dn string
		switch {
		case strings.HasPrefix(line, "dn:: "):
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(line[5:]))
			if err != nil {
				continue
			}
			dn = string(b)
		case strings.HasPrefix(line, "dn: "):
			dn = strings.TrimSpace(line[4:])
		default:
			continue
		}
		if suffix == "" {
			suffix = dn
			continue
		}
		rest := strings.TrimSuffix(strings.ToLower(dn), ","+strings.ToLower(suffix))
		parts := strings.Split(rest, ",")
		counts[strings.TrimSpace(parts[len(parts)-1])+","+suffix]++
	}
	var out []branchCount
	for dn, n := range counts {
		out = append(out, branchCount{dn, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DN < out[j].DN })
	return suffix, out, sc.Err()
}
