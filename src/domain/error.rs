//! Validation errors that name the offending field.
use std::fmt;

/// One problem with one field: its path in the request (`content.body.notice.subject`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field in the request message, as the client wrote it.
    pub field: String,
    /// Why the value is refused, in words a client developer can act on.
    pub reason: String,
}

/// Every problem found in a request. Validation reports them all at once, so that a publisher
/// fixes a file in one round trip.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct Invalid(pub Vec<FieldError>);

impl Invalid {
    /// A single-field error.
    pub fn one(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Invalid(vec![FieldError {
            field: field.into(),
            reason: reason.into(),
        }])
    }

    pub fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            reason: reason.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was found, else the collected errors.
    pub fn into_result(self) -> Result<(), Invalid> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.reason)?;
        }
        Ok(())
    }
}
