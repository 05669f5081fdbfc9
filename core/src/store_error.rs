//! [`StoreError`]: a store's failure, with its cause.

use std::error::Error;
use std::sync::Arc;

/// A store failure: what the code running a machine's requests answers in
/// [`Reply::Failed`](crate::Reply::Failed), and what reaches the caller in
/// [`Failure::Store`](crate::Failure::Store).
///
/// The message says what failed and what to check; it never holds keys,
/// values or credentials ([R16]). The underlying cause, if any, is kept
/// (in an `Arc`, so that the error stays `Clone`) and returned by
/// [`source`](Error::source); [`Display`](std::fmt::Display) shows the
/// message only, so that an error reporter walking the chain prints each
/// cause once.
///
/// Two store errors are equal when their messages are; causes are not
/// compared.
///
/// [R16]: https://github.com/session-sockets/session-sockets/blob/main/docs/requirements.md#r16
#[derive(Clone)]
pub struct StoreError {
    message: String,
    source: Option<Arc<dyn Error + Send + Sync + 'static>>,
}

impl StoreError {
    /// A failure described by `message` (no keys or values in it).
    pub fn new(message: impl Into<String>) -> Self {
        StoreError {
            message: message.into(),
            source: None,
        }
    }

    /// A failure described by `message`, caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl Error + Send + Sync + 'static,
    ) -> Self {
        StoreError {
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// The message, without the cause.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The message and its causes on one line, as `Display` and `source()`
/// say them: what a `main` that returns this error prints.
impl std::fmt::Debug for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        let mut next = self.source.as_deref().map(|e| e as &dyn Error);
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for StoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

impl PartialEq for StoreError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for StoreError {}

impl From<String> for StoreError {
    fn from(message: String) -> Self {
        StoreError::new(message)
    }
}

impl From<&str> for StoreError {
    fn from(message: &str) -> Self {
        StoreError::new(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Cause;

    impl std::fmt::Display for Cause {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the cause")
        }
    }

    impl Error for Cause {}

    #[test]
    fn the_cause_is_kept_through_clones_and_not_printed_twice() {
        let e = StoreError::with_source("the store is down", Cause);
        let copy = e.clone();
        assert_eq!(copy.to_string(), "the store is down");
        let cause = copy.source().expect("the cause is kept");
        assert!(cause.downcast_ref::<Cause>().is_some());
        assert_eq!(e, StoreError::new("the store is down"));
    }
}
