//! Phone-number validation through a real numbering-plan library (`rlibphonenumber`, a
//! port of libphonenumber checked against the C++ original), not a regular expression.
//!
//! Numbers must be written in international form (`+` and country code); the result is
//! the canonical E.164 string (`+306912345678`). Spaces, dashes, dots and parentheses
//! are accepted on input and dropped on output.

use rlibphonenumber::{PhoneNumberFormat, PHONE_NUMBER_UTIL};

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

/// Whether `number` has the form of a canonical E.164 string: `+`, a non-zero digit and
/// at most fourteen more digits.
///
/// This is the cheap check of a number already normalised by [`normalize_e164`] (every
/// stored contact's is, at import): it does not consult the numbering plan, so a string
/// of the right form may still not be a valid number.
pub fn is_e164_form(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else { return false };
    (2..=15).contains(&digits.len()) && !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `input` as a canonical E.164 string, if it is a valid number.
pub fn normalize_e164(input: &str) -> Result<String, PhoneError> {
    let compact: String = input.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\t')).collect();
    let unparseable = |reason: &str| PhoneError::Unparseable { input: input.to_owned(), reason: reason.to_owned() };
    let Some(digits) = compact.strip_prefix('+') else {
        return Err(unparseable("it does not start with + and a country code"));
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(unparseable("only digits may follow the +"));
    }
    let number = PHONE_NUMBER_UTIL.parse(&compact, None).map_err(|error| unparseable(&error.to_string()))?;
    if !number.is_valid() {
        return Err(PhoneError::Invalid { input: input.to_owned() });
    }
    Ok(number.format_as(PhoneNumberFormat::E164).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn international_numbers_are_normalised() {
        assert_eq!(normalize_e164("+30 691 234 5678").as_deref(), Ok("+306912345678"));
        assert_eq!(normalize_e164("+44 (7911) 123-456").as_deref(), Ok("+447911123456"));
        assert_eq!(normalize_e164("+306912345678").as_deref(), Ok("+306912345678"));
    }

    #[test]
    fn national_forms_and_garbage_are_refused() {
        assert!(matches!(normalize_e164("6912345678"), Err(PhoneError::Unparseable { .. })));
        assert!(matches!(normalize_e164(""), Err(PhoneError::Unparseable { .. })));
        assert!(matches!(normalize_e164("+30abc"), Err(PhoneError::Unparseable { .. })));
        assert!(normalize_e164("+3069").is_err());
        assert!(normalize_e164("+999123456789").is_err());
    }

    #[test]
    fn every_normalised_number_has_the_e164_form() {
        for input in ["+30 691 234 5678", "+44 (7911) 123-456", "+1 415 555 2671", "+306912345678"] {
            let number = normalize_e164(input).unwrap();
            assert!(is_e164_form(&number), "{number}");
        }
        for malformed in ["", "+", "+3", "306912345678", "+0306912345678", "+30 691", "+3069123456789012", "+30abc"] {
            assert!(!is_e164_form(malformed), "{malformed}");
        }
    }

    proptest::proptest! {
        /// Separators anywhere in a valid number change nothing, and a normalised number
        /// normalises to itself (import stores it; a later import of it must match).
        #[test]
        fn normalisation_ignores_separators_and_is_idempotent(
            subscriber in 0u32..10_000_000,
            separators in proptest::collection::vec(proptest::sample::select(vec!["", " ", "-", ".", "(", ")"]), 12),
        ) {
            let canonical = format!("+30691{subscriber:07}");
            let written: String = canonical
                .chars()
                .zip(separators.iter().chain(std::iter::repeat(&"")))
                .flat_map(|(digit, separator)| std::iter::once(digit).chain(separator.chars()))
                .collect();
            let normalised = normalize_e164(&written).unwrap();
            proptest::prop_assert_eq!(&normalised, &canonical);
            proptest::prop_assert_eq!(normalize_e164(&normalised).unwrap(), normalised.clone());
            proptest::prop_assert!(is_e164_form(&normalised));
        }
    }

    #[test]
    fn errors_say_what_form_is_expected() {
        let message = normalize_e164("6912345678").unwrap_err().to_string();
        assert!(message.contains("E.164"), "{message}");
    }
}
