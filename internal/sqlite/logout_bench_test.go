package sqlite_test

import (
	"testing"

	"github.com/keycard-auth/keycard/internal/storetest"
)

// BenchmarkRevokeBrowserSession measures the sign-out of a browser
// session with two grant sessions under it, whose client has a
// back-channel logout URI (told: the trigger owes two deliveries) or not
// (untold: the trigger looks and owes none).
func BenchmarkRevokeBrowserSession(b *testing.B) {
	for _, told := range []bool{true, false} {
		name := map[bool]string{true: "told", false: "untold"}[told]
		b.Run(name, func(b *testing.B) {
			db, err := openB(b)
			if err != nil {
				b.Fatal(err)
			}
			storetest.BenchRevokeBrowserSession(b, db.Stores(), told)
		})
	}
}
