package auth

import (
	"encoding/json"
	"strconv"

	"github.com/keycard-auth/keycard/internal/jsonscan"
	"github.com/keycard-auth/keycard/jwt"
)

var _ jwt.ClaimsAppender = (*IDClaims)(nil)

// AppendClaims implements jwt.ClaimsAppender: c as encoding/json encodes
// it — the same members in the same order, each omitted when empty —
// without reflection (encoding/json was a tenth of an ID token's
// encoding and signing). Should a value not be valid UTF-8 (the nonce is
// the client's), c is left to encoding/json, which replaces the invalid
// bytes as it always did.
func (c *IDClaims) AppendClaims(dst []byte) ([]byte, error) {
	w := objectWriter{dst: append(dst, '{'), start: len(dst)}
	w.str(`"iss":`, c.Issuer)
	w.str(`"sub":`, c.Subject)
	if len(c.Audience) == 1 {
		w.str(`"aud":`, c.Audience[0])
	} else {
		w.list(`"aud":`, c.Audience)
	}
	w.date(`"exp":`, c.ExpiresAt)
	w.date(`"nbf":`, c.NotBefore)
	w.date(`"iat":`, c.IssuedAt)
	w.str(`"jti":`, c.ID)
	w.str(`"nonce":`, c.Nonce)
	w.date(`"auth_time":`, c.AuthTime)
	w.str(`"acr":`, c.ACR)
	w.list(`"amr":`, c.AMR)
	w.str(`"azp":`, c.AZP)
	w.str(`"sid":`, c.SessionID)
	w.str(`"at_hash":`, c.AccessTokenHash)
	w.str(`"preferred_username":`, c.PreferredUsername)
	w.list(`"roles":`, c.Roles)
	w.str(`"email":`, c.Email)
	if c.EmailVerified != nil {
		w.name(`"email_verified":`)
		w.dst = strconv.AppendBool(w.dst, *c.EmailVerified)
	}
	w.str(`"idp":`, c.IdP)
	if w.bad {
		b, err := json.Marshal(c)
		return append(dst, b...), err
	}
	return append(w.dst, '}'), nil
}

// objectWriter appends the members of a JSON object after its '{' at
// start; bad records a string that was not valid UTF-8.
type objectWriter struct {
	dst   []byte
	start int
	bad   bool
}

// name appends a member's name (quoted, with its colon), after a comma
// unless it is the first.
func (w *objectWriter) name(n string) {
	if len(w.dst) > w.start+1 {
		w.dst = append(w.dst, ',')
	}
	w.dst = append(w.dst, n...)
}

func (w *objectWriter) quote(s string) {
	var ok bool
	if w.dst, ok = jsonscan.AppendQuoteValid(w.dst, s); !ok {
		w.bad = true
	}
}

// str appends a string member, unless v is empty.
func (w *objectWriter) str(n, v string) {
	if v != "" {
		w.name(n)
		w.quote(v)
	}
}

// date appends a NumericDate member, unless d is zero.
func (w *objectWriter) date(n string, d jwt.NumericDate) {
	if !d.IsZero() {
		w.name(n)
		w.dst = strconv.AppendInt(w.dst, d.Unix(), 10)
	}
}

// list appends an array of strings, unless v is empty.
func (w *objectWriter) list(n string, v []string) {
	if len(v) == 0 {
		return
	}
	w.name(n)
	w.dst = append(w.dst, '[')
	for i, s := range v {
		if i > 0 {
			w.dst = append(w.dst, ',')
		}
		w.quote(s)
	}
	w.dst = append(w.dst, ']')
}
