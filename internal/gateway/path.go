package gateway

import (
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A request path is routed as the gateway reads it, and served as the
// upstream reads it. Where the two could differ, the request is refused
// (400) rather than cleaned: checkRequestPath refuses what no upstream
// should be asked to interpret (dot segments, encoded slashes, …), and
// table.confusable what some upstream would read as another route's
// path (letter case, trailing dots and spaces).

// checkRequestPath returns why the request's path is refused, or "". A
// path that an upstream could read as another path than the one routed
// on is refused rather than cleaned: dot segments (also spelled with
// more dots or with spaces), empty segments, backslashes, control
// characters and encoded (or doubly encoded) slashes, backslashes and
// dots.
func checkRequestPath(r *http.Request) string {
	p := r.URL.Path
	if !strings.HasPrefix(p, "/") || r.URL.Opaque != "" {
		return "The request target must be an absolute path."
	}
	if strings.ContainsFunc(p, func(c rune) bool { return c < 0x20 || c == 0x7f || c == '\\' }) {
		return "The path contains a control character or a backslash."
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		// Windows servers drop a segment's trailing dots and spaces, so
		// "...", ". " and " " are read as "." or as an empty segment.
		if seg != "" && strings.TrimRight(seg, ". ") == "" {
			return "The path contains a segment of dots or spaces only, such as . or ..."
		}
	}
	if strings.Contains(p, "//") {
		return "The path contains an empty segment (//)."
	}
	if strings.Contains(p, ";") {
		// Servlet containers (Tomcat, Jetty, Spring) strip ";params" from
		// path segments: /admin;x/users would be routed as / and served
		// as /admin/users.
		return "The path contains a ; (a path parameter some servers strip)."
	}
	raw := strings.ToLower(r.URL.RawPath)
	decoded := strings.ToLower(p)
	for _, enc := range []string{"%2f", "%5c"} {
		if strings.Contains(raw, enc) {
			return "The path contains an encoded slash or backslash."
		}
	}
	for _, enc := range []string{"%2e", "%2f", "%5c"} {
		if strings.Contains(decoded, enc) {
			return "The path contains a doubly encoded dot, slash or backslash."
		}
	}
	return ""
}

// confusable reports whether p, read as foldPath reads it, falls under a
// route more specific than chosen (the route it matched exactly, nil for
// none) without matching that route exactly: /ADMIN/users, /adm%C4%B1n/users
// (ı) or /admin./users with routes / (open) and /admin/ (admin only). An
// upstream that ignores case, or drops trailing dots, would serve the
// protected path through the open route's checks.
func (t *table) confusable(p string, chosen *route) bool {
	fp := foldPath(p) // p itself, without allocating, for most paths
	for _, r := range t.routes {
		if r == chosen || chosen != nil && len(r.path) <= len(chosen.path) || r.matchesPath(p) {
			continue
		}
		if pathCovers(r.folded, fp) {
			return true
		}
	}
	return false
}

// foldPath returns p as the most lenient upstream could read it:
//
//   - letters in lower case, as a server that ignores case compares
//     them; that includes the non-ASCII letters that a Unicode case
//     mapping or simple case folding turns into ASCII ones (ſ, long s,
//     is s; ı, dotless i, and İ are i; K, the Kelvin sign, is k), and
//     those that a full case mapping turns into ASCII (ß is ss, ﬁ is fi:
//     Java's toUpperCase, Python's casefold);
//   - every segment without its trailing dots and spaces, which Windows
//     servers (IIS, and files on NTFS) drop: /admin./ and /admin%20/ are
//     read as /admin/.
//
// It returns p itself, without allocating, when there is nothing to
// change: a path of lower-case ASCII whose segments end in neither a dot
// nor a space.
func foldPath(p string) string {
	if !needsFold(p) {
		return p
	}
	b := make([]byte, 0, len(p))
	for i, seg := range strings.Split(p, "/") {
		if i > 0 {
			b = append(b, '/')
		}
		start := len(b)
		for _, r := range seg {
			b = appendFolded(b, r)
		}
		end := len(b) // without the segment's trailing dots and spaces

		for end > start && (b[end-1] == '.' || b[end-1] == ' ') {
			end--
		}
		b = b[:end]
	}
	return string(b)
}

// needsFold reports whether foldPath would change p.
func needsFold(p string) bool {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case 'A' <= c && c <= 'Z', c >= utf8.RuneSelf:
			return true
		case c == '.' || c == ' ':
			if i+1 == len(p) || p[i+1] == '/' {
				return true
			}
		}
	}
	return false
}

// fullFolds are the characters whose full case mapping or folding (Unicode
// SpecialCasing.txt and the F entries of CaseFolding.txt) is ASCII
// letters only; the simple mappings of unicode.To… and unicode.SimpleFold
// cover the rest.
var fullFolds = map[rune]string{
	'ß': "ss", 'ẞ': "ss",
	'ﬀ': "ff", 'ﬁ': "fi", 'ﬂ': "fl", 'ﬃ': "ffi", 'ﬄ': "ffl", 'ﬅ': "st", 'ﬆ': "st",
}

// appendFolded appends r to b as foldPath reads it: an ASCII letter in
// lower case, a non-ASCII character that a case mapping turns into ASCII
// letters as those letters, and anything else unchanged.
func appendFolded(b []byte, r rune) []byte {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return append(b, byte(r))
	}
	if s, ok := fullFolds[r]; ok {
		return append(b, s...)
	}
	for _, m := range [...]rune{unicode.ToLower(r), unicode.ToUpper(r), unicode.ToTitle(r)} {
		if m < utf8.RuneSelf {
			return appendFolded(b, m)
		}
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < utf8.RuneSelf {
			return appendFolded(b, f)
		}
	}
	return utf8.AppendRune(b, r)
}

// pathCovers reports whether the route path rp covers p (see matchesPath).
func pathCovers(rp, p string) bool {
	if strings.HasSuffix(rp, "/") {
		return strings.HasPrefix(p, rp)
	}
	return p == rp || strings.HasPrefix(p, rp) && p[len(rp)] == '/'
}
