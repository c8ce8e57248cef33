package server

import (
	"context"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/keycard-auth/keycard/internal/chrometest"
	"github.com/keycard-auth/keycard/internal/federation"
)

// TestFederationZitadel signs in at Keycard through an OpenID Provider
// nobody here wrote: the example provider of github.com/zitadel/oidc v3
// (a certified library), its storage and login pages as the module ships
// them, served in this process. Its ID tokens carry no profile claims
// (the example asks for them at userinfo), so the provider is configured
// with use_userinfo; the account is created just in time from them.
func TestFederationZitadel(t *testing.T) {
	browser := chrometest.Start(t)
	ctx := context.Background()
	downLn, downPort := listen(t)
	downBase := "http://127.0.0.1:" + downPort
	opLn, opPort := listen(t)
	issuer := "http://localhost:" + opPort + "/"
	// The example's client registry is the package's own; this test is
	// its only user in the process.
	storage.RegisterClients(storage.WebClient("keycard", "zitadel-secret", downBase+"/federation/zitadel/callback"))
	op := &http.Server{Handler: exampleop.SetupServer(issuer, storage.NewStorage(storage.NewUserStore(issuer)), nil, false)}
	go op.Serve(opLn)
	t.Cleanup(func() { op.Close() })

	c := testConfig(t)
	c.Federation = []federation.Config{{Name: "zitadel", DisplayName: "ZITADEL example", Issuer: issuer, ClientID: "keycard", ClientSecret: "zitadel-secret",
		UseUserinfo: true, CreateUsers: true}}
	down := serveOn(t, c, downLn, downBase)

	tabCtx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	b := &tab{t: t, ctx: tabCtx}
	b.do("Keycard's sign-in page", chromedp.Navigate(downBase+"/signin?next=%2Faccount"), chromedp.WaitVisible(chromedp.ID("signin-with-zitadel")))
	b.do("the provider's button", chromedp.Click(chromedp.ID("signin-with-zitadel")), at("http://localhost:"+opPort+"/login/"))
	b.do("signing in at the example provider",
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "test-user@localhost"),
		chromedp.SendKeys(chromedp.ID("password"), "verysecure"+kb.Enter))
	b.do("back at Keycard, signed in", chrometest.HeadingIs("Your account"), chromedp.WaitVisible(chromedp.CSS(`[data-provider="zitadel"]`)))

	svc := down.Service()
	u, err := svc.UserByName(ctx, "test-user@localhost")
	if err != nil {
		t.Fatalf("the user was not created just in time: %v", err)
	}
	if u.Email != "test-user@zitadel.ch" || !u.EmailVerified || u.HasPassword() {
		t.Errorf("created user: %+v; want the provider's verified address and no password", u)
	}
	ids, err := svc.Identities(ctx, u.ID)
	if err != nil || len(ids) != 1 || ids[0].Provider != "zitadel" || ids[0].Subject != "id1" {
		t.Errorf("linked identities: %+v, %v; want zitadel id1", ids, err)
	}
	sess, err := svc.UserSessions(ctx, u.ID, "", 10)
	if err != nil || len(sess) != 1 || sess[0].IdP != "zitadel" || len(sess[0].AMR) != 1 || sess[0].AMR[0] != "fed" {
		t.Errorf("sessions: %+v, %v", sess, err)
	}
}
