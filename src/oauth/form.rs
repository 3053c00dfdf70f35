//! Request bodies of OAuth endpoints: `application/x-www-form-urlencoded` only, and a
//! parameter given twice is refused (RFC 6749 §3.1, §3.2).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;

use crate::error::OAuthError;

#[derive(Debug, Default, Clone)]
pub struct OAuthForm {
    params: HashMap<String, String>,
    /// `resource` may repeat (RFC 8707 §2); every other parameter may not.
    resources: Vec<String>,
}

impl OAuthForm {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// Every parameter but `resource`.
    pub fn params(&self) -> &HashMap<String, String> {
        &self.params
    }

    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| OAuthError::invalid_request(format!("missing parameter `{name}`")))
    }

    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut params = HashMap::new();
        let mut resources = Vec::new();
        for (k, v) in form_urlencoded::parse(body) {
            if k == "resource" {
                resources.push(v.into_owned());
            } else if params.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(OAuthError::invalid_request(format!("parameter `{k}` given more than once")));
            }
        }
        Ok(Self { params, resources })
    }
}

/// Parses urlencoded pairs, refusing duplicates.
pub fn parse_unique(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut map = HashMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        if map.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(OAuthError::invalid_request(format!("parameter `{k}` given more than once")));
        }
    }
    Ok(map)
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
        }
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            // The router's body limit (`routes::MAX_BODY_BYTES`) stops reading at the bound.
            let too_large = e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE;
            OAuthError::invalid_request(if too_large { "request body too large" } else { "unreadable request body" })
        })?;
        Self::parse(&body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused() {
        assert!(OAuthForm::parse(b"a=1&b=2").is_ok());
        let err = OAuthForm::parse(b"scope=a&scope=b").unwrap_err();
        assert_eq!(err.code, "invalid_request");
    }

    #[test]
    fn resource_may_repeat() {
        let f = OAuthForm::parse(b"resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb&x=1").unwrap();
        assert_eq!(f.resources(), ["https://a", "https://b"]);
    }

    #[test]
    fn empty_values_count_as_missing() {
        let f = OAuthForm::parse(b"a=&b=x").unwrap();
        assert!(f.get("a").is_none());
        assert!(f.require("a").is_err());
        assert_eq!(f.get("b"), Some("x"));
    }

    mod properties {
        use std::collections::BTreeMap;

        use proptest::prelude::*;

        use super::*;

        fn encode(pairs: &[(String, String)]) -> String {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs {
                s.append_pair(k, v);
            }
            s.finish()
        }

        proptest! {
            #[test]
            fn unique_parameters_round_trip(params in prop::collection::btree_map("[^\\x00]{1,12}", ".{0,24}", 0..8)) {
                let params: BTreeMap<String, String> = params.into_iter().filter(|(k, _)| k != "resource").collect();
                let pairs: Vec<(String, String)> = params.clone().into_iter().collect();
                let form = OAuthForm::parse(encode(&pairs).as_bytes()).unwrap();
                for (k, v) in &params {
                    prop_assert_eq!(form.get(k), Some(v.as_str()).filter(|v| !v.is_empty()));
                }
            }

            #[test]
            fn any_repeated_parameter_is_refused(name in "[a-z_]{1,12}", a in ".{0,8}", b in ".{0,8}", others in prop::collection::vec(("[a-z]{13,14}", ".{0,8}"), 0..4)) {
                prop_assume!(name != "resource");
                let mut pairs = others;
                pairs.insert(0, (name.clone(), a));
                pairs.push((name, b));
                prop_assert_eq!(OAuthForm::parse(encode(&pairs).as_bytes()).unwrap_err().code, "invalid_request");
                prop_assert!(parse_unique(encode(&pairs).as_bytes()).is_err());
            }

            #[test]
            fn resources_keep_their_order(resources in prop::collection::vec("https://[a-z]{1,8}\\.example/[ -~]{0,10}", 0..5)) {
                let pairs: Vec<(String, String)> = resources.iter().map(|r| ("resource".to_string(), r.clone())).collect();
                let form = OAuthForm::parse(encode(&pairs).as_bytes()).unwrap();
                prop_assert_eq!(form.resources(), &resources[..]);
            }

            #[test]
            fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
                let _ = OAuthForm::parse(&body);
            }
        }
    }
}
