package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/chrometest"
)

// tab runs chromedp steps within 30 seconds, failing the test with what
// the page shows.
type tab struct {
	t   *testing.T
	ctx context.Context
}

func (b *tab) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		c2, cancel2 := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel2()
		loc, _ := chromedp.Run(c2, chromedp.Location())
		text, _ := chromedp.Run(c2, chromedp.Text(chromedp.CSS("body")))
		b.t.Fatalf("%s: %v; the browser is at %s showing:\n%s", step, err, loc, text)
	}
}

// at waits until the browser is at a URL that starts with prefix.
func at(prefix string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			if loc, err := chromedp.Location()(ctx, t); err == nil && strings.HasPrefix(loc, prefix) {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting to be at %s: %w", prefix, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

// upstreamSignIn fills in the upstream's sign-in form.
func upstreamSignIn(user string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), fedPassword+kb.Enter),
	)
}

// TestFederationBrowser signs in at the downstream with the upstream's
// button in Chromium (so the cookies' SameSite rules are a browser's),
// links the provider to a password account from the account page, and
// sees the upstream's sign-out end the downstream session.
func TestFederationBrowser(t *testing.T) {
	browser := chrometest.Start(t)
	ctx := context.Background()
	e := newFedEnv(t, nil)
	b := &tab{t: t, ctx: browser}
	tabCtx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(tabCtx); err != nil { // the tab lives as long as tabCtx, not a step's context
		t.Fatalf("opening a tab: %v", err)
	}
	b.ctx = tabCtx

	b.do("the downstream's sign-in page", chromedp.Navigate(e.down.base+"/signin?next=%2Faccount"), chromedp.WaitVisible(chromedp.ID("signin-with-up")))
	b.do("the provider's button", chromedp.Click(chromedp.ID("signin-with-up")), at(e.up.base+"/signin"))
	b.do("signing in at the upstream", upstreamSignIn("ann"))
	b.do("back at the downstream, signed in", chrometest.HeadingIs("Your account"), chromedp.WaitVisible(chromedp.CSS(`[data-provider="up"]`)))
	svc := e.down.Service()
	ann, err := svc.UserByName(ctx, "ann")
	if err != nil {
		t.Fatalf("the user was not created: %v", err)
	}
	sess, err := svc.UserSessions(ctx, ann.ID, "", 10)
	if err != nil || len(sess) != 1 {
		t.Fatalf("ann's sessions: %+v, %v", sess, err)
	}

	// ann signs out at the upstream, in the same browser: its
	// back-channel logout ends the downstream session.
	b.do("the upstream's account page", chromedp.Navigate(e.up.base+"/account"), chrometest.HeadingIs("Your account"))
	b.do("signing out at the upstream", chromedp.Click(chromedp.CSS(`form.signout button`)), chrometest.HeadingIs("Sign in"))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := svc.BrowserSession(ctx, sess[0].ID); keycard.ErrorCode(err) == keycard.ENOTFOUND {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the downstream session outlived the upstream's sign-out by 30 s")
		}
	}
	b.do("the downstream's account page after the upstream's sign-out", chromedp.Navigate(e.down.base+"/account"), chrometest.HeadingIs("Sign in"))

	// A password user of the downstream links the provider, then signs
	// in with it.
	if _, err := svc.CreateUser(ctx, auth.Operator(), "carol", fedPassword, nil); err != nil {
		t.Fatal(err)
	}
	e.upUser(t, "carol-up", "carol@corp.example", true)
	b.do("the downstream's sign-in form", chromedp.Navigate(e.down.base+"/signin?next=%2Faccount"))
	b.do("signing in with a password", upstreamSignIn("carol"))
	b.do("signed in with a password", chrometest.HeadingIs("Your account"))
	b.do("linking the provider", chromedp.Click(chromedp.ID("link-up")), at(e.up.base+"/signin"))
	b.do("signing in at the upstream to link", upstreamSignIn("carol-up"))
	b.do("linked", chrometest.HeadingIs("Your account"), chromedp.WaitVisible(chromedp.CSS(`[data-provider="up"]`)))
	carol, _ := svc.UserByName(ctx, "carol")
	if ids, _ := svc.Identities(ctx, carol.ID); len(ids) != 1 {
		t.Fatalf("carol's identities: %+v", ids)
	}
	b.do("signing out at the downstream", chromedp.Click(chromedp.CSS(`form.signout button`)), chrometest.HeadingIs("Sign in"))
	b.do("the sign-in page", chromedp.Navigate(e.down.base+"/signin?next=%2Faccount"), chromedp.WaitVisible(chromedp.ID("signin-with-up")))
	b.do("signing in with the provider, whose session is still there", chromedp.Click(chromedp.ID("signin-with-up")))
	b.do("signed in with the provider", chrometest.HeadingIs("Your account"))
	rctx, rcancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer rcancel()
	who, err := chromedp.Run(rctx, chromedp.Text(chromedp.CSS(".who")))
	if err != nil || who != "carol" {
		t.Errorf("signed in as %q (%v), want carol", who, err)
	}
}
