//! Replies to clients about errors ([R35]): a stable reason code and a hint
//! for the person at the browser, never the server's insides.
//!
//! [R35]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r35

use ::http::{HeaderValue, Response, StatusCode};
use axum::body::Body;
use axum::response::IntoResponse;

/// An error reply to a client (R35): the reason code and a hint for the
/// person at the browser. Kept on the response it made, so that the layer
/// can answer it as JSON where asked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientError {
    pub(crate) reason: &'static str,
    pub(crate) hint: &'static str,
}

impl ClientError {
    /// The reply: JSON `{"error": reason, "message": hint}`, or
    /// `reason: hint` text.
    pub(crate) fn reply(self, status: StatusCode, json: bool) -> Response<Body> {
        let (content_type, body) = if json {
            let body = serde_json::json!({ "error": self.reason, "message": self.hint });
            ("application/json", body.to_string())
        } else {
            (
                "text/plain; charset=utf-8",
                format!("{}: {}", self.reason, self.hint),
            )
        };
        let mut res = (
            status,
            [(
                ::http::header::CONTENT_TYPE,
                HeaderValue::from_static(content_type),
            )],
            body,
        )
            .into_response();
        res.extensions_mut().insert(self);
        res
    }
}
