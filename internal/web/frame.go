package web

import (
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/keycard-auth/keycard"
)

// Frame renders the pages of another application that is served on the
// auth pages' origin — the demo's weather page, behind a gateway that
// also routes the pages' paths — in the pages' layout: the same style
// sheet, navigation to the account and the sign-out form, so that the two
// read as one site. It is safe for concurrent use.
type Frame struct {
	layout *template.Template
	log    *slog.Logger
}

// FramePage is what a Frame renders.
type FramePage struct {
	Title string
	// Section names the application's navigation entry ("weather").
	Section string
	// User is the signed-in user, shown with the sign-out form.
	User *keycard.User
	// CSRF is the session's CSRF token, for the sign-out form: the value
	// of the browser.CSRFCookie cookie.
	CSRF string
	// Error is a message shown instead of, or above, the content.
	Error string
	// Data is the content template's own.
	Data any
}

// NewFrame parses content, the text of a template that defines
// "content", into the pages' layout. log receives template failures; nil
// discards them.
func NewFrame(content string, log *slog.Logger) (*Frame, error) {
	layout, err := parseLayout()
	if err != nil {
		return nil, err
	}
	if _, err := layout.New("frame").Parse(content); err != nil {
		return nil, fmt.Errorf("web: frame: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Frame{layout: layout, log: log}, nil
}

// Render writes p with status and the pages' security headers. A HEAD
// request gets no body.
func (f *Frame) Render(w http.ResponseWriter, r *http.Request, status int, p FramePage) {
	SecurityHeaders(w.Header())
	var b strings.Builder
	err := f.layout.ExecuteTemplate(&b, "layout", &page{Title: p.Title, Section: p.Section, User: p.User, CSRF: p.CSRF, Error: p.Error, Data: p.Data})
	if err != nil {
		f.log.ErrorContext(r.Context(), "web: frame template failed", "title", p.Title, "err", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write([]byte(b.String()))
	}
}
