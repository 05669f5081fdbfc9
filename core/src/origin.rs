//! The `Origin` check against cross-site WebSocket hijacking ([R5]-[R8]).
//!
//! Browsers send cookies on WebSocket handshakes whatever page opened them,
//! and CORS does not apply to WebSockets; only a check of `Origin` in the
//! handshake itself stops a hostile page from opening an authenticated
//! socket. The check runs before any store lookup.
//!
//! [R5]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r5
//! [R8]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r8

/// Which origins may open a socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Only the site the request was sent to ([R28]): an `http` or `https`
    /// origin whose host and port equal the request's `Host` header (ASCII
    /// case-insensitive, a scheme's default port written or not), and whose
    /// scheme is the site's when that is known
    /// ([`OriginPolicy::public_origin`], or the request's own scheme). The
    /// default: same-site pages work, every other page is refused.
    ///
    /// [R28]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r28
    SameHost,
    /// Exactly these serialized origins (`scheme://host[:port]`), compared
    /// byte for byte.
    List(Vec<String>),
    /// Any well-formed origin. Disables the cross-site hijacking defence.
    Any,
}

/// The whole `Origin` policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginPolicy {
    /// Which origins may connect.
    pub allowed: AllowedOrigins,
    /// Whether a request without `Origin` passes. Non-browser clients send
    /// none, and browsers omit it on same-origin `GET` requests (socket.io's
    /// polling transport), so the default is `true`.
    pub allow_missing: bool,
    /// Whether `Origin: null` (an opaque origin: sandboxed iframes, `file:`
    /// pages, some redirects) passes. Default `false` ([R7]).
    ///
    /// [R7]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r7
    pub allow_null: bool,
    /// The origin browsers load the site from (`https://chat.example`),
    /// when it is served behind a proxy or a TLS terminator and the request
    /// itself does not tell: for [`AllowedOrigins::SameHost`], that origin
    /// passes, and so does one with its scheme whose host and port are the
    /// request's `Host` ([R28]). `None` (the default): the scheme is known
    /// only when the request carries it.
    ///
    /// [R28]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r28
    pub public_origin: Option<String>,
}

impl Default for OriginPolicy {
    fn default() -> Self {
        OriginPolicy {
            allowed: AllowedOrigins::SameHost,
            allow_missing: true,
            allow_null: false,
            public_origin: None,
        }
    }
}

/// Why an origin was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OriginRejection {
    /// No `Origin` header, and the policy requires one.
    Missing,
    /// `Origin: null`, and the policy does not allow it.
    Null,
    /// Not a serialized origin (`scheme://host[:port]`), or several
    /// `Origin` headers.
    Malformed,
    /// Well-formed but not allowed. Holds the origin, escaped for printing.
    NotAllowed(String),
    /// Same-host policy, but the request has no usable `Host` header.
    NoHost,
}

impl std::fmt::Display for OriginRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OriginRejection::Missing => f.write_str(
                "the request has no Origin header and the policy requires one \
                 (allow_missing_origin(true) accepts non-browser clients)",
            ),
            OriginRejection::Null => f.write_str(
                "the request has `Origin: null` (sandboxed or file: page); \
                 allow it only if you mean to, with allow_null_origin(true)",
            ),
            OriginRejection::Malformed => f.write_str(
                "the Origin header is not of the form scheme://host[:port], or appears twice",
            ),
            OriginRejection::NotAllowed(o) => write!(
                f,
                "origin `{o}` is not allowed: if it is your site, add it with allowed_origins([..])"
            ),
            OriginRejection::NoHost => f.write_str(
                "the same-host origin check needs a Host header and the request has none; \
                 configure allowed_origins([..]) explicitly",
            ),
        }
    }
}

/// Whether `s` is a serialized origin: `scheme "://" host [":" port]`, with
/// a lowercase scheme, a non-empty host of letters, digits, `-`, `.` (or a
/// bracketed IPv6 literal) and an optional port of 1-5 digits; no path,
/// query, userinfo or trailing slash ([R8]).
///
/// [R8]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r8
pub fn is_well_formed(s: &[u8]) -> bool {
    well_formed_authority(s).is_some()
}

/// The `host[:port]` of `s` if it is a well-formed origin (see
/// [`is_well_formed`]), found in the same pass.
fn well_formed_authority(s: &[u8]) -> Option<&[u8]> {
    // One walk for the usual `scheme://host[:port]`; a bracketed IPv6 host
    // takes the general path below.
    let class = |i: usize| s.get(i).map_or(0, |&b| CLASSES[usize::from(b)]);
    if matches!(s.first(), Some(b'a'..=b'z')) {
        let mut i = 1;
        while class(i) & SCHEME != 0 {
            i += 1;
        }
        if s.get(i..i + 3) == Some(b"://") && s.get(i + 3) != Some(&b'[') {
            let authority = i + 3;
            let mut j = authority;
            while class(j) & HOST != 0 {
                j += 1;
            }
            let host_ok = j > authority;
            let end = match s.get(j) {
                None => true,
                Some(b':') => {
                    let mut k = j + 1;
                    while class(k) & DIGIT != 0 {
                        k += 1;
                    }
                    (1..=5).contains(&(k - j - 1)) && k == s.len()
                }
                Some(_) => false,
            };
            return (host_ok && end).then(|| &s[authority..]);
        }
    }
    well_formed_authority_general(s)
}

/// [`well_formed_authority`] piece by piece: the reference the one walk
/// agrees with, and the path for IPv6 hosts.
fn well_formed_authority_general(s: &[u8]) -> Option<&[u8]> {
    // The scheme has no `:`, so its end is the first `:`.
    let sep = s.iter().position(|&b| b == b':')?;
    let (scheme, rest) = (&s[..sep], s[sep + 1..].strip_prefix(b"//")?);
    let scheme_ok = matches!(scheme.first(), Some(b'a'..=b'z')) && all_in(scheme, SCHEME);
    (scheme_ok && host_port_ok(rest)).then_some(rest)
}

/// Byte classes of an origin's parts, looked up instead of compared.
const SCHEME: u8 = 1;
const HOST: u8 = 2;
const DIGIT: u8 = 4;
const IPV6: u8 = 8;

static CLASSES: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        // `i < 256`, so the cast is exact.
        let b = i as u8;
        let mut c = 0;
        if b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.') {
            c |= SCHEME;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.') {
            c |= HOST;
        }
        if b.is_ascii_digit() {
            c |= DIGIT;
        }
        if b.is_ascii_hexdigit() || matches!(b, b':' | b'.') {
            c |= IPV6;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// Whether every byte of `s` is in `class`. Looks at every byte, without
/// an early exit, so that the loop has no branch per byte.
#[inline]
fn all_in(s: &[u8], class: u8) -> bool {
    s.iter()
        .fold(class, |acc, &b| acc & CLASSES[usize::from(b)])
        == class
}

/// `a.eq_ignore_ascii_case(b)`, without a branch per byte.
#[inline]
pub(crate) fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    let lower = |c: u8| c | (u8::from(c.is_ascii_uppercase()) << 5);
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .fold(0u8, |diff, (&x, &y)| diff | (lower(x) ^ lower(y)))
            == 0
}

fn host_port_ok(s: &[u8]) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix(b"[") {
        let Some(end) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let inner = &rest[..end];
        if inner.is_empty() || !all_in(inner, IPV6) {
            return false;
        }
        (&s[..end + 2], &rest[end + 1..])
    } else {
        match s.iter().position(|&b| b == b':') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, &[][..]),
        }
    };
    let host_ok = !host.is_empty() && (host.starts_with(b"[") || all_in(host, HOST));
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => (1..=5).contains(&digits.len()) && all_in(digits, DIGIT),
        _ => false,
    };
    host_ok && port_ok
}

/// What the handshake saw of `Origin` and `Host`, and the request's scheme
/// when it knows it.
#[derive(Debug, Default)]
pub(crate) struct Seen<'h> {
    pub(crate) origin: Option<&'h [u8]>,
    pub(crate) origins: usize,
    pub(crate) host: Option<&'h [u8]>,
    pub(crate) scheme: Option<&'h [u8]>,
}

/// `authority` with the default port of `scheme` dropped (`host:443` is
/// `host` for `https`), so that an origin and a `Host` that differ only in
/// writing the default port compare equal.
fn without_default_port<'a>(scheme: &[u8], authority: &'a [u8]) -> &'a [u8] {
    let default: &[u8] = match scheme {
        b"http" => b":80",
        b"https" => b":443",
        _ => return authority,
    };
    authority.strip_suffix(default).unwrap_or(authority)
}

/// An origin's scheme and authority (`https`, `host[:port]`), for a
/// well-formed origin.
fn scheme_and_authority(origin: &[u8]) -> Option<(&[u8], &[u8])> {
    let authority = well_formed_authority(origin)?;
    let scheme = origin.get(..origin.len() - authority.len() - 3)?;
    Some((scheme, authority))
}

/// The one gathering of `Origin` and `Host` from a request's headers,
/// keeping the header values themselves (no copy): every `Origin` counts
/// (two are malformed) and the first is kept; the host is the one `Host`
/// (or HTTP/2 `:authority`) header, none if there are several.
#[derive(Debug, Default)]
pub(crate) struct Gathered<V> {
    origin: Option<V>,
    origins: usize,
    host: Option<V>,
    hosts: usize,
}

impl<V: AsRef<[u8]>> Gathered<V> {
    pub(crate) fn new() -> Self {
        Gathered {
            origin: None,
            origins: 0,
            host: None,
            hosts: 0,
        }
    }

    /// Looks at one header; `true` if it was `Origin`, `Host` or
    /// `:authority` (names compared ASCII case-insensitively). `value` is
    /// taken only when it is kept.
    #[inline]
    pub(crate) fn offer(&mut self, name: &[u8], value: impl FnOnce() -> V) -> bool {
        if eq_ignore_case(name, b"origin") {
            self.origins += 1;
            if self.origins == 1 {
                self.origin = Some(value());
            }
            true
        } else if eq_ignore_case(name, b"host") || name == b":authority" {
            self.hosts += 1;
            if self.hosts == 1 {
                self.host = Some(value());
            }
            true
        } else {
            false
        }
    }

    pub(crate) fn seen(&self) -> Seen<'_> {
        Seen {
            origin: self.origin.as_ref().map(AsRef::as_ref),
            origins: self.origins,
            host: self
                .host
                .as_ref()
                .filter(|_| self.hosts == 1)
                .map(AsRef::as_ref),
            scheme: None,
        }
    }
}

/// A request's `Origin` and `Host` headers, gathered in one pass over its
/// headers (inline up to 64 bytes each), for [`OriginPolicy::check_gathered`].
/// The handshake and later-request checks gather them the same way: every
/// `Origin` counts (two are malformed), and the host is the one `Host` (or
/// HTTP/2 `:authority`) header, none if there are several.
#[derive(Debug, Default)]
pub struct OriginHeaders(Gathered<smallvec::SmallVec<[u8; 64]>>);

impl OriginHeaders {
    /// Looks at one header; `true` if it was `Origin`, `Host` or
    /// `:authority` (names compared ASCII case-insensitively).
    #[inline]
    pub fn offer(&mut self, name: &[u8], value: &[u8]) -> bool {
        self.0.offer(name, || smallvec::SmallVec::from_slice(value))
    }
}

impl OriginPolicy {
    /// Checks headers gathered with [`OriginHeaders::offer`].
    pub fn check_gathered(&self, headers: &OriginHeaders) -> Result<(), OriginRejection> {
        self.check_seen(&headers.0.seen())
    }

    /// Checks a request's headers, as `(name, value)` byte pairs, the way the
    /// handshake does.
    pub fn check_headers<I, N, V>(&self, headers: I) -> Result<(), OriginRejection>
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut gathered = Gathered::new();
        for (n, v) in headers {
            gathered.offer(n.as_ref(), || v);
        }
        self.check_seen(&gathered.seen())
    }

    /// Checks a request's `Origin` header values (all of them, in order) and
    /// its `Host` header against this policy.
    pub fn check(&self, origins: &[&[u8]], host: Option<&[u8]>) -> Result<(), OriginRejection> {
        let seen = Seen {
            origin: origins.first().copied(),
            origins: origins.len(),
            host,
            scheme: None,
        };
        self.check_seen(&seen)
    }

    /// [`Self::check`] for a request whose scheme (`http` or `https`) the
    /// server knows (an HTTP/2 `:scheme`, an absolute URI): the same-host
    /// check then compares it too ([R28]).
    ///
    /// [R28]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r28
    pub fn check_with_scheme(
        &self,
        origins: &[&[u8]],
        host: Option<&[u8]>,
        scheme: Option<&[u8]>,
    ) -> Result<(), OriginRejection> {
        let seen = Seen {
            origin: origins.first().copied(),
            origins: origins.len(),
            host,
            scheme,
        };
        self.check_seen(&seen)
    }

    pub(crate) fn check_seen(&self, seen: &Seen<'_>) -> Result<(), OriginRejection> {
        if seen.origins > 1 {
            return Err(OriginRejection::Malformed);
        }
        let Some(origin) = seen.origin else {
            return if self.allow_missing {
                Ok(())
            } else {
                Err(OriginRejection::Missing)
            };
        };
        if origin == b"null" {
            return if self.allow_null {
                Ok(())
            } else {
                Err(OriginRejection::Null)
            };
        }
        let Some((scheme, authority)) = scheme_and_authority(origin) else {
            return Err(OriginRejection::Malformed);
        };
        let allowed = match &self.allowed {
            AllowedOrigins::Any => true,
            AllowedOrigins::List(list) => list.iter().any(|o| o.as_bytes() == origin),
            AllowedOrigins::SameHost => self.same_site(scheme, authority, seen)?,
        };
        if allowed {
            Ok(())
        } else {
            Err(OriginRejection::NotAllowed(
                origin.escape_ascii().to_string(),
            ))
        }
    }
}

impl OriginPolicy {
    /// [`AllowedOrigins::SameHost`] for an origin `scheme://authority`.
    fn same_site(
        &self,
        scheme: &[u8],
        authority: &[u8],
        seen: &Seen<'_>,
    ) -> Result<bool, OriginRejection> {
        if scheme != b"http" && scheme != b"https" {
            return Ok(false);
        }
        let public = self
            .public_origin
            .as_deref()
            .and_then(|p| scheme_and_authority(p.as_bytes()));
        if let Some((ps, pa)) = public
            && ps == scheme
            && eq_ignore_case(
                without_default_port(ps, pa),
                without_default_port(scheme, authority),
            )
        {
            return Ok(true);
        }
        // The site's scheme, when known: the request's own, else the
        // public origin's.
        if let Some(known) = seen.scheme.or(public.map(|(s, _)| s))
            && !eq_ignore_case(known, scheme)
        {
            return Ok(false);
        }
        let Some(host) = seen.host.filter(|h| !h.is_empty()) else {
            return Err(OriginRejection::NoHost);
        };
        Ok(eq_ignore_case(
            without_default_port(scheme, authority),
            without_default_port(scheme, host),
        ))
    }
}

/// Why a request was refused before a handler (or socket.io) saw it
/// ([`OriginPolicy::check_request`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestRefusal {
    /// A later engine.io request (it carries a `sid`) whose `Origin` fails
    /// the policy ([R27]).
    ///
    /// [R27]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r27
    LaterEngineRequest(OriginRejection),
    /// A state-changing request whose `Origin` fails the policy ([R26]).
    ///
    /// [R26]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r26
    CrossSiteOrigin(OriginRejection),
    /// A state-changing request without `Origin` whose `Sec-Fetch-Site`
    /// says `cross-site` ([R26]).
    ///
    /// [R26]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r26
    CrossSiteFetch,
}

/// What a request is to an engine.io server mounted at an engine path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineRequest {
    /// It opens a new engine.io session (no `sid` yet): the request whose
    /// headers socket.io keeps as the connection's handshake.
    Open,
    /// A later request of an engine.io session (it carries a `sid`).
    Later,
    /// Not for the engine.io server.
    Other,
}

impl EngineRequest {
    /// What a request for `path` with `query` (without `?`) is to an
    /// engine.io server at `engine_path`, by engineioxide's rules: it serves
    /// `engine_path`, and paths below it (`/socket.io`, `/socket.io/`,
    /// `/socket.io/...`, not `/socket.iox`); a request is a later one when a
    /// raw `&`-separated part of its query starts with `sid=` (so `xsid=`
    /// does not count).
    pub fn of(engine_path: &[u8], path: &[u8], query: Option<&[u8]>) -> Self {
        let served = path.strip_prefix(engine_path).is_some_and(|rest| {
            rest.is_empty() || rest.starts_with(b"/") || engine_path.ends_with(b"/")
        });
        if !served {
            EngineRequest::Other
        } else if has_sid(query) {
            EngineRequest::Later
        } else {
            EngineRequest::Open
        }
    }
}

/// Whether a raw query names an engine.io session: engine.io takes the
/// first `&`-separated part that starts with `sid=`, undecoded.
fn has_sid(query: Option<&[u8]>) -> bool {
    query.is_some_and(|q| q.split(|&b| b == b'&').any(|p| p.starts_with(b"sid=")))
}

/// The parts of a request [`OriginPolicy::check_request`] looks at.
#[derive(Clone, Copy, Debug)]
pub struct RequestLine<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a [u8],
    /// The path, e.g. `/socket.io/`.
    pub path: &'a [u8],
    /// The query, without `?`.
    pub query: Option<&'a [u8]>,
    /// The scheme, when the request carries it (`http`, `https`).
    pub scheme: Option<&'a [u8]>,
}

impl OriginPolicy {
    /// The checks made before a request reaches socket.io or a handler:
    ///
    /// - a request under `engine_path` (any path starting with it, which
    ///   covers every path the engine.io layer serves) that carries an
    ///   engine.io `sid` query parameter must pass this policy ([R27]);
    /// - with `csrf`, any other request whose method is not `GET`, `HEAD`,
    ///   `OPTIONS` or `TRACE` must pass it, or, without `Origin`, must not
    ///   say `Sec-Fetch-Site: cross-site` ([R26]).
    ///
    /// [R26]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r26
    /// [R27]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r27
    pub fn check_request<I, N, V>(
        &self,
        engine_path: &[u8],
        csrf: bool,
        request: RequestLine<'_>,
        headers: I,
    ) -> Result<(), RequestRefusal>
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        // Every path that starts with the engine path, wider than what
        // engine.io serves (`EngineRequest::of`): a sibling path an older
        // engine.io served is checked too.
        let later = request.path.starts_with(engine_path);
        if later {
            if !has_sid(request.query) {
                return Ok(());
            }
        } else if !csrf || is_safe(request.method) {
            return Ok(());
        }
        let mut gathered = Gathered::new();
        let mut cross_site = false;
        for (name, value) in headers {
            let (name, value) = (name.as_ref(), value.as_ref());
            if !gathered.offer(name, || value.to_vec())
                && eq_ignore_case(name, b"sec-fetch-site")
                && eq_ignore_case(value, b"cross-site")
            {
                cross_site = true;
            }
        }
        let mut seen = gathered.seen();
        seen.scheme = request.scheme;
        if later {
            return self
                .check_seen(&seen)
                .map_err(RequestRefusal::LaterEngineRequest);
        }
        if seen.origins == 0 && cross_site {
            return Err(RequestRefusal::CrossSiteFetch);
        }
        self.check_seen(&seen)
            .map_err(RequestRefusal::CrossSiteOrigin)
    }
}

/// Methods that must not change state (RFC 9110 9.2.1).
fn is_safe(method: &[u8]) -> bool {
    matches!(method, b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r39_engine_requests_are_told_apart_as_engineioxide_tells_them() {
        let of = |path: &str, query: Option<&str>| {
            EngineRequest::of(b"/socket.io", path.as_bytes(), query.map(str::as_bytes))
        };
        let open = Some("EIO=4&transport=polling&t=x");
        assert_eq!(of("/socket.io/", open), EngineRequest::Open);
        assert_eq!(of("/socket.io", open), EngineRequest::Open);
        assert_eq!(of("/socket.io/deeper", open), EngineRequest::Open);
        assert_eq!(of("/socket.io/", None), EngineRequest::Open);
        // `xsid=` is not engine.io's `sid`: still an open.
        assert_eq!(
            of("/socket.io/", Some("EIO=4&transport=polling&xsid=1")),
            EngineRequest::Open
        );
        assert_eq!(
            of("/socket.io/", Some("EIO=4&transport=polling&sid=abc")),
            EngineRequest::Later
        );
        assert_eq!(
            of("/socket.io/", Some("sid=abc&EIO=4")),
            EngineRequest::Later
        );
        assert_eq!(of("/socket.iox/", open), EngineRequest::Other);
        assert_eq!(of("/login", open), EngineRequest::Other);
        assert_eq!(
            EngineRequest::of(b"/io/", b"/io/x", None),
            EngineRequest::Open,
            "an engine path ending in / serves what is below it"
        );
    }

    fn list(origins: &[&str]) -> OriginPolicy {
        OriginPolicy {
            allowed: AllowedOrigins::List(origins.iter().map(|s| s.to_string()).collect()),
            ..OriginPolicy::default()
        }
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(8192))]
        #[test]
        fn the_one_walk_agrees_with_the_piecewise_check(
            s in proptest::collection::vec(
                proptest::sample::select(vec![
                    &b"http"[..], b"https", b"a", b"Z", b"+", b"-", b".", b":", b"//", b"/", b"[",
                    b"]", b"::1", b"8", b"80", b"123456", b"localhost", b"x y", b"\xe9", b"@",
                ]),
                0..8,
            ).prop_map(|p| p.concat()),
        ) {
            proptest::prop_assert_eq!(
                well_formed_authority(&s),
                well_formed_authority_general(&s)
            );
        }
    }

    #[test]
    fn byte_classes_and_case_folding_match_the_plain_predicates() {
        for b in 0..=255u8 {
            let scheme = b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b);
            let host = b.is_ascii_alphanumeric() || b"-.".contains(&b);
            let ipv6 = b.is_ascii_hexdigit() || b":.".contains(&b);
            assert_eq!(all_in(&[b], SCHEME), scheme, "{b}");
            assert_eq!(all_in(&[b], HOST), host, "{b}");
            assert_eq!(all_in(&[b], DIGIT), b.is_ascii_digit(), "{b}");
            assert_eq!(all_in(&[b], IPV6), ipv6, "{b}");
            for c in 0..=255u8 {
                assert_eq!(eq_ignore_case(&[b], &[c]), b.eq_ignore_ascii_case(&c));
            }
        }
        assert!(eq_ignore_case(b"App.Example:80", b"app.example:80"));
        assert!(!eq_ignore_case(b"app.example", b"app.example:80"));
    }

    #[test]
    fn r05_allowlist_is_exact_match() {
        let p = list(&["https://app.example"]);
        assert_eq!(p.check(&[b"https://app.example"], None), Ok(()));
        for other in [
            &b"https://app.example.evil"[..],
            b"http://app.example",
            b"https://APP.example",
            b"https://app.example:443",
            b"https://evil.example",
        ] {
            assert!(
                matches!(p.check(&[other], None), Err(OriginRejection::NotAllowed(_))),
                "{}",
                other.escape_ascii()
            );
        }
    }

    #[test]
    fn r07_missing_and_null_are_distinct() {
        let mut p = list(&["https://app.example"]);
        assert_eq!(p.check(&[], None), Ok(()));
        assert_eq!(p.check(&[b"null"], None), Err(OriginRejection::Null));
        p.allow_missing = false;
        assert_eq!(p.check(&[], None), Err(OriginRejection::Missing));
        p.allow_null = true;
        assert_eq!(p.check(&[b"null"], None), Ok(()));
        assert_eq!(p.check(&[], None), Err(OriginRejection::Missing));
    }

    #[test]
    fn r08_malformed_origins_are_rejected_even_when_any_is_allowed() {
        let p = OriginPolicy {
            allowed: AllowedOrigins::Any,
            ..OriginPolicy::default()
        };
        for bad in [
            &b"https://app.example/"[..],
            b"https://app.example/path",
            b"app.example",
            b"https://",
            b"https://user@app.example",
            b"HTTPS://app.example",
            b"https://app.example:",
            b"https://app.example:123456",
            b"https://app.example:80x",
            b"https://[zz]",
            b"https://a b",
            b"https://app.example\r\nX: y",
            b"",
            b"NULL",
        ] {
            assert_eq!(
                p.check(&[bad], None),
                Err(OriginRejection::Malformed),
                "{}",
                bad.escape_ascii()
            );
        }
        assert_eq!(p.check(&[b"https://[::1]:8080"], None), Ok(()));
        assert_eq!(
            p.check(&[b"https://a.example", b"https://a.example"], None),
            Err(OriginRejection::Malformed)
        );
    }

    #[test]
    fn r28_same_host_compares_scheme_host_and_port_when_the_scheme_is_known() {
        let p = OriginPolicy::default();
        let host = Some(&b"chat.example"[..]);
        // Scheme unknown: host and port decide, only http(s) passes.
        assert_eq!(p.check(&[b"https://chat.example"], host), Ok(()));
        assert_eq!(p.check(&[b"http://chat.example"], host), Ok(()));
        for other in [
            &b"ftp://chat.example"[..],
            b"ws://chat.example",
            b"chrome-extension://chat.example",
        ] {
            assert!(
                matches!(p.check(&[other], host), Err(OriginRejection::NotAllowed(_))),
                "{}",
                other.escape_ascii()
            );
        }
        // The request's scheme, when it carries one.
        let https = Some(&b"https"[..]);
        assert_eq!(
            p.check_with_scheme(&[b"https://chat.example"], host, https),
            Ok(())
        );
        assert!(
            p.check_with_scheme(&[b"http://chat.example"], host, https)
                .is_err()
        );
        // The default port, written or not, is the same origin.
        assert_eq!(
            p.check_with_scheme(&[b"https://chat.example"], Some(b"chat.example:443"), https),
            Ok(())
        );
        assert_eq!(p.check(&[b"http://chat.example:80"], host), Ok(()));
        assert!(p.check(&[b"https://chat.example:8443"], host).is_err());
        // A public origin: its scheme is the site's, and it passes as such.
        let behind_tls = OriginPolicy {
            public_origin: Some("https://chat.example".into()),
            ..OriginPolicy::default()
        };
        assert_eq!(
            behind_tls.check(&[b"https://chat.example"], Some(b"10.0.0.7:3000")),
            Ok(())
        );
        assert_eq!(behind_tls.check(&[b"https://chat.example"], host), Ok(()));
        assert!(behind_tls.check(&[b"http://chat.example"], host).is_err());
        assert!(behind_tls.check(&[b"https://evil.example"], host).is_err());
    }

    #[test]
    fn r26_r27_request_checks() {
        let p = OriginPolicy::default();
        let line = |method: &'static [u8], path: &'static [u8], query: Option<&'static [u8]>| {
            RequestLine {
                method,
                path,
                query,
                scheme: None,
            }
        };
        let evil = [("host", "chat.example"), ("origin", "https://evil.example")];
        let r = p.check_request(
            b"/socket.io",
            true,
            line(b"GET", b"/socket.iox/", Some(b"EIO=4&sid=a")),
            evil,
        );
        assert!(matches!(r, Err(RequestRefusal::LaterEngineRequest(_))));
        let r = p.check_request(
            b"/socket.io",
            true,
            line(b"GET", b"/socket.io/", Some(b"EIO=4")),
            evil,
        );
        assert_eq!(r, Ok(()), "the opening request is the middleware's");
        let r = p.check_request(b"/socket.io", true, line(b"POST", b"/login", None), evil);
        assert!(matches!(r, Err(RequestRefusal::CrossSiteOrigin(_))));
        let r = p.check_request(b"/socket.io", false, line(b"POST", b"/login", None), evil);
        assert_eq!(r, Ok(()));
        let fetch = [("host", "chat.example"), ("sec-fetch-site", "cross-site")];
        let r = p.check_request(b"/socket.io", true, line(b"DELETE", b"/x", None), fetch);
        assert_eq!(r, Err(RequestRefusal::CrossSiteFetch));
        let r = p.check_request(b"/socket.io", true, line(b"GET", b"/x", None), fetch);
        assert_eq!(r, Ok(()));
        // R28 through the request's scheme.
        let same = [("host", "chat.example"), ("origin", "http://chat.example")];
        let https = RequestLine {
            scheme: Some(b"https"),
            ..line(b"POST", b"/login", None)
        };
        assert!(p.check_request(b"/socket.io", true, https, same).is_err());
    }

    #[test]
    fn r05_same_host_default_compares_with_host_header() {
        let p = OriginPolicy::default();
        assert_eq!(
            p.check(&[b"http://127.0.0.1:3000"], Some(b"127.0.0.1:3000")),
            Ok(())
        );
        assert_eq!(
            p.check(&[b"https://App.Example"], Some(b"app.example")),
            Ok(())
        );
        assert!(matches!(
            p.check(&[b"https://evil.example"], Some(b"app.example")),
            Err(OriginRejection::NotAllowed(_))
        ));
        assert!(matches!(
            p.check(&[b"http://127.0.0.1:3001"], Some(b"127.0.0.1:3000")),
            Err(OriginRejection::NotAllowed(_))
        ));
        assert_eq!(
            p.check(&[b"https://app.example"], None),
            Err(OriginRejection::NoHost)
        );
    }
}
