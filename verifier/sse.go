package verifier

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// maxSSELine and maxSSEEvent bound a line of the event stream and the
// fields of one event.
const (
	maxSSELine  = 64 << 10
	maxSSEEvent = 64 << 10
)

// Errors of the event stream parser.
var (
	errSSELineTooLong  = fmt.Errorf("verifier: event stream line longer than %d bytes", maxSSELine)
	errSSEEventTooLong = fmt.Errorf("verifier: event stream event larger than %d bytes", maxSSEEvent)
)

// sseReader parses an event stream (HTML Living Standard, "Server-sent
// events", §9.2.6 "Interpreting an event stream"), refusing lines longer
// than maxLine and events whose fields add up to more than maxEvent.
type sseReader struct {
	r        *bufio.Reader
	onLine   func() // called for every line read
	maxLine  int
	maxEvent int
	line     []byte
	skipLF   bool // the last line ended with CR: an LF next belongs to it
	started  bool // the byte order mark was looked for
}

// sseEvent is an event, or a comment between events.
type sseEvent struct {
	comment bool
	event   string // the event type; empty means "message"
	data    []byte
	id      string
	hasID   bool // the event had an id field
}

func newSSEReader(r io.Reader, onLine func()) *sseReader {
	if onLine == nil {
		onLine = func() {}
	}
	return &sseReader{r: bufio.NewReader(r), onLine: onLine, maxLine: maxSSELine, maxEvent: maxSSEEvent}
}

// next returns the next event, or the next comment line between events.
// Events without data are not dispatched, as the standard says. An event
// cut short by the end of the stream is discarded and next returns
// io.EOF (or io.ErrUnexpectedEOF within a line).
func (p *sseReader) next() (sseEvent, error) {
	var (
		ev   sseEvent
		data []byte
		size int
		some bool // a field of the current event was read
	)
	for {
		line, err := p.readLine()
		if err != nil {
			return sseEvent{}, err
		}
		p.onLine()
		if len(line) == 0 {
			if len(data) > 0 {
				ev.data = data[:len(data)-1] // without the last LF
				return ev, nil
			}
			ev, data, size, some = sseEvent{}, nil, 0, false
			continue
		}
		if line[0] == ':' {
			if !some {
				return sseEvent{comment: true}, nil
			}
			continue
		}
		some = true
		if size += len(line); size > p.maxEvent {
			return sseEvent{}, errSSEEventTooLong
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte{' '})
		}
		switch string(field) {
		case "event":
			ev.event = string(value)
		case "data":
			data = append(data, value...)
			data = append(data, '\n')
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				ev.id, ev.hasID = string(value), true
			}
		}
		// "retry" and unknown fields are ignored.
	}
}

// readLine returns the next line without its end (LF, CRLF or CR). The
// slice is valid until the next call.
func (p *sseReader) readLine() ([]byte, error) {
	if !p.started {
		p.started = true
		if bom, err := p.r.Peek(3); err == nil && string(bom) == "\xEF\xBB\xBF" {
			p.r.Discard(3)
		}
	}
	p.line = p.line[:0]
	for {
		c, err := p.r.ReadByte()
		if err != nil {
			if err == io.EOF && len(p.line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if p.skipLF {
			p.skipLF = false
			if c == '\n' {
				continue
			}
		}
		switch c {
		case '\n':
			return p.line, nil
		case '\r':
			p.skipLF = true
			return p.line, nil
		}
		if len(p.line) >= p.maxLine {
			return nil, errSSELineTooLong
		}
		p.line = append(p.line, c)
	}
}
