//! The codecs: bytes in, values out, no IO and no state. What a `Cookie`
//! header names ([`cookie`], [`resolve`]), what a signature proves
//! ([`signature`]), what a stored record holds ([`record`]), and the
//! `Set-Cookie` header a response sends ([`set_cookie`]). The machines
//! ([`machines`](crate::machines)) decide; these only translate.

pub mod cookie;
pub(crate) mod cookie_syntax;
pub mod record;
pub mod resolve;
pub mod set_cookie;
pub mod signature;
