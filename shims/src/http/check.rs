//! The checks made before a request reaches socket.io or a handler.

use ::http::{HeaderMap, Method, Uri};
use session_sockets_core::origin::{OriginRejection, RequestLine, RequestRefusal};

use crate::Config;

/// Why `SessionLayer` (or [`check_request`]) refused a request. The `403`
/// body is [`reason`](Self::reason) and [`hint`](Self::hint) (R35);
/// `Display` (a reason code, `": "`, and what to check) is for the log. It
/// never holds a cookie or session id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub(super) Kind);

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A later engine.io request whose `Origin` fails the policy (R27).
    LaterEngineRequest(OriginRejection),
    /// A state-changing request whose `Origin` fails the policy (R26).
    CrossSiteOrigin(Method, OriginRejection),
    /// A state-changing request without `Origin`, `Sec-Fetch-Site:
    /// cross-site` (R26).
    CrossSiteFetch(Method),
}

impl Refused {
    /// A stable code: `origin_rejected` (the `Origin` failed the policy, as
    /// for a socket handshake) or `cross_site_request` (no `Origin`, but the
    /// browser says the request comes from another site).
    pub fn reason(&self) -> &'static str {
        match self.0 {
            Kind::LaterEngineRequest(_) | Kind::CrossSiteOrigin(..) => "origin_rejected",
            Kind::CrossSiteFetch(_) => "cross_site_request",
        }
    }

    /// A short hint for the person at the browser (R35).
    pub fn hint(&self) -> &'static str {
        "This request came from a page on another site, so it was refused."
    }

    /// The `Origin` rejection behind it, if the `Origin` header decided.
    pub fn origin_rejection(&self) -> Option<&OriginRejection> {
        match &self.0 {
            Kind::LaterEngineRequest(r) | Kind::CrossSiteOrigin(_, r) => Some(r),
            Kind::CrossSiteFetch(_) => None,
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.reason())?;
        match &self.0 {
            // The same words as a refused socket handshake.
            Kind::LaterEngineRequest(r) => write!(f, "cross-site request refused: {r}"),
            Kind::CrossSiteOrigin(m, r) => write!(
                f,
                "cross-site {m} refused before it reached the handler (CSRF): {r}"
            ),
            Kind::CrossSiteFetch(m) => write!(
                f,
                "cross-site {m} refused before it reached the handler (CSRF): the request has no \
                 Origin header and Sec-Fetch-Site says a page on another site sent it"
            ),
        }
    }
}

impl std::error::Error for Refused {}

/// The checks `SessionLayer` makes before a request reaches socket.io or
/// a handler, as a function (for other frameworks, and for tests):
///
/// - a request under `engine_path` (any path starting with it, which covers
///   every path the engine.io layer serves) that carries an engine.io `sid`
///   query parameter must pass the config's `Origin` policy (R27);
/// - with `csrf`, any other request whose method is not `GET`, `HEAD`,
///   `OPTIONS` or `TRACE` must pass the `Origin` policy, or, without
///   `Origin`, must not say `Sec-Fetch-Site: cross-site` (R26).
///
/// ```
/// use session_sockets::Config;
/// use http::{HeaderMap, HeaderValue, Method, Uri, header};
/// use session_sockets::http::check_request;
///
/// let config = Config::builder().secret("s").build().unwrap();
/// let mut headers = HeaderMap::new();
/// headers.insert(header::HOST, HeaderValue::from_static("chat.example"));
/// headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
/// let login: Uri = "/login".parse().unwrap();
/// let err = check_request(&config, "/socket.io", true, &Method::POST, &login, &headers).unwrap_err();
/// assert_eq!(err.reason(), "origin_rejected");
/// let upgrade: Uri = "/socket.io?EIO=4&transport=websocket&sid=abc".parse().unwrap();
/// assert!(check_request(&config, "/socket.io", true, &Method::GET, &upgrade, &headers).is_err());
/// let page: Uri = "/".parse().unwrap();
/// assert!(check_request(&config, "/socket.io", true, &Method::GET, &page, &headers).is_ok());
/// ```
pub fn check_request(
    config: &Config,
    engine_path: &str,
    csrf: bool,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), Refused> {
    let request = RequestLine {
        method: method.as_str().as_bytes(),
        path: uri.path().as_bytes(),
        query: uri.query().map(str::as_bytes),
        scheme: uri.scheme_str().map(str::as_bytes),
    };
    let headers = headers
        .iter()
        .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()));
    config
        .origin_policy()
        .check_request(engine_path.as_bytes(), csrf, request, headers)
        .map_err(|r| {
            Refused(match r {
                RequestRefusal::LaterEngineRequest(o) => Kind::LaterEngineRequest(o),
                RequestRefusal::CrossSiteOrigin(o) => Kind::CrossSiteOrigin(method.clone(), o),
                // Any future refusal is a cross-site one too.
                _ => Kind::CrossSiteFetch(method.clone()),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::http::HeaderValue;

    fn config() -> Config {
        Config::builder().secret("s").build().unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    fn check(
        method: Method,
        uri: &str,
        pairs: &[(&'static str, &'static str)],
    ) -> Result<(), Refused> {
        check_request(
            &config(),
            "/socket.io",
            true,
            &method,
            &uri.parse().unwrap(),
            &headers(pairs),
        )
    }

    const EVIL: &[(&str, &str)] = &[("host", "chat.example"), ("origin", "https://evil.example")];
    const SAME: &[(&str, &str)] = &[("host", "chat.example"), ("origin", "https://chat.example")];

    #[test]
    fn r27_later_engine_requests_are_origin_checked_on_every_served_path() {
        for path in [
            "/socket.io?EIO=4&transport=websocket&sid=abc",
            "/socket.io/?EIO=4&transport=websocket&sid=abc",
            "/socket.iox/?EIO=4&transport=polling&sid=abc",
            "/socket.io/?EIO=4&t=Pz1&transport=polling&x=1&sid=abc&j=2",
            "/socket.io/anything/else?sid=abc",
        ] {
            for method in [Method::GET, Method::POST] {
                let err = check(method.clone(), path, EVIL).unwrap_err();
                assert_eq!(err.reason(), "origin_rejected", "{method} {path}");
                assert!(err.to_string().contains("evil.example"), "{err}");
                assert_eq!(check(method, path, SAME), Ok(()), "{path}");
            }
        }
    }

    #[test]
    fn r27_the_opening_request_is_left_to_the_session_middleware() {
        // No `sid`: the handshake's own Origin check answers with a
        // readable connect_error.
        assert_eq!(
            check(Method::GET, "/socket.io/?EIO=4&transport=websocket", EVIL),
            Ok(())
        );
        // `xsid=` is not engine.io's `sid`.
        assert_eq!(
            check(
                Method::GET,
                "/socket.io/?EIO=4&transport=polling&xsid=a",
                EVIL
            ),
            Ok(())
        );
    }

    #[test]
    fn r26_cross_site_state_changes_are_refused_before_the_handler() {
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let err = check(method.clone(), "/login", EVIL).unwrap_err();
            assert_eq!(err.reason(), "origin_rejected");
            assert!(err.to_string().contains("(CSRF)"), "{err}");
            assert_eq!(check(method.clone(), "/login", SAME), Ok(()));
            let null = check(
                method.clone(),
                "/logout",
                &[("host", "chat.example"), ("origin", "null")],
            );
            assert_eq!(
                null.unwrap_err().origin_rejection(),
                Some(&OriginRejection::Null)
            );
            let fetch = check(
                method.clone(),
                "/api/incr",
                &[("host", "chat.example"), ("sec-fetch-site", "cross-site")],
            )
            .unwrap_err();
            assert_eq!(fetch.reason(), "cross_site_request");
            // Non-browser clients send neither header.
            assert_eq!(
                check(method.clone(), "/api/incr", &[("host", "chat.example")]),
                Ok(())
            );
            for site in ["same-origin", "none"] {
                let h: &[(&'static str, &'static str)] =
                    &[("host", "chat.example"), ("sec-fetch-site", site)];
                assert_eq!(check(method.clone(), "/api/incr", h), Ok(()), "{site}");
            }
        }
    }

    #[test]
    fn r26_safe_methods_and_a_disabled_check_pass() {
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert_eq!(check(method, "/", EVIL), Ok(()));
        }
        let off = check_request(
            &config(),
            "/socket.io",
            false,
            &Method::POST,
            &"/login".parse().unwrap(),
            &headers(EVIL),
        );
        assert_eq!(off, Ok(()));
        // The engine.io check is not part of the CSRF switch.
        let engine = check_request(
            &config(),
            "/socket.io",
            false,
            &Method::GET,
            &"/socket.io/?sid=a".parse().unwrap(),
            &headers(EVIL),
        );
        assert!(engine.is_err());
    }
}
