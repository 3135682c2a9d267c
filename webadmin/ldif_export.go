package webadmin

import (
	"fmt"
	"io"
	"net/http"
)

// ldifExport downloads the whole directory as LDIF (with entryUUID and
// entryCSN, so importing it later never undoes newer changes).
func (s *Server) ldifExport(w http.ResponseWriter, r *http.Request) {
	resp, err := s.be.do(r.Context(), "GET", "/v1/ldif/export", nil, "")
	if err != nil {
		s.failed(w, r, "/directory", err)
		return
	}
	defer resp.Body.Close()
	name := fmt.Sprintf("postern-%s.ldif", s.cfg.Now().UTC().Format("20060102-150405"))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	io.Copy(w, resp.Body)
}
