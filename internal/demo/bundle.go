package demo

import _ "embed"

// browserBundle is @keycard/browser (js/browser) built into one ES module
// by "npm run build" in js/browser and copied here by "npm run embed";
// .ci/run rebuilds it and fails when the committed file differs (npm run
// check-embed), so the demo always serves the package's source.
//
//go:embed keycard-browser.js
var browserBundle []byte

// BrowserBundle returns @keycard/browser as one ES module, as the weather
// page loads it. The slice is shared: callers must not modify it.
func BrowserBundle() []byte { return browserBundle }
