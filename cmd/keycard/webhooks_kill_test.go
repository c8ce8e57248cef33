package main

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookReceiver is a webhook endpoint that stalls the first request it
// gets (until the sender goes away), fails the second with 500 and
// accepts the others, keeping every request.
type hookReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []hookRequest
	stalled chan struct{} // closed when the first request has arrived
}

type hookRequest struct {
	id, timestamp, signature string
	body                     []byte
	status                   int
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{stalled: make(chan struct{})}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		n := len(h.got) + 1
		status := http.StatusOK
		switch n {
		case 1:
			status = 0 // no answer: the sender is killed while it waits
		case 2:
			status = http.StatusInternalServerError
		}
		h.got = append(h.got, hookRequest{r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body, status})
		h.mu.Unlock()
		if n == 1 {
			close(h.stalled)
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Minute):
			}
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(func() {
		h.srv.CloseClientConnections()
		h.srv.Close()
	})
	return h
}

func (h *hookReceiver) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest{}, h.got...)
}

// checkHookSignature verifies a request as a receiver does (Standard
// Webhooks): HMAC-SHA256 of id.timestamp.body under the secret's key.
func checkHookSignature(secret string, r hookRequest) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", r.id, r.timestamp, r.body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(r.signature) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

// hookDeliveries lists the deliveries with the command line.
func hookDeliveries(t *testing.T, data string) []map[string]any {
	t.Helper()
	code, out, errOut := run(t, "", "webhooks", "deliveries", "--data", data, "--limit", "500")
	if code != exitOK {
		t.Fatalf("webhooks deliveries: exit %d: %s", code, errOut)
	}
	var ds []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var d map[string]any
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("webhooks deliveries printed %q", sc.Text())
		}
		ds = append(ds, d)
	}
	return ds
}

// TestWebhooksSurviveKill: webhooks owed when the server is killed with
// SIGKILL in the middle of a delivery are all delivered after it
// restarts, with events recorded while it was down: the outbox is in the
// database, a lease lapses, and nothing is lost (at least once: receivers
// drop duplicates by webhook-id).
func TestWebhooksSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the keycard binary; not in -short mode")
	}
	bin := buildClusterBinary(t, t.TempDir())
	data := t.TempDir()
	hooks := newHookReceiver(t)
	if code, _, errOut := run(t, "", "migrate", "--data", data); code != exitOK {
		t.Fatalf("migrate: %s", errOut)
	}
	code, out, errOut := run(t, "", "webhooks", "add", "--data", data, "--url", hooks.srv.URL+"/keycard", "--description", "test receiver")
	var endpoint struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &endpoint) != nil || !strings.HasPrefix(endpoint.Secret, "whsec_") {
		t.Fatalf("webhooks add: exit %d, %q, %s", code, out, errOut)
	}
	addUser := func(name string) {
		t.Helper()
		if code, _, errOut := run(t, clusterPassword+"\n", "users", "add", "--data", data, "--username", name,
			"--password-stdin", "--argon2-memory", "64", "--argon2-iterations", "1"); code != exitOK {
			t.Fatalf("users add %s: %s", name, errOut)
		}
	}
	for i := range 4 {
		addUser(fmt.Sprint("user", i+1))
	}
	serve := []string{"serve", "--dev", "--data", data, "--addr", "127.0.0.1:0", "--argon2-memory", "64", "--argon2-iterations", "1",
		"--webhook-timeout", "2s", "--webhook-backoff", "100ms"}
	env := clusterEnv()

	first := startClusterProc(t, "keycard (first run)", bin, env, serve...)
	first.waitListening(t)
	select {
	case <-hooks.stalled:
	case <-time.After(60 * time.Second):
		t.Fatal("no webhook arrived within 60s")
	}
	stalledID := hooks.requests()[0].id
	first.kill() // SIGKILL, while the first delivery waits for its answer

	// The delivery under way when the server died is still owed.
	pending := 0
	for _, d := range hookDeliveries(t, data) {
		if d["webhook_id"] == stalledID && d["state"] != "pending" {
			t.Errorf("the delivery under way at the kill is %v, want pending", d["state"])
		}
		if d["state"] == "pending" {
			pending++
		}
	}
	if pending == 0 {
		t.Fatal("nothing pending after the kill")
	}
	addUser("user5") // while the server is down

	second := startClusterProc(t, "keycard (restarted)", bin, env, serve...)
	second.waitListening(t)
	login, err := http.Post(second.base+"/v1/login", "application/json", strings.NewReader(`{"username":"user1","password":"`+clusterPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	login.Body.Close()
	if login.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", login.StatusCode)
	}

	// 5 user.created and a user.signed_in, each delivered.
	deadline := time.Now().Add(90 * time.Second)
	for {
		ds := hookDeliveries(t, data)
		delivered := 0
		for _, d := range ds {
			if d["state"] == "delivered" {
				delivered++
			}
		}
		if len(ds) == 6 && delivered == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90s: %d deliveries, %d delivered, want 6 delivered: %v", len(ds), delivered, ds)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The receiver accepted every event, each signed as the secret says.
	accepted := map[string]map[string]any{}
	for _, r := range hooks.requests() {
		if !checkHookSignature(endpoint.Secret, r) {
			t.Errorf("request %s: the signature does not verify", r.id)
		}
		var body struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Errorf("request %s: body %q", r.id, r.body)
			continue
		}
		if r.status == http.StatusOK {
			accepted[r.id] = map[string]any{"type": body.Type, "data": body.Data}
		}
	}
	var names []string
	signedIn := 0
	for _, a := range accepted {
		data := a["data"].(map[string]any)
		switch a["type"] {
		case "user.created":
			names = append(names, fmt.Sprint(data["username"]))
		case "user.signed_in":
			signedIn++
		}
	}
	if len(accepted) != 6 || len(names) != 5 || signedIn != 1 {
		t.Errorf("accepted %d messages: user.created for %v and %d user.signed_in; want 6: five users and one sign-in", len(accepted), names, signedIn)
	}
	if _, ok := accepted[stalledID]; !ok {
		t.Errorf("the message under way at the kill (%s) was never accepted", stalledID)
	}
	for _, secret := range []string{endpoint.Secret, clusterPassword} {
		if strings.Contains(first.log.String()+second.log.String(), secret) {
			t.Error("the server's log holds a secret")
		}
	}
}

// TestWebhooksCLI: endpoints are added (the secret printed once), listed
// without it and removed; deliveries are listed and a settled one
// replayed; bad input is refused with a message.
func TestWebhooksCLI(t *testing.T) {
	data := t.TempDir()
	if code, _, errOut := run(t, "", "migrate", "--data", data); code != exitOK {
		t.Fatalf("migrate: %s", errOut)
	}
	code, out, errOut := run(t, "", "webhooks", "add", "--data", data, "--url", "https://hooks.example/k", "--event", "user.created,session.revoked")
	var ep map[string]any
	if code != exitOK || json.Unmarshal([]byte(out), &ep) != nil || !strings.HasPrefix(fmt.Sprint(ep["secret"]), "whsec_") ||
		!strings.Contains(errOut, "only this once") {
		t.Fatalf("webhooks add: exit %d, %q, %q", code, out, errOut)
	}
	id := fmt.Sprint(ep["id"])
	for _, tc := range []struct {
		name string
		args []string
		want int
		msg  string
	}{
		{"no URL", []string{"webhooks", "add", "--data", data}, exitUsage, "--url is required"},
		{"http off loopback", []string{"webhooks", "add", "--data", data, "--url", "http://hooks.example/k"}, exitFailure, "https"},
		{"unknown event", []string{"webhooks", "add", "--data", data, "--url", "https://hooks.example/k", "--event", "user.exploded"}, exitFailure, "event type"},
		{"remove without id", []string{"webhooks", "remove", "--data", data}, exitUsage, "--id is required"},
		{"remove unknown", []string{"webhooks", "remove", "--data", data, "--id", "nope"}, exitFailure, "not found"},
		{"replay without id", []string{"webhooks", "replay", "--data", data}, exitUsage, "--id is required"},
		{"replay unknown", []string{"webhooks", "replay", "--data", data, "--id", "99"}, exitFailure, "not found"},
		{"bad state", []string{"webhooks", "deliveries", "--data", data, "--state", "lost"}, exitUsage, "--state"},
		{"bad limit", []string{"webhooks", "deliveries", "--data", data, "--limit", "0"}, exitUsage, "--limit"},
		{"unknown subcommand", []string{"webhooks", "frob"}, exitUsage, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(t, "", tc.args...)
			if code != tc.want || !strings.Contains(errOut, tc.msg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.want, tc.msg)
			}
		})
	}
	if code, _, errOut := run(t, "", "webhooks", "add", "--data", data, "--url", "http://hooks.internal/k", "--allow-http"); code != exitOK {
		t.Errorf("webhooks add --allow-http: exit %d, %s", code, errOut)
	}
	code, out, _ = run(t, "", "webhooks", "list", "--data", data)
	if code != exitOK || strings.Count(out, "\n") != 2 || strings.Contains(out, "whsec_") {
		t.Errorf("webhooks list: exit %d, %q; want two endpoints without secrets", code, out)
	}

	if code, _, errOut := run(t, clusterPassword+"\n", "users", "add", "--data", data, "--username", "ann",
		"--password-stdin", "--argon2-memory", "64", "--argon2-iterations", "1"); code != exitOK {
		t.Fatalf("users add: %s", errOut)
	}
	ds := hookDeliveries(t, data)
	if len(ds) != 2 {
		t.Fatalf("deliveries: got %v, want one to each endpoint", ds)
	}
	delivery := fmt.Sprint(ds[0]["id"])
	if code, _, errOut := run(t, "", "webhooks", "replay", "--data", data, "--id", delivery); code != exitFailure || !strings.Contains(errOut, "pending") {
		t.Errorf("replay of a pending delivery: exit %d, %q", code, errOut)
	}
	code, out, _ = run(t, "", "webhooks", "deliveries", "--data", data, "--endpoint", id, "--state", "pending")
	if code != exitOK || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"event_type":"user.created"`) {
		t.Errorf("deliveries of one endpoint: exit %d, %q", code, out)
	}
	if code, out, errOut := run(t, "", "webhooks", "remove", "--data", data, "--id", id); code != exitOK || !strings.Contains(out, "removed") {
		t.Errorf("webhooks remove: exit %d, %q %q", code, out, errOut)
	}
	if got := hookDeliveries(t, data); len(got) != 1 {
		t.Errorf("deliveries after the removal: got %d, want 1", len(got))
	}
}

// TestWebhooksCLIFlagsNotFromEnv: a subcommand's own flags come from the
// command line only: KEYCARD_URL or KEYCARD_ID in the environment (or a
// config file) is not an endpoint to register or remove.
func TestWebhooksCLIFlagsNotFromEnv(t *testing.T) {
	data := t.TempDir()
	if code, _, errOut := run(t, "", "migrate", "--data", data); code != exitOK {
		t.Fatalf("migrate: %s", errOut)
	}
	t.Setenv("KEYCARD_URL", "https://env.example/hooks")
	t.Setenv("KEYCARD_ID", "from-env")
	t.Setenv("KEYCARD_ALLOW_HTTP", "true")
	if code, _, errOut := run(t, "", "webhooks", "add", "--data", data); code != exitUsage || !strings.Contains(errOut, "--url is required") {
		t.Errorf("webhooks add with KEYCARD_URL: exit %d, %q; want usage", code, errOut)
	}
	if code, _, errOut := run(t, "", "webhooks", "add", "--data", data, "--url", "http://hooks.internal/k"); code != exitFailure {
		t.Errorf("webhooks add of http with KEYCARD_ALLOW_HTTP: exit %d, %q; want refused", code, errOut)
	}
	if code, _, errOut := run(t, "", "webhooks", "remove", "--data", data); code != exitUsage || !strings.Contains(errOut, "--id is required") {
		t.Errorf("webhooks remove with KEYCARD_ID: exit %d, %q; want usage", code, errOut)
	}
}
