//! The token: scripts send `Authorization: Bearer <token>`; a browser gets a Basic-auth
//! prompt whose password is the token (any user name). Compared in constant time (only the
//! length can show). `/healthz` and `/readyz` never ask; with `[http] public = true` the page,
//! its assets and the badges do not either.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::AppState;

/// The page, assets and badges: open when public, else a Basic prompt.
pub(super) async fn pages(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if st.http.public || authorized(&st, req.headers()) {
        return next.run(req).await;
    }
    refuse("Basic realm=\"chanmon\", charset=\"UTF-8\"")
}

/// The API and `/metrics`: always behind the token when there is one.
pub(super) async fn private(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if authorized(&st, req.headers()) {
        return next.run(req).await;
    }
    refuse("Bearer realm=\"chanmon\"")
}

fn refuse(challenge: &'static str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, challenge),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        "authentication required: send the [http] token as a bearer token (or as the Basic-auth password)\n",
    )
        .into_response()
}

/// No token configured, or the request carries it.
fn authorized(st: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = &st.http.token else {
        return true;
    };
    headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(presented)
        .any(|p| matches(p.as_bytes(), token.expose().as_bytes()))
}

/// The secret a client presented: a bearer token, or a Basic password.
fn presented(value: &str) -> Option<zeroize::Zeroizing<String>> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(zeroize::Zeroizing::new(rest.to_owned()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (_, password) = text.split_once(':')?;
        return Some(zeroize::Zeroizing::new(password.to_owned()));
    }
    None
}

fn matches(given: &[u8], want: &[u8]) -> bool {
    given.ct_eq(want).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_carry_the_token() {
        assert_eq!(
            presented("Bearer abc").as_deref().map(String::as_str),
            Some("abc")
        );
        assert_eq!(
            presented("bearer   abc ").as_deref().map(String::as_str),
            Some("abc")
        );
        // "anyone:s3cret:with:colons"
        let basic = base64::engine::general_purpose::STANDARD.encode("anyone:s3cret:with:colons");
        assert_eq!(
            presented(&format!("Basic {basic}"))
                .as_deref()
                .map(String::as_str),
            Some("s3cret:with:colons")
        );
        assert!(presented("Basic !!!").is_none());
        assert!(presented("Digest x").is_none());
        assert!(presented("Bearer").is_none());
    }

    #[test]
    fn comparison_needs_every_byte() {
        assert!(matches(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!matches(b"0123456789abcdeX", b"0123456789abcdef"));
        assert!(!matches(b"0123456789abcde", b"0123456789abcdef"));
        assert!(!matches(b"", b"0123456789abcdef"));
    }
}
