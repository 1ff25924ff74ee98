//! The judge's own template renderer, written from the documented syntax (the campaign
//! fields of `docs/src/reference/http-api.md` and the `template` field of
//! `docs/src/reference/scenario-format.md`), not from the engine's:
//!
//! * `{{name}}` — the contact's attribute `name` (spaces around the name ignored), or
//!   nothing when the contact has none or it is empty;
//! * `{{name|fallback}}` — the same, with `fallback` (as written) instead of nothing;
//! * `{{phone}}` — the contact's number;
//! * anything else is literal text.
//!
//! `None` when the template is not well formed (an unclosed `{{`): the engine refuses such
//! a campaign, so there is nothing to compare.

use std::collections::BTreeMap;

/// `template` rendered for a contact with `attributes` and number `phone`.
pub fn render(template: &str, attributes: &BTreeMap<String, String>, phone: &str) -> Option<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}")?;
        let inside = &after[..close];
        let (name, fallback) = match inside.split_once('|') {
            Some((name, fallback)) => (name.trim(), fallback),
            None => (inside.trim(), ""),
        };
        let value = if name == "phone" { Some(phone) } else { attributes.get(name).map(String::as_str) };
        out.push_str(value.filter(|value| !value.is_empty()).unwrap_or(fallback));
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_fallbacks_and_the_phone() {
        let maria: BTreeMap<String, String> = [("first_name".to_owned(), "Maria".to_owned())].into();
        let nobody = BTreeMap::new();
        assert_eq!(render("Hello {{first_name}}!", &maria, "+30").unwrap(), "Hello Maria!");
        assert_eq!(render("Hello {{ first_name }}!", &maria, "+30").unwrap(), "Hello Maria!");
        assert_eq!(render("Hello {{first_name|there}}", &nobody, "+30").unwrap(), "Hello there");
        assert_eq!(render("Hello {{first_name}}", &nobody, "+30").unwrap(), "Hello ");
        assert_eq!(render("Call {{phone}} {{a}}{{b|x}}", &nobody, "+3069").unwrap(), "Call +3069 x");
        assert_eq!(render("no placeholders", &nobody, "+30").unwrap(), "no placeholders");
        assert_eq!(render("open {{first_name", &maria, "+30"), None);
    }
}
