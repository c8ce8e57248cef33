package storetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

func testUpstreamProviders(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t).Federation

	if list, err := s.UpstreamProviders(ctx); err != nil || len(list) != 0 {
		t.Fatalf("UpstreamProviders (empty) = %v, %v", list, err)
	}
	corp := &keycard.UpstreamProvider{Name: "corp", Config: []byte(`{"name":"corp","issuer":"https://corp.example"}`),
		SealedSecret: []byte{1, 2, 3, 0, 255}, CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateUpstreamProvider(ctx, corp); err != nil {
		t.Fatal(err)
	}
	pub := &keycard.UpstreamProvider{Name: "apub", Config: []byte(`{"name":"apub"}`), CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateUpstreamProvider(ctx, pub); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "CreateUpstreamProvider (taken)", s.CreateUpstreamProvider(ctx,
		&keycard.UpstreamProvider{Name: "corp", Config: []byte(`{}`), CreatedAt: t0, UpdatedAt: t0}), keycard.ECONFLICT)
	wantCode(t, "CreateUpstreamProvider (no config)", s.CreateUpstreamProvider(ctx,
		&keycard.UpstreamProvider{Name: "x", CreatedAt: t0, UpdatedAt: t0}), keycard.EINVALID)
	wantCode(t, "CreateUpstreamProvider (no name)", s.CreateUpstreamProvider(ctx,
		&keycard.UpstreamProvider{Config: []byte(`{}`), CreatedAt: t0, UpdatedAt: t0}), keycard.EINVALID)

	got, err := s.UpstreamProvider(ctx, "corp")
	if err != nil || got.Name != "corp" || !bytes.Equal(got.Config, corp.Config) || !bytes.Equal(got.SealedSecret, corp.SealedSecret) ||
		!got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0) {
		t.Fatalf("UpstreamProvider = %+v, %v", got, err)
	}
	if got, err := s.UpstreamProvider(ctx, "apub"); err != nil || got.SealedSecret != nil {
		t.Fatalf("UpstreamProvider (no secret) = %+v, %v", got, err)
	}
	_, err = s.UpstreamProvider(ctx, "nobody")
	wantCode(t, "UpstreamProvider (unknown)", err, keycard.ENOTFOUND)
	_, err = s.UpstreamProvider(ctx, "bad\x00name")
	wantCode(t, "UpstreamProvider (NUL)", err, keycard.ENOTFOUND)

	// An update replaces the configuration and the secret, keeps the
	// creation time.
	t1 := t0.Add(time.Hour)
	upd := &keycard.UpstreamProvider{Name: "corp", Config: []byte(`{"name":"corp","issuer":"https://new.example"}`),
		SealedSecret: []byte{9, 9}, CreatedAt: t1, UpdatedAt: t1}
	if err := s.UpdateUpstreamProvider(ctx, upd); err != nil {
		t.Fatal(err)
	}
	got, err = s.UpstreamProvider(ctx, "corp")
	if err != nil || !bytes.Equal(got.Config, upd.Config) || !bytes.Equal(got.SealedSecret, upd.SealedSecret) ||
		!got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t1) {
		t.Fatalf("UpstreamProvider after update = %+v, %v", got, err)
	}
	wantCode(t, "UpdateUpstreamProvider (unknown)", s.UpdateUpstreamProvider(ctx,
		&keycard.UpstreamProvider{Name: "nobody", Config: []byte(`{}`), UpdatedAt: t1}), keycard.ENOTFOUND)

	list, err := s.UpstreamProviders(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "apub" || list[1].Name != "corp" {
		t.Fatalf("UpstreamProviders = %v, %v", list, err)
	}

	if err := s.DeleteUpstreamProvider(ctx, "corp"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "DeleteUpstreamProvider (again)", s.DeleteUpstreamProvider(ctx, "corp"), keycard.ENOTFOUND)
	_, err = s.UpstreamProvider(ctx, "corp")
	wantCode(t, "UpstreamProvider (deleted)", err, keycard.ENOTFOUND)
	if list, err := s.UpstreamProviders(ctx); err != nil || len(list) != 1 || list[0].Name != "apub" {
		t.Fatalf("UpstreamProviders after delete = %v, %v", list, err)
	}
	// The name is free again.
	if err := s.CreateUpstreamProvider(ctx, corp); err != nil {
		t.Fatal(err)
	}
}
