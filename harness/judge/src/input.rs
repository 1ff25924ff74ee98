//! The judge's own model of the input rules the HTTP API documents
//! (`docs/src/reference/http-api.md`), for the `input` invariant: bad input is refused with
//! an answer that names the field and the place, and a valid row of an import is counted
//! as the model counts it.
//!
//! * **Templates**: `{{` must be closed by `}}`; a placeholder's name (before a `|`,
//!   spaces around it ignored) is 1 or more letters, digits, `_`, `-` or `.`; the
//!   template's own text is at most 10 segments. A refusal is `400 VALIDATION` on
//!   `body_template`, and for a placeholder at fault its message names the byte offset
//!   of its `{{` ("at byte N").
//! * **Contact rows**: a number is refused when, spaces, `-`, `.`, `(`, `)` and tabs
//!   removed, it is not `+` followed by digits. Whether `+` and digits form a number of its
//!   country's plan the judge does not decide: such a row is taken as the engine answers
//!   it (imported, or refused on `phone`). Attribute names are 1 to 64 letters, digits,
//!   `_`, `-` or `.`, values at most 1 024 bytes; the first bad one in name order is the
//!   field refused (`attributes.NAME`). A valid row creates the tenant's contact, changes
//!   it (other attributes or opt-out) or leaves it as it is.
//! * **Imports** carry at most 10 000 rows: one of more is refused whole, `413
//!   PAYLOAD_TOO_LARGE`, and changes nothing; one of exactly 10 000 is taken row by row.
//! * **Credit changes** of a tenant with nothing reserved: a `top_up` of 1 to 10¹⁵, an
//!   `adjust` non-zero within ±10¹⁵, a balance of at most 10¹⁵ after either, else `400
//!   VALIDATION` on the field; a balance below zero after it is `402 INSUFFICIENT_CREDITS`,
//!   its message naming what was needed and what was available.

use std::collections::BTreeMap;

/// A template's own text may be this many segments at most.
pub const MAX_TEMPLATE_SEGMENTS: usize = 10;
/// Attribute names are at most this many bytes.
pub const MAX_ATTRIBUTE_NAME: usize = 64;
/// Attribute values are at most this many bytes.
pub const MAX_ATTRIBUTE_VALUE: usize = 1024;
/// A balance, a top-up and an adjustment are at most this many credits (10¹⁵).
pub const MAX_CREDITS: i64 = 1_000_000_000_000_000;
/// An import carries at most this many rows.
pub const MAX_IMPORT_ROWS: usize = 10_000;

/// What a credit change of a tenant with `balance` and nothing reserved must be answered:
/// the new balance, or the status, code and field of its refusal and what its message
/// must say.
pub fn credit_change(balance: i64, field: &str, amount: i64) -> Result<i64, (u16, &'static str, Option<String>)> {
    let invalid = Err((400, "VALIDATION", None));
    match field {
        "top_up" if !(1..=MAX_CREDITS).contains(&amount) => return invalid,
        "adjust" if amount == 0 || amount.unsigned_abs() > MAX_CREDITS.unsigned_abs() => return invalid,
        _ => {}
    }
    let after = balance + amount;
    if after > MAX_CREDITS {
        return invalid;
    }
    if after < 0 {
        let says = format!(" {} needed, {balance} available", -amount);
        return Err((402, "INSUFFICIENT_CREDITS", Some(says)));
    }
    Ok(after)
}

/// Why a template is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateFault {
    /// The placeholder whose `{{` is at this byte is not closed, or its name is not one.
    Placeholder {
        /// Byte offset of its `{{`.
        at: usize,
    },
    /// The template's own text is more segments than a message may be.
    TooLong,
}

/// Why `template` must be refused, if it must.
pub fn template_fault(template: &str) -> Option<TemplateFault> {
    let mut at = 0;
    while let Some(open) = template[at..].find("{{") {
        let start = at + open;
        let Some(close) = template[start + 2..].find("}}") else {
            return Some(TemplateFault::Placeholder { at: start });
        };
        let inside = &template[start + 2..start + 2 + close];
        let name = inside.split('|').next().unwrap_or("").trim();
        if !is_name(name, usize::MAX) {
            return Some(TemplateFault::Placeholder { at: start });
        }
        at = start + 2 + close + 2;
    }
    if crate::segments::count(template) as usize > MAX_TEMPLATE_SEGMENTS {
        return Some(TemplateFault::TooLong);
    }
    None
}

/// Whether `name` is 1 to `max` letters, digits, `_`, `-` or `.`.
fn is_name(name: &str, max: usize) -> bool {
    (1..=max).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A contact row as the driver sent it in an import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactRow {
    /// The number as written.
    pub phone: String,
    /// Its attributes.
    pub attributes: BTreeMap<String, String>,
    /// Opted out.
    pub opted_out: bool,
}

/// What the judge makes of a row's number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PhoneVerdict {
    /// Not `+` and digits: refused whatever the numbering plan.
    Refused,
    /// `+` and digits, in this compact form: the numbering plan decides.
    Plausible(String),
}

/// What the judge makes of `phone`.
pub fn phone_verdict(phone: &str) -> PhoneVerdict {
    let compact: String = phone.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\t')).collect();
    match compact.strip_prefix('+') {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            PhoneVerdict::Plausible(compact)
        }
        _ => PhoneVerdict::Refused,
    }
}

/// The first attribute at fault, in name order, as the field a refusal names.
pub fn attribute_fault(attributes: &BTreeMap<String, String>) -> Option<String> {
    attributes
        .iter()
        .find(|(name, value)| !is_name(name, MAX_ATTRIBUTE_NAME) || value.len() > MAX_ATTRIBUTE_VALUE)
        .map(|(name, _)| format!("attributes.{name}"))
}

/// An import's answer: the counts and the refused rows (index and field), as the engine
/// gave them or as the model expects them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// Contacts created.
    pub created: u32,
    /// Contacts whose attributes or opt-out changed.
    pub updated: u32,
    /// Contacts left as they were.
    pub unchanged: u32,
    /// Refused rows: index in the request, field.
    pub errors: Vec<(usize, String)>,
}

/// One tenant's contacts as the model holds them: number → (attributes, opted out).
pub type ContactBook = BTreeMap<String, (BTreeMap<String, String>, bool)>;

/// What importing `rows` into `book` must answer, given what the engine answered for the
/// numbers only the numbering plan decides (`engine_refused_phone(row)`), and the book
/// once they are in.
pub fn expected_import(
    book: &ContactBook,
    rows: &[ContactRow],
    engine_refused_phone: impl Fn(usize) -> bool,
) -> (ImportCounts, ContactBook) {
    let mut book = book.clone();
    let mut counts = ImportCounts::default();
    for (index, row) in rows.iter().enumerate() {
        let phone = match phone_verdict(&row.phone) {
            PhoneVerdict::Refused => {
                counts.errors.push((index, "phone".to_owned()));
                continue;
            }
            PhoneVerdict::Plausible(_) if engine_refused_phone(index) => {
                counts.errors.push((index, "phone".to_owned()));
                continue;
            }
            PhoneVerdict::Plausible(phone) => phone,
        };
        if let Some(field) = attribute_fault(&row.attributes) {
            counts.errors.push((index, field));
            continue;
        }
        let now = (row.attributes.clone(), row.opted_out);
        match book.insert(phone, now.clone()) {
            None => counts.created += 1,
            Some(before) if before == now => counts.unchanged += 1,
            Some(_) => counts.updated += 1,
        }
    }
    (counts, book)
}

/// What the judge holds of the tenants the driver sends bad input as.
#[derive(Clone, Debug, Default)]
pub struct InputModel {
    tenants: BTreeMap<String, TenantInputs>,
}

/// One such tenant: its contact book and campaigns as the answers so far made them.
#[derive(Clone, Debug, Default)]
struct TenantInputs {
    book: ContactBook,
    campaigns: u32,
    /// Its balance as the credit changes answered so far left it (`None`: none yet).
    balance: Option<i64>,
    /// A request of it went unanswered (or answered 5xx): what it did is not known, so
    /// what the tenant lists is no longer judged.
    in_doubt: bool,
}

/// A finding of the `input` invariant: what is wrong, and the evidence.
pub type Finding = (String, Vec<String>);

impl InputModel {
    /// Judges `answer` to `input`, sent as `tenant` (whose opening balance is `opening`),
    /// and takes in what it changed.
    pub fn sent(
        &mut self,
        tenant: &str,
        opening: i64,
        input: crate::observation::Input<'_>,
        answer: &crate::observation::InputAnswer<'_>,
    ) -> Option<Finding> {
        use crate::observation::Input;
        let model = self.tenants.entry(tenant.to_owned()).or_default();
        if answer.status == 0 || answer.status >= 500 {
            model.in_doubt = true;
            return None;
        }
        let answered = format!(
            "answered {} {} on {}: {}",
            answer.status,
            answer.code.unwrap_or("-"),
            answer.field.unwrap_or("-"),
            answer.message.unwrap_or("-")
        );
        match input {
            Input::Campaign { template } => match template_fault(template) {
                None if (200..300).contains(&answer.status) => {
                    model.campaigns += 1;
                    None
                }
                None => Some((format!("a valid template was refused: {template:?}"), vec![answered])),
                Some(fault) => {
                    if (200..300).contains(&answer.status) {
                        model.campaigns += 1;
                        return Some((format!("a template at fault was accepted: {template:?}"), vec![answered]));
                    }
                    let named = match fault {
                        TemplateFault::Placeholder { at } => {
                            answer.message.is_some_and(|message| message.contains(&format!("byte {at}")))
                        }
                        TemplateFault::TooLong => true,
                    };
                    let right = answer.status == 400
                        && answer.code == Some("VALIDATION")
                        && answer.field == Some("body_template")
                        && named;
                    (!right).then(|| {
                        (
                            format!("a template at fault ({fault:?}) was not refused as documented: {template:?}"),
                            vec![answered, "owed: 400 VALIDATION on body_template, naming the byte".into()],
                        )
                    })
                }
            },
            Input::Credits { .. } if model.in_doubt => None,
            Input::Credits { field, amount } => {
                let balance = *model.balance.get_or_insert(opening);
                let owed = credit_change(balance, field, amount);
                match (&owed, answer.status) {
                    (Ok(after), 200..=299) => {
                        model.balance = Some(*after);
                        None
                    }
                    (Err((status, code, says)), _)
                        if answer.status == *status
                            && answer.code == Some(*code)
                            && (*status == 402 || answer.field == Some(field))
                            && says.as_ref().is_none_or(|says| answer.message.is_some_and(|m| m.contains(says))) =>
                    {
                        None
                    }
                    _ => Some((
                        format!("a credit change `{field}: {amount}` on a balance of {balance} was not answered as documented"),
                        vec![answered, format!("owed: {owed:?}")],
                    )),
                }
            }
            Input::Import { rows } if rows.len() > MAX_IMPORT_ROWS => {
                let right = answer.status == 413 && answer.code == Some("PAYLOAD_TOO_LARGE");
                if (200..300).contains(&answer.status) {
                    // Taken: what it changed is not the judge's to guess.
                    model.in_doubt = true;
                }
                (!right).then(|| {
                    (
                        format!("an import of {} rows, more than {MAX_IMPORT_ROWS}, was not refused whole", rows.len()),
                        vec![answered, "owed: 413 PAYLOAD_TOO_LARGE".into()],
                    )
                })
            }
            Input::Import { rows } => {
                let Some(counts) = answer.import else {
                    model.in_doubt = true;
                    return Some((
                        format!("an import of {} rows was not answered with its counts", rows.len()),
                        vec![answered],
                    ));
                };
                let refused_phone =
                    |index: usize| counts.errors.iter().any(|(row, field)| *row == index && field == "phone");
                let (expected, book) = expected_import(&model.book, rows, refused_phone);
                if (200..300).contains(&answer.status) {
                    model.book = book;
                }
                (answer.status != 200 || *counts != expected).then(|| {
                    (
                        format!(
                            "an import of {} rows was not answered as the judge's contact book counts it",
                            rows.len()
                        ),
                        vec![format!("answered {} {counts:?}", answer.status), format!("owed 200 {expected:?}")],
                    )
                })
            }
        }
    }

    /// Judges what `tenant` lists after its bad input: the judge's contact book, and the
    /// campaigns it accepted.
    pub fn read(&self, tenant: &str, contacts: &[ContactRow], campaigns: u32) -> Option<Finding> {
        let model = self.tenants.get(tenant).cloned().unwrap_or_default();
        if model.in_doubt {
            return None;
        }
        let listed: ContactBook =
            contacts.iter().map(|row| (row.phone.clone(), (row.attributes.clone(), row.opted_out))).collect();
        if listed != model.book || contacts.len() != model.book.len() {
            let missing: Vec<&String> = model.book.keys().filter(|phone| !listed.contains_key(*phone)).collect();
            let extra: Vec<&String> = listed.keys().filter(|phone| !model.book.contains_key(*phone)).collect();
            return Some((
                format!("tenant {tenant} lists contacts its imports did not leave"),
                vec![
                    format!("{} listed, {} in the judge's book", contacts.len(), model.book.len()),
                    format!("missing {missing:?}, extra {extra:?}"),
                ],
            ));
        }
        (campaigns != model.campaigns).then(|| {
            (format!("tenant {tenant} lists {campaigns} campaigns; {} were accepted", model.campaigns), vec![])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_changes_are_answered_from_the_balance() {
        assert_eq!(credit_change(1_000, "top_up", 1), Ok(1_001));
        assert_eq!(credit_change(1_000, "adjust", -1_000), Ok(0));
        assert_eq!(credit_change(1_000, "top_up", 0), Err((400, "VALIDATION", None)));
        assert_eq!(credit_change(1_000, "adjust", 0), Err((400, "VALIDATION", None)));
        assert_eq!(credit_change(1_000, "top_up", MAX_CREDITS + 1), Err((400, "VALIDATION", None)));
        assert_eq!(credit_change(1_000, "adjust", i64::MIN), Err((400, "VALIDATION", None)));
        assert_eq!(credit_change(1, "top_up", MAX_CREDITS), Err((400, "VALIDATION", None)));
        assert_eq!(
            credit_change(1_000, "adjust", -1_001),
            Err((402, "INSUFFICIENT_CREDITS", Some(" 1001 needed, 1000 available".into())))
        );
    }

    #[test]
    fn templates_are_refused_where_their_placeholder_is() {
        assert_eq!(template_fault("Hello {{first_name|there}} {{ phone }}"), None);
        assert_eq!(template_fault("Hi {{first_name"), Some(TemplateFault::Placeholder { at: 3 }));
        assert_eq!(template_fault("Hi {{}}"), Some(TemplateFault::Placeholder { at: 3 }));
        assert_eq!(template_fault("Hi {{ | x}}"), Some(TemplateFault::Placeholder { at: 3 }));
        assert_eq!(template_fault("Hi {{first name}}"), Some(TemplateFault::Placeholder { at: 3 }));
        assert_eq!(template_fault("A {{a}} B {{b-c.d|x y}} C {{bad!}}"), Some(TemplateFault::Placeholder { at: 26 }));
        assert_eq!(template_fault(&"x".repeat(1530)), None);
        assert_eq!(template_fault(&"x".repeat(1531)), Some(TemplateFault::TooLong));
        // `}}` before any `{{` is text.
        assert_eq!(template_fault("}} {{a}}"), None);
    }

    #[test]
    fn numbers_are_refused_only_when_no_plan_could_take_them() {
        assert_eq!(phone_verdict("555-1234"), PhoneVerdict::Refused);
        assert_eq!(phone_verdict("+"), PhoneVerdict::Refused);
        assert_eq!(phone_verdict(""), PhoneVerdict::Refused);
        assert_eq!(phone_verdict("+30abc"), PhoneVerdict::Refused);
        assert_eq!(phone_verdict("+30 691 234-5678"), PhoneVerdict::Plausible("+306912345678".into()));
    }

    #[test]
    fn an_import_counts_each_valid_row_once_and_names_each_bad_one() {
        let row = |phone: &str, attributes: &[(&str, &str)], opted_out| ContactRow {
            phone: phone.into(),
            attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            opted_out,
        };
        let long_name = "n".repeat(65);
        let rows = vec![
            row("+306912300001", &[("first_name", "Maria")], false),
            row("555-1234", &[], false),
            row("+306912300001", &[("first_name", "Maria")], false),
            row("+306912300001", &[("first_name", "Maria")], true),
            row("+306912300002", &[(&long_name, "x"), ("a", "x")], false),
            row("+306912300003", &[("z", "ok"), ("b!", "x")], false),
            row("+306912300004", &[("v", &"v".repeat(1025))], false),
            row("+306912300005", &[("v", &"v".repeat(1024)), (&"n".repeat(64), "x")], false),
            row("+999", &[], false),
        ];
        let (counts, book) = expected_import(&ContactBook::new(), &rows, |index| index == 8);
        let expected_errors = vec![
            (1, "phone".to_owned()),
            (4, format!("attributes.{long_name}")),
            (5, "attributes.b!".to_owned()),
            (6, "attributes.v".to_owned()),
            (8, "phone".to_owned()),
        ];
        assert_eq!(counts, ImportCounts { created: 2, updated: 1, unchanged: 1, errors: expected_errors });
        assert_eq!(book.len(), 2);
        assert!(book["+306912300001"].1, "the later row's opt-out stands");
    }
}
