package demo

import (
	"encoding/json"
	"hash/fnv"
	"mime"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/keycard-auth/keycard/verifier"
)

// weatherService is the demo weather service: GET /weather/{city} answers
// a made-up forecast to tokens with weather:read. It verifies tokens
// itself, as a service behind a gateway should, not trusting that every
// request came through the gateway.
func weatherService(v *verifier.Verifier) http.Handler {
	conditions := []string{"sunny", "cloudy", "rain", "fog", "snow", "wind"}
	mux := http.NewServeMux()
	mux.Handle("GET /weather/{city}", verifier.RequireScope(ScopeWeather)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		city := r.PathValue("city")
		if !demoName(city) {
			demoError(w, http.StatusBadRequest, "invalid_request", "A city is 1 to 64 letters, digits, spaces or dashes.")
			return
		}
		h := fnv.New32a()
		h.Write([]byte(strings.ToLower(city)))
		n := h.Sum32()
		c, _ := verifier.FromContext(r.Context())
		demoJSON(w, http.StatusOK, map[string]any{
			"city": city, "temperature_c": int(n%36) - 5, "conditions": conditions[n/36%uint32(len(conditions))],
			"subject": c.Subject,
		})
	})))
	return v.Middleware()(mux)
}

// ordersService is the demo orders service: POST /orders/ with
// {"item":"…","quantity":N} accepts an order (201) from tokens with
// orders:write. Like the weather service it verifies tokens itself. It
// keeps nothing but a counter.
func ordersService(v *verifier.Verifier) http.Handler {
	var seq atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("POST /orders/{$}", verifier.RequireScope(ScopeOrders)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			demoError(w, http.StatusUnsupportedMediaType, "invalid_request", "Send the order as application/json.")
			return
		}
		var order struct {
			Item     string `json:"item"`
			Quantity int    `json:"quantity"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&order); err != nil || dec.More() {
			demoError(w, http.StatusBadRequest, "invalid_request", `The body must be one JSON object {"item":"…","quantity":N} of at most 1 KiB.`)
			return
		}
		if !demoName(order.Item) || order.Quantity < 1 || order.Quantity > 99 {
			demoError(w, http.StatusBadRequest, "invalid_request", "item is 1 to 64 letters, digits, spaces or dashes; quantity is 1 to 99.")
			return
		}
		c, _ := verifier.FromContext(r.Context())
		demoJSON(w, http.StatusCreated, map[string]any{
			"order_id": seq.Add(1), "item": order.Item, "quantity": order.Quantity,
			"status": "accepted", "subject": c.Subject,
		})
	})))
	return v.Middleware()(mux)
}

// demoName reports whether s is 1 to 64 ASCII letters, digits, spaces or
// dashes.
func demoName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == ' ' || r == '-') {
			return false
		}
	}
	return true
}

func demoJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func demoError(w http.ResponseWriter, status int, code, desc string) {
	demoJSON(w, status, map[string]string{"error": code, "error_description": desc})
}
