package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/authtest"
)

// virtualAuthenticator adds a CTAP2 platform authenticator to the tab
// through the DevTools WebAuthn domain: resident keys, user verification
// that succeeds, presence simulated; backupEligible makes its credentials
// synced passkeys (BE and BS set).
func (b *tab) virtualAuthenticator(backupEligible bool) webauthn.AuthenticatorID {
	b.c.t.Helper()
	var id webauthn.AuthenticatorID
	b.do("add a virtual authenticator", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return err
		}
		res, err := cdp.Call(ctx, t, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
			Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
			IsUserVerified: true, AutomaticPresenceSimulation: true,
			DefaultBackupEligibility: backupEligible, DefaultBackupState: backupEligible,
		}})
		id = res.AuthenticatorID
		return err
	}))
	return id
}

// credentials returns the credentials of the tab's virtual authenticator.
func (b *tab) credentials(id webauthn.AuthenticatorID) []*webauthn.Credential {
	b.c.t.Helper()
	var creds []*webauthn.Credential
	b.do("read the authenticator's credentials", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		res, err := cdp.Call(ctx, t, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
		creds = res.Credentials
		return err
	}))
	return creds
}

// addCredential puts a credential into a virtual authenticator. Only the
// fields a copy needs are sent: Chromium refuses the CMTG ones of
// webauthn.Credential on authenticators without that extension.
func (b *tab) addCredential(id webauthn.AuthenticatorID, c *webauthn.Credential) {
	b.c.t.Helper()
	type credential struct {
		CredentialID         []byte  `json:"credentialId"`
		IsResidentCredential bool    `json:"isResidentCredential"`
		RpID                 string  `json:"rpId"`
		PrivateKey           []byte  `json:"privateKey"`
		UserHandle           []byte  `json:"userHandle"`
		SignCount            float64 `json:"signCount"`
		BackupEligibility    bool    `json:"backupEligibility"`
		BackupState          bool    `json:"backupState"`
	}
	type params struct {
		AuthenticatorID webauthn.AuthenticatorID `json:"authenticatorId"`
		Credential      credential               `json:"credential"`
	}
	add := cdp.Command[params, cdp.Empty]{Method: webauthn.CommandAddCredential}
	b.do("add a credential to the authenticator", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, add, params{AuthenticatorID: id, Credential: credential{
			CredentialID: c.CredentialID, IsResidentCredential: c.IsResidentCredential, RpID: c.RpID, PrivateKey: c.PrivateKey,
			UserHandle: c.UserHandle, SignCount: c.SignCount, BackupEligibility: c.BackupEligibility, BackupState: c.BackupState}})
		return err
	}))
}

// sessionIDs returns the ids of the user's sign-in sessions.
func (f *fixture) sessionIDs(t *testing.T, userID string) map[string]*keycard.Session {
	t.Helper()
	list, err := f.stores.Sessions.ListSessions(context.Background(), keycard.SessionFilter{UserID: userID, SignInsOnly: true, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*keycard.Session{}
	for _, s := range list {
		m[s.ID] = s
	}
	return m
}

// newSession waits, up to 30 seconds, for a session of the user that is
// not among before, and returns it.
func (f *fixture) newSession(t *testing.T, userID string, before map[string]*keycard.Session) *keycard.Session {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for id, s := range f.sessionIDs(t, userID) {
			if before[id] == nil {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no new session within 30 seconds")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// auditTypes returns the types of the audit events about the user.
func (f *fixture) auditTypes(t *testing.T, userID string) []string {
	t.Helper()
	events, err := f.stores.Audit.ListAudit(context.Background(), keycard.AuditFilter{User: userID, Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	return types
}

// passkeySignIn signs in from the sign-in page with a passkey and waits
// for the account page: through the username field's autofill
// (conditional mediation, which Chromium's virtual authenticator answers
// at once) unless the tab has no conditional UI (noConditionalUI), then
// with the "Sign in with a passkey" button.
func (b *tab) passkeySignIn() {
	b.c.t.Helper()
	b.do("sign in with a passkey", chromedp.Navigate(b.url+"/signin"), chromedp.WaitReady(chromedp.ID("passkey-signin")))
	if b.eval(`typeof PublicKeyCredential.isConditionalMediationAvailable`) == "function" {
		b.do("wait for the account page", chromedp.WaitVisible(chromedp.ID("passkeys")))
		return
	}
	b.do("press the passkey button",
		chromedp.WaitVisible(chromedp.ID("passkey-button")),
		chromedp.Click(chromedp.ID("passkey-button")),
		chromedp.WaitVisible(chromedp.ID("passkeys")),
	)
}

// noConditionalUI makes the tab's pages see a browser without
// conditional mediation, so that a passkey sign-in needs the button.
func (b *tab) noConditionalUI() {
	b.c.t.Helper()
	b.do("hide conditional mediation", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
			Source: `delete PublicKeyCredential.isConditionalMediationAvailable; PublicKeyCredential.isConditionalMediationAvailable = undefined;`})
		return err
	}))
}

// TestBrowserPasskeys: in Chromium with virtual authenticators, a user
// adds two passkeys from the account page (one on a device, one synced),
// signs in with each without a username, renames and removes them; the
// sessions' amr tell the two apart; a removed passkey and a cloned one
// (its counter set back) can no longer sign in; the user is mailed of
// each addition and removal.
func TestBrowserPasskeys(t *testing.T) {
	f, mp := mailFixture(t, fixtureOptions{passkeys: true})
	alice := f.addUserWithEmail(t, "alice", "alice@example.com")
	if _, err := f.stores.Emails.SetEmail(context.Background(), alice, "alice@example.com", true, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	c := newChrome(t)

	// A laptop: a platform authenticator whose keys stay on it.
	laptop := c.tab(f.url)
	laptopAuth := laptop.virtualAuthenticator(false)
	laptop.do("open sign-in", chromedp.Navigate(f.url+"/signin"), chromedp.WaitVisible(chromedp.ID("username")))
	// Conditional UI: the username field offers passkeys in its autofill,
	// and the page has a conditional request waiting.
	if got := laptop.eval(`document.getElementById("username").getAttribute("autocomplete")`); got != "username webauthn" {
		t.Errorf("the username field's autocomplete is %v, want \"username webauthn\"", got)
	}
	laptop.waitFor(`document.getElementById("signin-form").getAttribute("data-passkey-conditional") === "waiting"`, `true`)
	laptop.signIn("alice")
	laptop.do("add a passkey",
		chromedp.WaitVisible(chromedp.ID("passkey-add-button")),
		chromedp.SendKeys(chromedp.ID("passkey-name"), "Laptop"),
		chromedp.Click(chromedp.ID("passkey-add-button")),
		chromedp.WaitVisible(chromedp.CSS(`li[data-passkey]`)),
	)
	if msg := laptop.text(".notice"); !strings.Contains(msg, "passkey is added") {
		t.Errorf("notice %q", msg)
	}
	if creds := laptop.credentials(laptopAuth); len(creds) != 1 || !creds[0].IsResidentCredential || creds[0].RpID != "localhost" ||
		string(creds[0].UserHandle) != alice {
		t.Fatalf("the authenticator holds %+v, want one discoverable credential for localhost with alice's id as user handle", creds)
	}
	laptop.screenshot("account-passkeys.png")

	// A phone: a synced passkey (backup eligible), added later.
	f.clock.Advance(time.Minute)
	phone := c.tab(f.url)
	phone.noConditionalUI()
	phone.virtualAuthenticator(true)
	phone.do("open sign-in", chromedp.Navigate(f.url+"/signin"), chromedp.WaitVisible(chromedp.ID("username")))
	phone.signIn("alice")
	phone.do("add a synced passkey",
		chromedp.WaitVisible(chromedp.ID("passkey-add-button")),
		chromedp.SendKeys(chromedp.ID("passkey-name"), "Phone"),
		chromedp.Click(chromedp.ID("passkey-add-button")),
		chromedp.WaitVisible(chromedp.CSS(`.notice`)),
	)
	pks, err := f.svc.ListPasskeys(context.Background(), alice)
	if err != nil || len(pks) != 2 {
		t.Fatalf("alice has %d passkeys (%v), want 2", len(pks), err)
	}
	if pks[0].Name != "Laptop" || pks[0].BackupEligible || pks[1].Name != "Phone" || !pks[1].BackupEligible || !pks[1].BackupState || !pks[0].UserVerified {
		t.Errorf("passkeys %+v %+v: want Laptop (not backup eligible, user verified) and Phone (backup eligible and backed up)", pks[0], pks[1])
	}

	// Sign out, then sign in with no username: the laptop's passkey,
	// offered in the username field's autofill; the phone's with the
	// button.
	// Signing out lands on the sign-in page, whose conditional request
	// the authenticator answers: the browser is signed in again.
	before := f.sessionIDs(t, alice)
	laptop.do("sign out", chromedp.Click(chromedp.CSS(`form.signout button`)))
	if got := f.newSession(t, alice, before).AMR; !slices.Equal(got, []string{auth.AMRHardwareKey, auth.AMRMFA}) {
		t.Errorf("a device-bound, user-verified passkey's session has amr %v, want [hwk mfa]", got)
	}
	phone.do("sign out", chromedp.Click(chromedp.CSS(`form.signout button`)), chromedp.WaitVisible(chromedp.ID("username")))
	before = f.sessionIDs(t, alice)
	phone.passkeySignIn()
	if got := f.newSession(t, alice, before).AMR; !slices.Equal(got, []string{auth.AMRSoftwareKey, auth.AMRMFA}) {
		t.Errorf("a synced, user-verified passkey's session has amr %v, want [swk mfa]", got)
	}
	if pks, _ := f.svc.ListPasskeys(context.Background(), alice); pks[0].LastUsedAt.IsZero() || pks[0].SignCount == 0 {
		t.Errorf("after its use the laptop's passkey has last use %v and counter %d", pks[0].LastUsedAt, pks[0].SignCount)
	}

	// Through an application's authorization request: the sign-in page
	// it sends the browser to takes the passkey too, and the browser goes
	// on to the application with a code.
	codes := make(chan string, 1)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case codes <- r.URL.RawQuery:
		default:
		}
		io.WriteString(w, "signed in")
	}))
	t.Cleanup(rp.Close)
	client, _, err := f.svc.CreateClient(context.Background(), auth.Operator(), auth.ClientSpec{Name: "Orders app",
		OAuth: keycard.OAuthSettings{GrantTypes: []string{keycard.GrantAuthorizationCode}, FirstParty: true, RedirectURIs: []string{rp.URL + "/cb"}}})
	if err != nil {
		t.Fatal(err)
	}
	app := c.tab(f.url)
	appAuth := app.virtualAuthenticator(false)
	// This tab's authenticator has no passkey of alice: it gets a copy of
	// the laptop's, as a provider syncing it would bring.
	lc := *laptop.credentials(laptopAuth)[0]
	lc.SignCount += 100 // ahead of the laptop's: a genuine later use
	app.addCredential(appAuth, &lc)
	authorize := url.Values{"client_id": {client.ID}, "redirect_uri": {rp.URL + "/cb"}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"xyz"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	app.do("authorize, signing in with a passkey", chromedp.Navigate(f.url+"/oauth/authorize?"+authorize.Encode()))
	select {
	case q := <-codes:
		if v, _ := url.ParseQuery(q); v.Get("code") == "" || v.Get("state") != "xyz" {
			t.Errorf("the application got %q, want a code and the state", q)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("the authorization request did not reach the application within 30 seconds; the tab is at %s", app.location())
	}
	// Rename the laptop's passkey.
	laptop.do("rename",
		chromedp.Navigate(f.url+"/account"),
		chromedp.WaitVisible(chromedp.CSS(`li[data-passkey] input[name=name]`)),
		chromedp.Clear(chromedp.CSS(`li[data-passkey] input[name=name]`)),
		chromedp.SendKeys(chromedp.CSS(`li[data-passkey] input[name=name]`), "Work laptop"),
		chromedp.Click(chromedp.CSS(`li[data-passkey] form.passkey-rename button`)),
	)
	laptop.waitFor(`(document.querySelector(".notice") || {}).textContent.includes("renamed")`, `true`)
	if got := laptop.text(`li[data-passkey] .passkey-name`); got != "Work laptop" {
		t.Errorf("after renaming, the first passkey is %q", got)
	}

	// Remove the phone's passkey: the phone can no longer sign in with it.
	laptop.do("remove the phone's passkey", chromedp.Click(chromedp.CSS(`li[data-passkey]:nth-child(2) button.danger`)))
	laptop.waitFor(`(document.querySelector(".notice") || {}).textContent.includes("removed")`, `true`)
	if n := laptop.eval(`document.querySelectorAll("li[data-passkey]").length`); n != 1.0 {
		t.Errorf("after removing one, %v passkeys listed, want 1", n)
	}
	phone.do("sign out", chromedp.Click(chromedp.CSS(`form.signout button`)), chromedp.WaitVisible(chromedp.ID("username")))
	phone.do("sign in with the removed passkey",
		chromedp.Navigate(f.url+"/signin"),
		chromedp.WaitVisible(chromedp.ID("passkey-button")),
		chromedp.Click(chromedp.ID("passkey-button")),
		chromedp.WaitVisible(chromedp.ID("passkey-error")),
	)
	if p := phone.path(); !strings.HasPrefix(p, "/signin") {
		t.Errorf("a removed passkey signed in: at %s", p)
	}

	// A clone: the laptop's credential with its counter set back is
	// refused, and the event audited.
	clone := *laptop.credentials(laptopAuth)[0]
	clone.SignCount = 0
	laptop.do("remove the laptop's credential", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, webauthn.RemoveCredential, webauthn.RemoveCredentialParams{AuthenticatorID: laptopAuth, CredentialID: clone.CredentialID})
		return err
	}))
	laptop.addCredential(laptopAuth, &clone)
	laptop.do("sign out, and the clone answers the sign-in page",
		chromedp.Click(chromedp.CSS(`form.signout button`)),
		chromedp.WaitVisible(chromedp.ID("passkey-error")),
	)
	if p := laptop.path(); !strings.HasPrefix(p, "/signin") {
		t.Errorf("a cloned passkey signed in: at %s", p)
	}
	if msg := laptop.text("#passkey-error"); !strings.Contains(msg, "could not sign you in") {
		t.Errorf("the clone's refusal says %q", msg)
	}
	types := f.auditTypes(t, alice)
	for _, want := range []string{auth.AuditPasskeyRegistered, auth.AuditPasskeyRenamed, auth.AuditPasskeyRemoved, auth.AuditPasskeyCounterRegressed} {
		if !slices.Contains(types, want) {
			t.Errorf("no %s in alice's audit events %v", want, types)
		}
	}

	// As a second factor: alice sets up an authenticator app, so the
	// password is no longer enough; at the MFA step a passkey (a copy of
	// the laptop's, ahead of the clone's counter) finishes the sign-in.
	ctx := context.Background()
	pwd, err := f.svc.Login(ctx, "alice", testPassword, auth.Agent{})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := f.svc.Authenticate(ctx, pwd.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	enrol, err := f.svc.BeginTOTP(ctx, pr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ConfirmTOTP(ctx, pr, authtest.TOTPCode(t, enrol.Secret, f.clock.Now()), auth.Agent{}); err != nil {
		t.Fatal(err)
	}
	second := c.tab(f.url)
	second.noConditionalUI()
	secondAuth := second.virtualAuthenticator(false)
	ac := *app.credentials(appAuth)[0]
	ac.SignCount += 50
	second.addCredential(secondAuth, &ac)
	second.do("open sign-in", chromedp.Navigate(f.url+"/signin"), chromedp.WaitVisible(chromedp.ID("username")))
	before = f.sessionIDs(t, alice)
	second.do("password, then a passkey as the second factor",
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("mfa-passkey-button")),
	)
	if p := second.path(); !strings.HasPrefix(p, "/signin/mfa") {
		t.Errorf("after the password: %s, want the MFA step", p)
	}
	if n := second.eval(`document.querySelectorAll("#code").length`); n != 1.0 {
		t.Errorf("the MFA step offers no code field beside the passkey")
	}
	second.screenshot("signin-mfa-passkey.png")
	second.do("use the passkey", chromedp.Click(chromedp.ID("mfa-passkey-button")), chromedp.WaitVisible(chromedp.ID("passkeys")))
	if got := f.newSession(t, alice, before).AMR; !slices.Equal(got, []string{auth.AMRPassword, auth.AMRHardwareKey, auth.AMRMFA}) {
		t.Errorf("a password and a passkey give the session amr %v, want [pwd hwk mfa]", got)
	}

	// Mail: two additions and a removal (the verification mail too).
	mp.WaitFor(t, "alice@example.com", 4)
	var subjects []string
	for _, m := range mp.Messages(t) {
		subjects = append(subjects, m.Subject)
	}
	added, removed := 0, 0
	for _, s := range subjects {
		added += strings.Count(s, "passkey was added")
		removed += strings.Count(s, "passkey was removed")
	}
	if added != 2 || removed != 1 {
		b, _ := json.Marshal(subjects)
		t.Errorf("mails %s: want 2 about an added passkey and 1 about a removed one", b)
	}
}
