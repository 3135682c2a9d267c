package webadmin

import (
	"bytes"
	"embed"
	"fmt"
	"hash/fnv"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed templates
var templateFS embed.FS

// page is what every page template gets.
type page struct {
	Title     string
	Nav       string // the menu entry to highlight
	FlashKind string
	Flash     string
	LoggedIn  bool
	RefreshMS int // how often live.js refreshes the [data-live] parts
	NoScript  int // seconds of a meta refresh when script is off (0: none)
	Data      any
}

var funcs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"join": strings.Join,
	// colour is a stable colour per device (from its UUID): a hue on an
	// SVG swatch, since the CSP allows no inline style.
	"colour": func(id string) string {
		h := fnv.New32a()
		h.Write([]byte(id))
		return fmt.Sprintf("hsl(%d,70%%,42%%)", h.Sum32()%360)
	},
	"lines": func(l []string) string { return strings.Join(l, "\n") },
	"size": func(n int64) string {
		switch {
		case n >= 1<<20:
			return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
		case n >= 1<<10:
			return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
		}
		return fmt.Sprintf("%d B", n)
	},
	"contains": func(list []string, s string) bool {
		for _, x := range list {
			if strings.EqualFold(x, s) {
				return true
			}
		}
		return false
	},
	// devref makes a device reference (ID, UUID) for the "device" template.
	"devref": func(id, uuid string) map[string]string { return map[string]string{"DeviceID": id, "UUID": uuid} },
	"ms":     func(f float64) string { return fmt.Sprintf("%.1f ms", f) },
	"num": func(f float64) string {
		if f == float64(int64(f)) {
			return fmt.Sprintf("%d", int64(f))
		}
		return fmt.Sprintf("%.3g", f)
	},
}

// parseTemplates parses the layout, the partials (sections) and each page
// once.
func (s *Server) parseTemplates() error {
	base, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts/*.html")
	if err != nil {
		return fmt.Errorf("webadmin: templates: %w", err)
	}
	s.parts = base
	s.pages = map[string]*template.Template{}
	names, err := fs.Glob(templateFS, "templates/pages/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return fmt.Errorf("webadmin: template %s: %w", n, err)
		}
		s.pages[strings.TrimSuffix(path.Base(n), ".html")] = t
	}
	for _, sec := range clusterSections {
		if s.parts.Lookup("section-"+sec.ID) == nil {
			return fmt.Errorf("webadmin: cluster section %q has no template section-%s", sec.ID, sec.ID)
		}
	}
	return nil
}

// render writes a page: the layout around the named page template.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	t, ok := s.pages[name]
	if !ok {
		http.Error(w, "no template "+name, http.StatusInternalServerError)
		return
	}
	if ss, ok := sessionOf(r); ok {
		p.LoggedIn = true
		if r.Header.Get(liveHeader) == "" {
			p.FlashKind, p.Flash = s.sessions.TakeFlash(ss.ID)
		}
	}
	if p.RefreshMS == 0 {
		p.RefreshMS = int(s.cfg.Refresh / time.Millisecond)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("render", "page", name, "err", err)
		http.Error(w, "internal error rendering the page (see the appliance's log)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// part renders one partial template (a section of a page).
func (s *Server) part(name string, data any) (template.HTML, error) {
	var buf bytes.Buffer
	if err := s.parts.ExecuteTemplate(&buf, name, data); err != nil {
		return "", err
	}
	return template.HTML(buf.String()), nil
}

// flash keeps a message for the next page of this session.
func (s *Server) flash(r *http.Request, kind, msg string) {
	if ss, ok := sessionOf(r); ok {
		s.sessions.SetFlash(ss.ID, kind, msg)
	}
}

// done redirects after a successful action with a message (POST, redirect,
// GET: a reload does not repeat the action).
func (s *Server) done(w http.ResponseWriter, r *http.Request, to, msg string) {
	s.flash(r, "ok", msg)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// failed redirects after a refused action with the backend's message.
func (s *Server) failed(w http.ResponseWriter, r *http.Request, to string, err error) {
	s.flash(r, "error", errorText(err))
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// errorPage shows a page that could not be made (the backend refused).
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, title string, err error) {
	s.render(w, r, status, "error", &page{Title: title, Data: errorText(err)})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusNotFound, "error", &page{Title: "Not found", Data: "There is no page " + r.URL.Path + " in the admin menu."})
}
