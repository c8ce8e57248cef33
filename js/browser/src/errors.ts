/**
 * KeycardError is every error this package throws. `code` is the OAuth
 * error code when the server sent one (`invalid_grant`, `access_denied`,
 * `login_required` …) or one of this package's own: `state_mismatch`,
 * `issuer_mismatch`, `invalid_id_token`, `no_session`, `http_error`,
 * `invalid_response`.
 */
export class KeycardError extends Error {
  readonly code: string;
  constructor(code: string, message?: string) {
    super(message ? `keycard: ${code}: ${message}` : `keycard: ${code}`);
    this.name = "KeycardError";
    this.code = code;
  }
}
