// Package chrometest starts headless Chromium (Debian's chromium package)
// for the tests that drive the real pages with chromedp. Without Chromium
// those tests skip, unless KEYCARD_TEST_BROWSER=1 (CI), which makes them
// fail; with -short they skip.
package chrometest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Timeout bounds a whole browser test.
const Timeout = 90 * time.Second

// Path returns Chromium's executable, skipping (or failing, with
// KEYCARD_TEST_BROWSER=1) the test when there is none.
func Path(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("KEYCARD_TEST_BROWSER") == "1" {
		t.Fatal("KEYCARD_TEST_BROWSER=1 but no Chromium: apt-get install chromium")
	}
	t.Skip("no Chromium: apt-get install chromium to run the browser tests (KEYCARD_TEST_BROWSER=1 makes them required)")
	return ""
}

// Start starts headless Chromium for the test and returns its browser
// context, which ends (and Chromium with it) when the test ends or after
// Timeout. Open tabs with chromedp.NewContext on it.
func Start(t testing.TB) context.Context {
	t.Helper()
	return StartFor(t, Timeout)
}

// StartFor is Start for a test that needs longer than Timeout: one that
// waits for tokens to expire, for instance.
func StartFor(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	path := Path(t)
	if testing.Short() {
		t.Skip("browser tests are skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Tabs in the background must go on running: the tests switch
		// between browsers.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.WindowSize(1100, 800),
	)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return browser
}

// HeadingIs waits until the page's h1 reads want, through the
// navigations on the way (the step's context bounds the wait).
func HeadingIs(want string) chromedp.Action[chromedp.Void] {
	read := chromedp.Evaluate[string](`document.querySelector("h1")?.textContent ?? ""`)
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			if got, err := read(ctx, t); err == nil && got == want {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for the heading %q: %w", want, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}
