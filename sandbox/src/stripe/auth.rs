//! Bearer authentication for the Stripe sandbox, as Stripe answers it: 401
//! without a key or with an unknown one (the key masked in the message), and
//! 403 naming the missing `rak_…_read` permission for a restricted key.

use std::collections::HashSet;

use axum::http::{HeaderMap, StatusCode};

use super::http::ApiError;
use super::resources::singular;
use super::store::State;

/// `sk_test_abcdef1234` → `sk_test_****1234`.
pub(super) fn mask_key(key: &str) -> String {
    let prefix_len = key.match_indices('_').nth(1).map_or(0, |(i, _)| i + 1);
    let tail: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("{}****{}", &key[..prefix_len.min(key.len())], tail)
}

/// The key of `Authorization: Bearer …`, if any.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get("authorization")?.to_str().ok()?;
    v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).map(str::trim)
}

/// `Ok(None)`: full access; `Ok(Some(set))`: a restricted key.
pub(super) fn authenticate(st: &State, headers: &HeaderMap) -> Result<Option<HashSet<String>>, ApiError> {
    let unauthorized = |message: String| ApiError::invalid(message, None, None).with_status(StatusCode::UNAUTHORIZED);
    let Some(key) = bearer(headers) else {
        return Err(unauthorized(
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
                .to_owned(),
        ));
    };
    match st.keys.get(key) {
        Some(access) => Ok(access.clone()),
        None => Err(unauthorized(format!("Invalid API Key provided: {}", mask_key(key)))),
    }
}

pub(super) fn permission_denied(st: &State, headers: &HeaderMap, resource: &str) -> ApiError {
    let masked = bearer(headers).map(mask_key).unwrap_or_default();
    ApiError::invalid(
        format!(
            "The provided key '{masked}' does not have the required permissions for this endpoint on account '{}'. Having the 'rak_{}_read' permission would allow this request to continue.",
            st.account_id,
            singular(resource)
        ),
        None,
        None,
    )
    .with_status(StatusCode::FORBIDDEN)
}
