//! Sending the authorization response back to the client: by redirect (query) or form_post,
//! always with `iss` (RFC 9207) and the client's `state` untouched.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::checks::ResponseMode;
use crate::error::OAuthError;
use crate::ui::pages::{self, FormPostPage};

pub struct ReplyTo<'a> {
    pub redirect_uri: &'a str,
    pub state: Option<&'a str>,
    pub mode: ResponseMode,
    pub issuer: &'a str,
}

pub fn success<'a>(to: &ReplyTo<'a>, code: &'a str) -> Response {
    send(to, vec![("code", code)])
}

pub fn error<'a>(to: &ReplyTo<'a>, err: &'a OAuthError) -> Response {
    send(to, vec![("error", err.code.as_str()), ("error_description", &err.description)])
}

fn send<'a>(to: &ReplyTo<'a>, mut params: Vec<(&'a str, &'a str)>) -> Response {
    if let Some(state) = to.state {
        params.push(("state", state));
    }
    params.push(("iss", to.issuer));
    match to.mode {
        ResponseMode::FormPost => pages::render(StatusCode::OK, &FormPostPage { action: to.redirect_uri, fields: params }),
        ResponseMode::Query => {
            let Ok(mut url) = url::Url::parse(to.redirect_uri) else {
                return pages::error_page("Invalid redirect", "The application's redirect address is invalid.");
            };
            url.query_pairs_mut().extend_pairs(params);
            redirect(url.as_str())
        }
    }
}

/// 303 See Other, so a POST is never replayed at the target (RFC 9700 §4.12).
pub fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
