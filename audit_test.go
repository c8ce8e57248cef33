package keycard

import (
	"encoding/json"
	"testing"
)

// decodesToObject is what the stores checked before ValidAuditDetail:
// empty, or decoding into a map succeeds with a map.
func decodesToObject(d json.RawMessage) bool {
	if len(d) == 0 {
		return true
	}
	var m map[string]json.RawMessage
	return json.Unmarshal(d, &m) == nil && m != nil
}

var auditDetailSeeds = []string{
	``, `{}`, ` {} `, "\t\r\n{\"a\":1}\n", `{"client":"app","scopes":["openid","profile"]}`, `{"a":{"b":[1,2,{"c":null}]}}`,
	`{"a":"\u00e9\ud83d\ude00"}`, "{\"a\":\"\xff\"}", `{"a":1,"a":2}`,
	`null`, ` null`, `[]`, `[{}]`, `"{}"`, `1`, `true`, `{`, `}`, `{}}`, `{} {}`, `{"a":}`, `{"a" 1}`, `{a:1}`, `{"a":1,}`,
	`{"a":01}`, `{"a":1e}`, `{"a":"\x"}`, "{\"a\":\"\x01\"}", "\v{}", "\u00a0{}", ` `, "\x00", `{}` + "\x00",
}

// TestValidAuditDetail checks ValidAuditDetail against decoding into a
// map on the seeds, objects and everything else.
func TestValidAuditDetail(t *testing.T) {
	for _, s := range auditDetailSeeds {
		if got, want := ValidAuditDetail(json.RawMessage(s)), decodesToObject(json.RawMessage(s)); got != want {
			t.Errorf("ValidAuditDetail(%q) = %v, want %v (what decoding into a map says)", s, got, want)
		}
	}
	for _, s := range []string{`{}`, `{"client":"app"}`} {
		if !ValidAuditDetail(json.RawMessage(s)) {
			t.Errorf("ValidAuditDetail(%q) = false, want true", s)
		}
	}
	for _, s := range []string{`null`, `[]`, `"x"`, `{`, `{} {}`} {
		if ValidAuditDetail(json.RawMessage(s)) {
			t.Errorf("ValidAuditDetail(%q) = true, want false", s)
		}
	}
}

func FuzzValidAuditDetail(f *testing.F) {
	for _, s := range auditDetailSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		if got, want := ValidAuditDetail(d), decodesToObject(d); got != want {
			t.Errorf("ValidAuditDetail(%q) = %v, decoding into a map says %v", d, got, want)
		}
	})
}

// BenchmarkValidAuditDetail compares ValidAuditDetail with the decoding
// it replaced, on a grant's audit detail.
func BenchmarkValidAuditDetail(b *testing.B) {
	d := json.RawMessage(`{"client":"kcbench-app","parent":"Qm9yZWQgYnV0IHVuaXF1ZQ","scope":"openid profile","session":"Yb3kq0n0jVd3Hc2mWq8m9Q"}`)
	b.Run("ValidAuditDetail", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ValidAuditDetail(d)
		}
	})
	b.Run("decoding", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			decodesToObject(d)
		}
	})
}
