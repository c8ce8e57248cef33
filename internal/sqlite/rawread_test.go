package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/keycard-auth/keycard"
)

// openFiles returns how many of this process's file descriptors are open
// on path or its -wal and -shm files; it skips the test where /proc does
// not tell.
func openFiles(t *testing.T, path string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, path) {
			n++
		}
	}
	return n
}

// TestRawReadRow reads on every connection of the read pool at once
// through DB.rawReadRow, then checks that closing the database closes its
// connections for good: SQLite keeps a connection with unfinalized
// statements open, with its files, so the statements each connection
// prepared must be closed with it.
func TestRawReadRow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keycard.db")
	db, err := Open(context.Background(), path, Options{ReadConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.Stores().Clients.CreateClient(ctx, &keycard.Client{ID: "c1", Name: "one", SecretHash: []byte("hash"), Scopes: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	// Hold every connection, so that each prepares its statements.
	var conns []*sql.Conn
	for range 4 {
		c, err := db.read.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*20)
	for _, c := range conns {
		wg.Go(func() {
			defer c.Close()
			c.Raw(func(dc any) error {
				rc := dc.(*readConn)
				for range 20 {
					s, err := rc.stmt(ctx, `SELECT name, secret_hash FROM clients WHERE id = ?`)
					if err != nil {
						errs <- err
						return nil
					}
					var (
						name string
						hash []byte
					)
					if err := queryRawRow(ctx, s, []driver.NamedValue{{Ordinal: 1, Value: "c1"}}, []any{&name, &hash}); err != nil {
						errs <- err
					} else if name != "one" || string(hash) != "hash" {
						t.Errorf("got %q, %q; want one, hash", name, hash)
					}
				}
				if len(rc.stmts) != 1 {
					t.Errorf("%d statements prepared on the connection, want 1", len(rc.stmts))
				}
				return nil
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var name string
	if err := db.rawReadRow(ctx, `SELECT name FROM clients WHERE id = ?`, []any{"c1"}, &name); err != nil || name != "one" {
		t.Errorf("rawReadRow: %q, %v; want one", name, err)
	}
	if err := db.rawReadRow(ctx, `SELECT name FROM clients WHERE id = ?`, []any{"nosuch"}, &name); !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("rawReadRow of no row: %v, want sql.ErrNoRows", err)
	}
	if err := db.rawReadRow(ctx, `SELECT name FROM clients WHERE id = ?`, []any{struct{}{}}, &name); err == nil {
		t.Error("rawReadRow with an argument that is no driver value: no error")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := db.rawReadRow(canceled, `SELECT name FROM clients WHERE id = ?`, []any{"c1"}, &name); err == nil {
		t.Error("rawReadRow with an ended context: no error")
	}
	if n := openFiles(t, path); n == 0 {
		t.Fatal("no open files on the database before Close")
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := openFiles(t, path); n != 0 {
		t.Errorf("%d files still open on the database after Close", n)
	}
}

// TestRawReadReplacedConn checks that a read connection database/sql
// discards (here after a panic in Conn.Raw) has its statements closed,
// and that the next read prepares them on the connection replacing it.
func TestRawReadReplacedConn(t *testing.T) {
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "keycard.db"), Options{ReadConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	var n int64
	const query = `SELECT count(*) FROM clients`
	if err := db.rawReadRow(ctx, query, nil, &n); err != nil {
		t.Fatal(err)
	}
	c, err := db.read.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var broken *readConn
	func() {
		defer func() { recover() }()
		c.Raw(func(dc any) error {
			broken = dc.(*readConn)
			if len(broken.stmts) != 1 {
				t.Errorf("%d statements on the connection, want 1", len(broken.stmts))
			}
			panic("break the connection")
		})
	}()
	c.Close()
	if broken.stmts != nil {
		t.Error("the discarded connection's statements were not closed")
	}
	if err := db.rawReadRow(ctx, query, nil, &n); err != nil {
		t.Fatalf("after the replacement: %v", err)
	}
	c, err = db.read.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Raw(func(dc any) error {
		if rc := dc.(*readConn); rc == broken || len(rc.stmts) != 1 {
			t.Errorf("replacement: same connection %v, %d statements; want a new one with 1", rc == broken, len(rc.stmts))
		}
		return nil
	})
}

// TestDecodedJSON checks that the decoded clients' columns are what
// json.Unmarshal gives, and that each caller gets a copy it may change:
// every field of keycard.OAuthSettings that could share memory is filled,
// so a field added without a place in cloneOAuth fails here.
func TestDecodedJSON(t *testing.T) {
	var o keycard.OAuthSettings
	v := reflect.ValueOf(&o).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Slice:
			if f.Type().Elem().Kind() == reflect.Uint8 {
				f.SetBytes([]byte(`{"keys":[]}`))
			} else {
				f.Set(reflect.ValueOf([]string{"x", "y"}))
			}
		case reflect.String:
			f.SetString("s")
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int64:
			f.SetInt(7)
		default:
			t.Fatalf("field %s of kind %s: teach this test (and cloneOAuth) about it", v.Type().Field(i).Name, f.Kind())
		}
	}
	text, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // decoded, then from the cache
		var got keycard.OAuthSettings
		if err := decodedOAuth.decode(string(text), &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, o) {
			t.Fatalf("got %+v, want %+v", got, o)
		}
		gv := reflect.ValueOf(&got).Elem()
		for i := range gv.NumField() {
			if f := gv.Field(i); f.Kind() == reflect.Slice {
				f.Index(0).Set(reflect.Zero(f.Type().Elem()))
			}
		}
	}
	for _, text := range []string{`[]`, `["a","b"]`, `null`} {
		var want []string
		json.Unmarshal([]byte(text), &want)
		for range 2 {
			var got []string
			if err := decodedLists.decode(text, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) || (got == nil) != (want == nil) {
				t.Fatalf("%s: got %#v, want %#v", text, got, want)
			}
			if len(got) > 0 {
				got[0] = "changed"
			}
		}
	}
	var got []string
	if err := decodedLists.decode(`[1]`, &got); err == nil {
		t.Error("a list of numbers decoded")
	}
}
