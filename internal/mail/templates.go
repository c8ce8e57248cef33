package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/keycard-auth/keycard/internal/auth"
)

//go:embed templates/*.txt templates/*.html
var defaultTemplates embed.FS

// Names are the mail templates the auth server sends. Each has a plain
// text template NAME.txt, which defines the subject as the template
// "subject", and an HTML template NAME.html.
var Names = []string{auth.MailVerifyEmail, auth.MailPasswordReset, auth.MailPasswordChanged, auth.MailPasskeyAdded, auth.MailPasskeyRemoved,
	auth.MailMFAEnrolled, auth.MailMFARemoved, auth.MailRecoveryCodeUsed, auth.MailRecoveryCodesRegenerated}

// Templates renders mail. It is safe for concurrent use.
type Templates struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

var funcs = map[string]any{"human": human}

// human writes a duration for people: "24 hours", "30 minutes".
func human(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute")
	}
	return d.String()
}

// LoadTemplates returns the built-in templates, each replaced by the file
// of the same name in dir when dir is not empty and has one (NAME.txt,
// NAME.html). Any template that does not parse, or a text template
// without a "subject", is an error; so is a dir that cannot be read.
func LoadTemplates(dir string) (*Templates, error) {
	t := &Templates{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	read := func(name string) ([]byte, error) {
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil {
				return b, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("mail: reading template: %w", err)
			}
		}
		return defaultTemplates.ReadFile("templates/" + name)
	}
	if dir != "" {
		if st, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("mail: templates directory: %w", err)
		} else if !st.IsDir() {
			return nil, fmt.Errorf("mail: templates directory %s is not a directory", dir)
		}
	}
	for _, name := range Names {
		b, err := read(name + ".txt")
		if err != nil {
			return nil, err
		}
		tt, err := texttemplate.New(name).Funcs(funcs).Option("missingkey=error").Parse(string(b))
		if err != nil {
			return nil, fmt.Errorf("mail: template %s.txt: %w", name, err)
		}
		if tt.Lookup("subject") == nil {
			return nil, fmt.Errorf("mail: template %s.txt defines no \"subject\"", name)
		}
		if b, err = read(name + ".html"); err != nil {
			return nil, err
		}
		ht, err := htmltemplate.New(name).Funcs(funcs).Option("missingkey=error").Parse(string(b))
		if err != nil {
			return nil, fmt.Errorf("mail: template %s.html: %w", name, err)
		}
		t.text[name], t.html[name] = tt, ht
	}
	return t, nil
}

// Rendered is a rendered mail.
type Rendered struct {
	Subject, Text, HTML string
}

// Render renders the mail's template with its data.
func (t *Templates) Render(m auth.Mail) (*Rendered, error) {
	tt, ht := t.text[m.Template], t.html[m.Template]
	if tt == nil || ht == nil {
		return nil, fmt.Errorf("mail: no template %q", m.Template)
	}
	var subject, text, html bytes.Buffer
	if err := tt.ExecuteTemplate(&subject, "subject", m.Data); err != nil {
		return nil, fmt.Errorf("mail: rendering %s subject: %w", m.Template, err)
	}
	if err := tt.Execute(&text, m.Data); err != nil {
		return nil, fmt.Errorf("mail: rendering %s.txt: %w", m.Template, err)
	}
	if err := ht.Execute(&html, m.Data); err != nil {
		return nil, fmt.Errorf("mail: rendering %s.html: %w", m.Template, err)
	}
	// A subject is one line: a template cannot inject headers.
	s := strings.Join(strings.Fields(subject.String()), " ")
	return &Rendered{Subject: s, Text: strings.TrimLeft(text.String(), "\n"), HTML: html.String()}, nil
}
