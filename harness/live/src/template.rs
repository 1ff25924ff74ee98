//! `${name}` placeholders in profiles, filled from the run's values. An unknown name is
//! an error that names the template, so a typo in a profile is found before a run.

use crate::LiveError;
use std::collections::BTreeMap;

/// Values placeholders are filled from: name → text. Names ending in `_json` hold JSON
/// and go into bodies as they are; other values are JSON-escaped inside bodies.
pub type Values = BTreeMap<String, String>;

/// Fills `template`'s placeholders. `json` escapes string values for a JSON body.
pub fn fill(template: &str, values: &Values, place: &str, json: bool) -> Result<String, LiveError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        let value = values.get(name).ok_or_else(|| LiveError::Placeholder {
            place: place.to_owned(),
            name: name.to_owned(),
            known: values.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        if json && !name.ends_with("_json") {
            let quoted = serde_json::to_string(value).expect("strings serialise");
            out.push_str(&quoted[1..quoted.len() - 1]);
        } else {
            out.push_str(value);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_escapes_and_names_unknown_placeholders() {
        let values = Values::from([
            ("name".to_owned(), "a \"b\"".to_owned()),
            ("contacts_json".to_owned(), "[\"+1\"]".to_owned()),
        ]);
        let body = fill(r#"{"n":"${name}","c":${contacts_json}}"#, &values, "t", true).unwrap();
        assert_eq!(body, r#"{"n":"a \"b\"","c":["+1"]}"#);
        assert_eq!(fill("/x/${name}", &values, "t", false).unwrap(), "/x/a \"b\"");
        let error = fill("/x/${nmae}", &values, "actions.enqueue.path", false).unwrap_err().to_string();
        assert!(error.contains("actions.enqueue.path") && error.contains("nmae"), "{error}");
    }
}
