// Package otlptest is an OpenTelemetry collector's OTLP/HTTP trace
// receiver for tests: it decodes the protobuf export requests that a
// real exporter sends to /v1/traces and keeps their spans, so that a test
// can check what a Keycard process actually sent.
package otlptest

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// Span is a span received, with the service.name of its resource.
type Span struct {
	Service string
	*tracepb.Span
}

// TraceID and SpanID return the span's ids in lower-case hex;
// ParentID its parent's ("" for a root).
func (s Span) TraceID() string { return hex.EncodeToString(s.Span.TraceId) }
func (s Span) SpanID() string  { return hex.EncodeToString(s.Span.SpanId) }
func (s Span) ParentID() string {
	return hex.EncodeToString(s.Span.ParentSpanId)
}

// Attr returns the value of the span's attribute key, as text.
func (s Span) Attr(key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return text(kv.Value)
		}
	}
	return ""
}

func text(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case nil:
		return ""
	}
	return prototext.Format(v) // arrays, maps, bytes: their text, to search
}

// Texts returns every string the span carries: its name, status message,
// attributes, events and links, and its resource's attributes.
func (s Span) Texts(resource []*commonpb.KeyValue) []string {
	out := []string{s.Name, s.Status.GetMessage(), s.TraceState}
	add := func(kvs []*commonpb.KeyValue) {
		for _, kv := range kvs {
			out = append(out, kv.Key, text(kv.Value))
		}
	}
	add(s.Attributes)
	add(resource)
	for _, e := range s.Events {
		out = append(out, e.Name)
		add(e.Attributes)
	}
	for _, l := range s.Links {
		out = append(out, l.TraceState)
		add(l.Attributes)
	}
	return out
}

// Receiver is a running OTLP/HTTP receiver. It is safe for concurrent
// use.
type Receiver struct {
	// URL is the receiver's base URL, to give as an OTLP endpoint.
	URL string

	mu      sync.Mutex
	spans   []Span
	texts   []string
	headers []http.Header
}

// NewReceiver starts a receiver on a loopback port, stopped when the test
// ends. It answers 400 to anything but an OTLP protobuf POST to
// /v1/traces.
func NewReceiver(t testing.TB) *Receiver {
	r := &Receiver{}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	in := &collectortrace.ExportTraceServiceRequest{}
	if err != nil || req.Method != http.MethodPost || req.URL.Path != "/v1/traces" ||
		req.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, in) != nil {
		http.Error(w, "want an OTLP protobuf export to /v1/traces", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.headers = append(r.headers, req.Header.Clone())
	for _, rs := range in.ResourceSpans {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				service = text(kv.Value)
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				s := Span{Service: service, Span: sp}
				r.spans = append(r.spans, s)
				r.texts = append(r.texts, s.Texts(rs.GetResource().GetAttributes())...)
			}
		}
	}
	r.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Texts returns every string of every span received (see Span.Texts).
func (r *Receiver) Texts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.texts...)
}

// Headers returns the headers of the export requests received.
func (r *Receiver) Headers() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.headers...)
}
