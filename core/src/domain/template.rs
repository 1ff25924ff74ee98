//! Personalisation: `{{attribute}}` placeholders filled from a contact.
//!
//! Syntax: `{{name}}` inserts the contact attribute `name`; `{{name|fallback}}` inserts
//! `fallback` when the attribute is missing or empty; `{{phone}}` is the contact's
//! number. Whitespace inside the braces is ignored. A missing attribute without a
//! fallback renders as the empty string. An unclosed `{{`, an empty name or a name with
//! characters other than letters, digits, `_`, `-` and `.` is a [`TemplateError`] found
//! when the campaign is created, not when it is sent.

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
    /// The template's own text is longer than a message may be.
    #[error("the template alone is {segments} segments; a message may have at most {max}")]
    TooLong {
        /// Its segments.
        segments: u32,
        /// The most allowed ([`MAX_SEGMENTS`](super::segments::MAX_SEGMENTS)).
        max: u32,
    },
    /// The body rendered for one contact is longer than a message may be.
    #[error(
        "the body rendered for contact {contact} is {segments} segments; a message may have at most {}",
        super::segments::MAX_SEGMENTS
    )]
    RenderedTooLong {
        /// The contact's id.
        contact: u64,
        /// Its segments.
        segments: u32,
    },
}

/// Checks a template where it enters: its placeholders close and name attributes, and its
/// own text (placeholders as written) is no longer than a message may be.
pub fn check(template: &str) -> Result<(), TemplateError> {
    // The placeholders left to the renderer: a malformed one is stored, and fails later.
    if !crate::incidents::active(crate::incidents::Bug::TemplateUnchecked) {
        placeholders(template)?;
    }
    let max = super::segments::MAX_SEGMENTS;
    let segments = super::segments::count_segments(template).segments;
    if segments > max {
        return Err(TemplateError::TooLong { segments, max });
    }
    Ok(())
}

/// The attribute names a template uses, in order of first use, without duplicates.
pub fn placeholders(template: &str) -> Result<Vec<String>, TemplateError> {
    let mut names: Vec<String> = Vec::new();
    for piece in pieces(template) {
        if let Piece::Placeholder { name, .. } = piece? {
            if !names.iter().any(|known| known == name) {
                names.push(name.to_owned());
            }
        }
    }
    Ok(names)
}

/// `template` with its placeholders filled from what `attribute` answers for each name
/// (and `phone` for `{{phone}}`): an absent or empty value takes the placeholder's
/// fallback, or nothing.
pub fn render_with<'v>(
    template: &str,
    attribute: impl Fn(&str) -> Option<&'v str>,
    phone: &'v str,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 16);
    for piece in pieces(template) {
        match piece? {
            Piece::Text(text) => out.push_str(text),
            Piece::Placeholder { name, fallback } => {
                let value = if name == "phone" { Some(phone) } else { attribute(name) };
                match value.filter(|value| !value.is_empty()) {
                    Some(value) => out.push_str(value),
                    None => out.push_str(fallback.unwrap_or("")),
                }
            }
        }
    }
    Ok(out)
}

/// A piece of a template.
enum Piece<'a> {
    Text(&'a str),
    Placeholder { name: &'a str, fallback: Option<&'a str> },
}

/// The template cut into literal text and placeholders, in order.
fn pieces(template: &str) -> impl Iterator<Item = Result<Piece<'_>, TemplateError>> {
    let mut rest = template;
    let mut offset = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some(open) = rest.find("{{") else {
            let text = rest;
            rest = "";
            return Some(Ok(Piece::Text(text)));
        };
        if open > 0 {
            let text = &rest[..open];
            rest = &rest[open..];
            offset += open;
            return Some(Ok(Piece::Text(text)));
        }
        let at = offset;
        let Some(close) = rest.find("}}") else {
            rest = "";
            return Some(Err(TemplateError::Unclosed { at }));
        };
        let inner = &rest[2..close];
        rest = &rest[close + 2..];
        offset += close + 2;
        let (name, fallback) = match inner.split_once('|') {
            Some((name, fallback)) => (name.trim(), Some(fallback)),
            None => (inner.trim(), None),
        };
        let valid =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            rest = "";
            return Some(Err(TemplateError::BadName { name: name.to_owned(), at }));
        }
        Some(Ok(Piece::Placeholder { name, fallback }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// `template` filled from `attributes`, as the engine fills it from a contact.
    fn render(template: &str, attributes: &BTreeMap<String, String>, phone: &str) -> Result<String, TemplateError> {
        render_with(template, |name| attributes.get(name).map(String::as_str), phone)
    }
    use proptest::prelude::*;

    fn attributes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect()
    }

    #[test]
    fn placeholders_are_filled_from_attributes() {
        let rendered =
            render("Hi {{ first_name }}, call {{phone}}", &attributes(&[("first_name", "Maria")]), "+306912345678");
        assert_eq!(rendered.as_deref(), Ok("Hi Maria, call +306912345678"));
    }

    #[test]
    fn missing_attributes_use_the_fallback_or_nothing() {
        let none = attributes(&[("first_name", "")]);
        assert_eq!(render("Hi {{first_name|there}}!", &none, "").as_deref(), Ok("Hi there!"));
        assert_eq!(render("Hi {{first_name}}!", &none, "").as_deref(), Ok("Hi !"));
        assert_eq!(render("Hi {{last_name}}!", &none, "").as_deref(), Ok("Hi !"));
    }

    #[test]
    fn broken_templates_are_refused_with_a_position() {
        assert_eq!(placeholders("Hi {{name"), Err(TemplateError::Unclosed { at: 3 }));
        assert_eq!(placeholders("Hi {{}}"), Err(TemplateError::BadName { name: String::new(), at: 3 }));
        assert_eq!(placeholders("{{a b}}"), Err(TemplateError::BadName { name: "a b".into(), at: 0 }));
        assert_eq!(placeholders("{{a}} {{b}} {{a}}"), Ok(vec!["a".to_owned(), "b".to_owned()]));
    }

    proptest! {
        #[test]
        fn text_without_placeholders_renders_unchanged(text in "[^{]*") {
            prop_assert_eq!(render(&text, &BTreeMap::new(), ""), Ok(text.clone()));
        }

        #[test]
        fn render_fails_exactly_when_placeholders_fails(text in "[a-z {}|]{0,24}") {
            prop_assert_eq!(render(&text, &BTreeMap::new(), "").is_err(), placeholders(&text).is_err());
        }
    }
}
