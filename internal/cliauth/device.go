package cliauth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// The device grant's polling (RFC 8628 section 3.5).
const (
	// defaultDeviceInterval is the wait between polls when the server
	// names none.
	defaultDeviceInterval = 5 * time.Second
	// slowDownStep is added to the wait on each slow_down.
	slowDownStep    = 5 * time.Second
	deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"
)

// DeviceAuth is the answer of the device authorization endpoint (RFC
// 8628 section 3.2).
type DeviceAuth struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	// ExpiresIn and Interval are seconds.
	ExpiresIn int64 `json:"expires_in"`
	Interval  int64 `json:"interval"`

	scope   string
	started time.Time
}

// StartDevice asks for a device code and a user code (RFC 8628 section
// 3.1) for scope (openid added; empty means DefaultScope). Show the user
// code and the verification URI to the user, then PollDevice.
func (c *Client) StartDevice(ctx context.Context, scope string) (*DeviceAuth, error) {
	if c.Provider.DeviceAuthorizationEndpoint == "" {
		return nil, errors.New("cliauth: the server has no device authorization endpoint")
	}
	if strings.TrimSpace(scope) == "" {
		scope = DefaultScope
	}
	scope = withOpenID(scope)
	d := &DeviceAuth{scope: scope, started: c.now()}
	if err := c.postForm(ctx, c.Provider.DeviceAuthorizationEndpoint, url.Values{"scope": {scope}}, d); err != nil {
		return nil, fmt.Errorf("cliauth: device authorization: %w", err)
	}
	if d.DeviceCode == "" || d.UserCode == "" || d.VerificationURI == "" {
		return nil, errors.New("cliauth: the device authorization answer lacks a code or the verification URI")
	}
	if err := checkServerURL("verification_uri", d.VerificationURI); err != nil {
		return nil, err
	}
	if d.VerificationURIComplete != "" && checkServerURL("verification_uri_complete", d.VerificationURIComplete) != nil {
		d.VerificationURIComplete = ""
	}
	return d, nil
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PollDevice polls the token endpoint with the device code until the user
// decides (RFC 8628 section 3.4): every interval seconds, 5 more after
// each slow_down. It returns the tokens and, the ID token verified, who
// signed in; ErrAccessDenied when the user denies; ErrExpired when the
// code expires first; an *OAuthError for another refusal; ctx's error.
func (c *Client) PollDevice(ctx context.Context, d *DeviceAuth) (*Token, *Identity, error) {
	interval := time.Duration(d.Interval) * time.Second
	if interval <= 0 {
		interval = defaultDeviceInterval
	}
	var deadline time.Time
	if d.ExpiresIn > 0 {
		deadline = d.started.Add(time.Duration(d.ExpiresIn) * time.Second)
	}
	for {
		if !deadline.IsZero() && c.now().After(deadline) {
			return nil, nil, ErrExpired
		}
		if err := c.sleep(ctx, interval); err != nil {
			return nil, nil, err
		}
		t, err := c.token(ctx, url.Values{"grant_type": {deviceGrantType}, "device_code": {d.DeviceCode}})
		if err == nil {
			return c.finish(ctx, t, d.scope, "")
		}
		var oe *OAuthError
		if !errors.As(err, &oe) {
			return nil, nil, err
		}
		switch oe.Code {
		case "authorization_pending":
		case "slow_down":
			interval += slowDownStep
		case "access_denied":
			return nil, nil, fmt.Errorf("%w: %w", ErrAccessDenied, err)
		case "expired_token":
			return nil, nil, ErrExpired
		default:
			return nil, nil, err
		}
	}
}
