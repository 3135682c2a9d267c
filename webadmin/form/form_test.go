package form

import (
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	got := Lines(" 192.0.2.1\r\n\n192.0.2.2, 192.0.2.3 \n")
	if want := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Lines = %q, want %q", got, want)
	}
}

func TestLoginNextStaysInTheMenu(t *testing.T) {
	for next, want := range map[string]string{
		"/mail":            "/mail",
		"//evil.example/":  "/cluster",
		"https://evil/":    "/cluster",
		"/\\evil.example":  "/cluster",
		"":                 "/cluster",
		"/login?next=/foo": "/cluster",
	} {
		r := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"password": {"x"}, "next": {next}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if got := ParseLogin(r).Next; got != want {
			t.Errorf("next %q → %q, want %q", next, got, want)
		}
	}
}

func TestProtectCheckbox(t *testing.T) {
	post := func(v url.Values) Protect {
		r := httptest.NewRequest("POST", "/", strings.NewReader(v.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return ParseProtect(r)
	}
	if p := post(url.Values{"limit": {"on"}, "ips": {"192.0.2.7\n192.0.2.8"}}); p.Off || len(p.IPs) != 2 {
		t.Fatalf("limit on: %+v", p)
	}
	if p := post(url.Values{"ips": {"192.0.2.7"}}); !p.Off {
		t.Fatalf("limit off: %+v", p)
	}
}
