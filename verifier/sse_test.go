package verifier

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestSSEReader(t *testing.T) {
	type ev struct {
		comment     bool
		event, data string
		id          string
		hasID       bool
	}
	tests := []struct {
		name    string
		stream  string
		want    []ev
		wantErr error // after the events; nil means io.EOF
	}{
		{
			name:   "events and a heartbeat",
			stream: ": heartbeat\n\nid: 42\nevent: revocation\ndata: {\"seq\":42}\n\n",
			want:   []ev{{comment: true}, {event: "revocation", data: `{"seq":42}`, id: "42", hasID: true}},
		},
		{
			name:   "CRLF and CR line ends",
			stream: "event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\rdata: 3\n\n",
			want:   []ev{{event: "a", data: "1"}, {event: "b", data: "2"}, {data: "3"}},
		},
		{
			name:   "data lines join with LF; no space after the colon; a byte order mark",
			stream: "\xEF\xBB\xBFdata:one\ndata: two\ndata\n\n",
			want:   []ev{{data: "one\ntwo\n"}},
		},
		{
			name:   "an event without data is not dispatched",
			stream: "event: snapshot\nid: 7\n\ndata: x\n\n",
			want:   []ev{{data: "x"}},
		},
		{
			name:   "unknown fields and retry are ignored; an id with NUL is ignored",
			stream: "retry: 10\nfoo: bar\nid: a\x00b\ndata: x\n\n",
			want:   []ev{{data: "x"}},
		},
		{
			name:   "a comment inside an event is skipped",
			stream: "event: e\n: hi\ndata: x\n\n",
			want:   []ev{{event: "e", data: "x"}},
		},
		{
			name:   "an event cut short is discarded",
			stream: "data: x\n\ndata: half\n",
			want:   []ev{{data: "x"}},
		},
		{
			name:    "a line cut short",
			stream:  "data: x\n\ndata: ha",
			want:    []ev{{data: "x"}},
			wantErr: io.ErrUnexpectedEOF,
		},
		{
			name:    "a line too long",
			stream:  "data: " + strings.Repeat("a", maxSSELine) + "\n\n",
			wantErr: errSSELineTooLong,
		},
		{
			name:    "a line too long without any line end",
			stream:  strings.Repeat(":", 3*maxSSELine),
			wantErr: errSSELineTooLong,
		},
		{
			name:    "an event too large",
			stream:  strings.Repeat("data: "+strings.Repeat("a", 1000)+"\n", maxSSEEvent/1000+1) + "\n",
			wantErr: errSSEEventTooLong,
		},
		{
			name:    "an event of ids too large",
			stream:  strings.Repeat("id: "+strings.Repeat("1", 1000)+"\n", maxSSEEvent/1000+1) + "\n",
			wantErr: errSSEEventTooLong,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := 0
			r := newSSEReader(strings.NewReader(tt.stream), func() { lines++ })
			var got []ev
			var err error
			for {
				var e sseEvent
				if e, err = r.next(); err != nil {
					break
				}
				got = append(got, ev{e.comment, e.event, string(e.data), e.id, e.hasID})
			}
			want := tt.wantErr
			if want == nil {
				want = io.EOF
			}
			if !errors.Is(err, want) {
				t.Errorf("error %v, want %v", err, want)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("events %+v, want %+v", got, tt.want)
			}
			if len(tt.want) > 0 && lines == 0 {
				t.Error("onLine was never called")
			}
		})
	}
}

func FuzzSSEReader(f *testing.F) {
	f.Add([]byte(": heartbeat\n\nid: 42\nevent: revocation\ndata: {\"seq\":42}\n\n"))
	f.Add([]byte("event: snapshot\r\ndata: {\"next\":3}\r\n\r\n"))
	f.Add([]byte("\xEF\xBB\xBFdata\rdata:\r\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newSSEReader(bytes.NewReader(b), nil)
		r.maxLine, r.maxEvent = 64, 256
		for range len(b) + 1 {
			ev, err := r.next()
			if err != nil {
				return
			}
			if len(ev.data) > r.maxEvent || len(ev.event) > r.maxLine || len(ev.id) > r.maxLine {
				t.Fatalf("event beyond the limits: %d bytes of data, event %d, id %d", len(ev.data), len(ev.event), len(ev.id))
			}
		}
		t.Fatal("more events than bytes")
	})
}
