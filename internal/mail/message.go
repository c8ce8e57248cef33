package mail

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"strings"
	"time"
)

// buildMessage returns an RFC 5322 message from one address to another
// with r's subject and a multipart/alternative body of its text and HTML
// (quoted-printable). Addresses come normalized (no CR, LF or quoting);
// the subject is one line, Q-encoded.
func buildMessage(from, to string, r *Rendered, now time.Time, random io.Reader) ([]byte, error) {
	var idb [16]byte
	if _, err := io.ReadFull(random, idb[:]); err != nil {
		return nil, err
	}
	_, domain, _ := strings.Cut(from, "@")
	if domain == "" {
		domain = "localhost"
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, part := range []struct{ typ, content string }{
		{"text/plain; charset=utf-8", r.Text},
		{"text/html; charset=utf-8", r.HTML},
	} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(strings.ReplaceAll(part.content, "\n", "\r\n"))); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	var msg bytes.Buffer
	for _, h := range [][2]string{
		{"From", from},
		{"To", to},
		{"Subject", mime.QEncoding.Encode("utf-8", r.Subject)},
		{"Date", now.Format(time.RFC1123Z)},
		{"Message-ID", "<" + base64.RawURLEncoding.EncodeToString(idb[:]) + "@" + domain + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", `multipart/alternative; boundary="` + mw.Boundary() + `"`},
	} {
		fmt.Fprintf(&msg, "%s: %s\r\n", h[0], h[1])
	}
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}
