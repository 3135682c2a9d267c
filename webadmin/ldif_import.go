package webadmin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// maxImport bounds an uploaded LDIF file.
const maxImport = 1 << 30

// ldifImport streams an uploaded LDIF file into the directory in the
// background; its progress page shows the entries imported so far and
// the result.
func (s *Server) ldifImport(w http.ResponseWriter, r *http.Request) {
	// a frontend keeps no directory data, not even an upload in a
	// temporary file: refused before the body is read
	if msg, err := s.directoryRefusal(r.Context()); err != nil || msg != "" {
		if err == nil {
			err = errors.New(msg)
		}
		s.failed(w, r, "/directory", err)
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		s.failed(w, r, "/directory#import", fmt.Errorf("upload an LDIF file: %v", err))
		return
	}
	var file io.Reader
	name := ""
	for {
		part, err := mr.NextPart()
		if err != nil {
			break
		}
		if part.FormName() == "ldif" && part.FileName() != "" {
			file, name = part, part.FileName()
			break
		}
	}
	if file == nil {
		s.failed(w, r, "/directory#import", fmt.Errorf("choose an LDIF file (an export of this or another appliance, or of slapd)"))
		return
	}
	j, fresh := s.jobs.start("import", "LDIF import", s.cfg.Now())
	if !fresh {
		s.failed(w, r, "/directory/import/"+j.ID, fmt.Errorf("busy: an import started at %s is still running", j.Started.UTC().Format(time.RFC3339)))
		return
	}
	// The upload is stored first (a temporary file, removed after the
	// import), then imported in the background while the progress page
	// shows how far it got.
	tmp, err := os.CreateTemp("", "postern-import-*.ldif")
	if err == nil {
		var n int64
		n, err = io.Copy(tmp, io.LimitReader(file, maxImport+1))
		if err == nil && n > maxImport {
			err = fmt.Errorf("the file is larger than %d MiB: import it with `postern ldif import FILE`", maxImport>>20)
		}
		if err == nil {
			_, err = tmp.Seek(0, io.SeekStart)
		}
	}
	if err != nil {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
		j.finish("", "upload: "+err.Error())
		s.failed(w, r, "/directory#import", err)
		return
	}
	j.add("uploaded " + name)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		var last importProgress
		err := s.be.stream(s.ctx, "/v1/ldif/import", tmp, "text/plain", func(line []byte) error {
			if err := json.Unmarshal(line, &last); err != nil {
				return fmt.Errorf("bad progress line %q", line)
			}
			if !last.Done && last.Error == "" {
				j.add(fmt.Sprintf("imported %d entries (%d added, %d updated, %d applied, %.0f/s)", last.Entries, last.Added, last.Updated, last.Applied, last.Rate))
			}
			return nil
		})
		switch {
		case err != nil:
			j.finish("", errorText(err))
		case last.Error != "":
			j.finish("", fmt.Sprintf("%s (after %d entries read; the entries before it are imported)", last.Error, last.Entries))
		case !last.Done:
			j.finish("", "the import ended without a result (appliance stopping?)")
		default:
			res := fmt.Sprintf("Imported %d entries: %d added, %d updated", last.Entries, last.Added, last.Updated)
			if last.Applied+last.Stale > 0 {
				res += fmt.Sprintf(", %d applied with their entryUUID and entryCSN, %d older than the directory's state (kept the directory's)", last.Applied, last.Stale)
			}
			if last.Skipped > 0 {
				res += fmt.Sprintf(", %d below ou=cluster skipped (cluster membership is never taken from LDIF)", last.Skipped)
			}
			j.finish(res+".", "")
		}
	}()
	http.Redirect(w, r, "/directory/import/"+j.ID, http.StatusSeeOther)
}
