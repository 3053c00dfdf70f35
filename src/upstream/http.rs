//! The HTTP client `openidconnect` and `oauth2` call for discovery, the JWKS, the token request
//! and userinfo: our guarded one (no redirects, no proxies, timeouts, a body cap, and the
//! provider's allowed destinations).

use std::future::Future;
use std::pin::Pin;

use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};

use crate::outbound::{OutboundError, OutboundHttp};

/// Discovery documents, key sets, token and userinfo answers are small; anything larger is
/// refused rather than read.
pub const MAX_BODY: usize = 256 * 1024;

pub struct ProviderHttp<'a>(pub &'a OutboundHttp);

impl<'c> AsyncHttpClient<'c> for ProviderHttp<'_> {
    type Error = OutboundError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, OutboundError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.0.send(request, MAX_BODY))
    }
}
