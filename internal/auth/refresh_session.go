package auth

import "context"

// RefreshTokenSession returns the id of the session a refresh token
// belongs to, live or already rotated, after checking its secret in
// constant time; "" for a malformed, unknown or mismatching token. It
// changes nothing: the HTTP layer uses it to bind a cookie refresh to its
// session's CSRF token before rotating. Only a failing store gives an
// error.
func (s *Service) RefreshTokenSession(ctx context.Context, token string) (string, error) {
	rt, err := s.refreshTokenOf(ctx, token)
	if err != nil || rt == nil {
		return "", err
	}
	return rt.SessionID, nil
}
