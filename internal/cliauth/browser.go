package cliauth

import (
	"os/exec"
	"runtime"
)

// browserCommand returns the program and arguments that open url in the
// user's browser on the system goos: open on macOS, the URL protocol
// handler through rundll32 on Windows (no shell, so no quoting of "&"),
// xdg-open elsewhere.
func browserCommand(goos, url string) (string, []string) {
	switch goos {
	case "darwin":
		return "open", []string{url}
	case "windows":
		return "rundll32", []string{"url.dll,FileProtocolHandler", url}
	}
	return "xdg-open", []string{url}
}

// OpenBrowser asks the system to open url in the user's browser, and
// does not wait for it. An error means the program could not be started;
// a browser that fails to appear is not reported (print the URL too).
func OpenBrowser(url string) error {
	name, args := browserCommand(runtime.GOOS, url)
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait() // reaps it
	return nil
}
