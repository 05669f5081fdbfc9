//! Whose fault an error is: a leaf every error type uses.

/// Whose fault a [`HandshakeError`](crate::HandshakeError), a
/// [`WriteError`](crate::WriteError) or a [`Failure`](crate::Failure) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The request: no, bad or refused credentials. Expected traffic.
    Request,
    /// The session's state: it ended or never existed.
    Session,
    /// The store or the data in it: an operator should look.
    Store,
    /// This server: it is stopping, or its settings cannot be applied.
    Server,
}

impl Fault {
    /// Whether an operator should look ([`Fault::Store`], [`Fault::Server`]),
    /// rather than expected traffic or a session's normal end.
    pub fn needs_operator(self) -> bool {
        matches!(self, Fault::Store | Fault::Server)
    }
}
