package appliance

import (
	"net/http"
)

// secureRoutes are the control routes of `postern keys`, `postern ca` and
// `postern policy` (the web menu calls the same functions).
func (a *Appliance) secureRoutes(mux *http.ServeMux) {
	a.securePolicyRoutes(mux)
	mux.HandleFunc("GET /v1/keys", a.jsonHandler(func(r *http.Request) (any, error) {
		return a.ListKeys(r.Context(), r.URL.Query().Get("owner"))
	}))
	mux.HandleFunc("POST /v1/keys/generate", a.jsonHandler(func(r *http.Request) (any, error) {
		var req KeyGenerate
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		return a.GenerateKey(r.Context(), req)
	}))
	mux.HandleFunc("POST /v1/keys/import", a.jsonHandler(func(r *http.Request) (any, error) {
		var req KeyImport
		// the file travels base64-encoded in JSON: 4/3 of it, and room
		// for the rest of the request
		if err := decodeJSONLimit(r, &req, maxKeyFile/3*4+64<<10); err != nil {
			return nil, err
		}
		return a.ImportKeys(r.Context(), req)
	}))
	mux.HandleFunc("POST /v1/keys/export", a.jsonHandler(func(r *http.Request) (any, error) {
		var req KeyExport
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		b, err := a.ExportKeys(r.Context(), req)
		return map[string][]byte{"data": b}, err
	}))
	mux.HandleFunc("POST /v1/keys/delete", a.jsonHandler(func(r *http.Request) (any, error) {
		var req KeyDelete
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		n, err := a.DeleteKeys(r.Context(), req)
		return map[string]int{"deleted": n}, err
	}))
	mux.HandleFunc("POST /v1/ca/init", a.jsonHandler(func(r *http.Request) (any, error) {
		var req CAInit
		if err := decodeJSON(r, &req); err != nil {
			return nil, err
		}
		return a.InitCA(r.Context(), req)
	}))
}
