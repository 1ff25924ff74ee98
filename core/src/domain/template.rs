//! Personalisation: `{{attribute}}` placeholders filled from a contact.
//!
//! Syntax: `{{name}}` inserts the contact attribute `name`; `{{name|fallback}}` inserts
//! `fallback` when the attribute is missing or empty; `{{phone}}` is the contact's
//! number. Whitespace inside the braces is ignored. A missing attribute without a
//! fallback renders as the empty string. An unclosed `{{`, an empty name or a name with
//! characters other than letters, digits, `_`, `-` and `.` is a [`TemplateError`] found
//! when the campaign is created, not when it is sent.

use std::collections::BTreeMap;

/// A template that cannot be rendered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` without a matching `}}`.
    #[error("unclosed placeholder starting at byte {at}")]
    Unclosed {
        /// Byte offset of the `{{`.
        at: usize,
    },
    /// A placeholder whose name is empty or has forbidden characters.
    #[error("bad placeholder name `{name}` at byte {at}")]
    BadName {
        /// The name as written.
        name: String,
        /// Byte offset of the `{{`.
        at: usize,
    },
}

/// The attribute names a template uses, in order of first use, without duplicates.
pub fn placeholders(template: &str) -> Result<Vec<String>, TemplateError> {
    let _ = template;
    todo!("domain helper")
}

/// `template` with its placeholders filled from `attributes` (and `phone` for `{{phone}}`).
pub fn render(template: &str, attributes: &BTreeMap<String, String>, phone: &str) -> Result<String, TemplateError> {
    let _ = (template, attributes, phone);
    todo!("domain helper")
}
