//! Phone-number validation through a real numbering-plan library (`phonenumber`, a port
//! of libphonenumber), not a regular expression.
//!
//! Numbers must be written in international form (`+` and country code); the result is
//! the canonical E.164 string (`+306912345678`). Spaces, dashes, dots and parentheses
//! are accepted on input and dropped on output.

/// A number that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Not parseable as an international number.
    #[error("`{input}` is not a phone number in international form (expected E.164, e.g. +306912345678): {reason}")]
    Unparseable {
        /// The input.
        input: String,
        /// What the parser said.
        reason: String,
    },
    /// Parseable, but not a valid number of its numbering plan.
    #[error("`{input}` is not a valid number for its country")]
    Invalid {
        /// The input.
        input: String,
    },
}

/// `input` as a canonical E.164 string, if it is a valid number.
pub fn normalize_e164(input: &str) -> Result<String, PhoneError> {
    let _ = input;
    todo!("domain helper")
}
