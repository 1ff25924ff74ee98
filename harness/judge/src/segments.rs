//! The judge's own segment counter, written from 3GPP TS 23.038 and the providers'
//! published rules, so that a price the engine gets wrong is not also the price the judge
//! expects.
//!
//! A body goes as GSM-7 when every character is in the GSM 03.38 default alphabet or its
//! extension table (an extension character is an escape septet plus its own: two). One
//! part holds 160 septets; a longer body is split into parts of 153 (the rest of each
//! part carries the concatenation header), and a part never ends between an escape and
//! its character. Any other character sends the whole body as UCS-2: 70 UTF-16 code units
//! in one part, 67 per part beyond, a surrogate pair never split.

/// The GSM 03.38 default alphabet, row by row as the standard prints it (0x00–0x7F),
/// without the escape code 0x1B.
const DEFAULT_ALPHABET: [&str; 8] = [
    "@£$¥èéùìòÇ\nØø\rÅå",
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ",
    " !\"#¤%&'()*+,-./",
    "0123456789:;<=>?",
    "¡ABCDEFGHIJKLMNO",
    "PQRSTUVWXYZÄÖÑÜ§",
    "¿abcdefghijklmno",
    "pqrstuvwxyzäöñüà",
];

/// The extension table: form feed, `^ { } \ [ ~ ] |` and `€`.
const EXTENSION_TABLE: &str = "\u{c}^{}\\[~]|€";

/// How a body travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    /// The GSM 03.38 seven-bit alphabet.
    Gsm7,
    /// UTF-16 (UCS-2 on the wire).
    Ucs2,
}

/// Septets `character` takes in GSM-7, or `None` if the alphabet lacks it.
fn septets(character: char) -> Option<usize> {
    if DEFAULT_ALPHABET.iter().any(|row| row.contains(character)) {
        Some(1)
    } else if EXTENSION_TABLE.contains(character) {
        Some(2)
    } else {
        None
    }
}

/// How `body` is coded.
pub fn coding(body: &str) -> Coding {
    if body.chars().all(|character| septets(character).is_some()) {
        Coding::Gsm7
    } else {
        Coding::Ucs2
    }
}

/// The parts `body` is sent in (an empty body is one empty part).
pub fn count(body: &str) -> u32 {
    let (single, part, widths): (usize, usize, Vec<usize>) = match coding(body) {
        Coding::Gsm7 => (160, 153, body.chars().map(|c| septets(c).expect("a GSM-7 body")).collect()),
        Coding::Ucs2 => (70, 67, body.chars().map(char::len_utf16).collect()),
    };
    if widths.iter().sum::<usize>() <= single {
        return 1;
    }
    // Fill parts one character at a time: a character that does not fit whole starts
    // the next part.
    let mut parts = 1;
    let mut used = 0;
    for width in widths {
        if used + width > part {
            parts += 1;
            used = 0;
        }
        used += width;
    }
    parts
}

/// What `body` costs at `price_per_segment`.
pub fn cost(body: &str, price_per_segment: i64) -> i64 {
    i64::from(count(body)) * price_per_segment
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repeat(text: &str, times: usize) -> String {
        text.repeat(times)
    }

    /// The providers' published limits: Twilio's and Infobip's documentation give 160
    /// GSM-7 characters in one segment and 153 per segment beyond; 70 UCS-2 characters and
    /// 67 per segment beyond.
    #[test]
    fn the_published_limits() {
        assert_eq!(count(""), 1);
        assert_eq!(count(&repeat("a", 160)), 1);
        assert_eq!(count(&repeat("a", 161)), 2);
        assert_eq!(count(&repeat("a", 306)), 2);
        assert_eq!(count(&repeat("a", 307)), 3);
        assert_eq!(count(&repeat("ж", 70)), 1);
        assert_eq!(count(&repeat("ж", 71)), 2);
        assert_eq!(count(&repeat("ж", 134)), 2);
        assert_eq!(count(&repeat("ж", 135)), 3);
        // Twilio's maximum body of 1 600 characters is 11 GSM-7 segments.
        assert_eq!(count(&repeat("a", 1_600)), 11);
    }

    /// Twilio's "What the heck is a segment": one character outside GSM-7 (an emoji, a
    /// curly quote) sends the whole message as UCS-2.
    #[test]
    fn one_character_outside_the_alphabet_makes_the_whole_body_ucs2() {
        let plain = repeat("a", 100);
        assert_eq!(count(&plain), 1);
        assert_eq!(coding(&format!("{plain}’")), Coding::Ucs2);
        assert_eq!(count(&format!("{plain}’")), 2);
        assert_eq!(coding("Grüße Ελλάδα ÄÖÜ à"), Coding::Ucs2, "ß is GSM-7, but the Greek small letters are not");
        assert_eq!(coding("ΔΦΓΛΩΠΨΣΘΞ ÄÖÑÜ §¿ äöñüà £$¥ èéùìòÇ"), Coding::Gsm7);
    }

    #[test]
    fn extension_characters_take_two_septets() {
        assert_eq!(count(&repeat("€", 80)), 1, "160 septets");
        assert_eq!(count(&repeat("€", 81)), 2, "162 septets");
        assert_eq!(count(&repeat("{", 80)), 1);
    }

    #[test]
    fn no_part_ends_inside_an_escape_or_a_surrogate_pair() {
        // 152 + 2 + 152 = 306 septets, which would be two parts if the pair could split.
        let body = format!("{}{{{}", repeat("a", 152), repeat("a", 152));
        assert_eq!(count(&body), 3);
        // 35 emoji are 70 code units: one part; 36 are 72: two.
        assert_eq!(count(&repeat("😀", 35)), 1);
        assert_eq!(count(&repeat("😀", 36)), 2);
        // 66 units and a pair: the pair opens the second part.
        let body = format!("{}😀{}", repeat("ж", 66), repeat("ж", 3));
        assert_eq!(count(&body), 2);
    }

    #[test]
    fn cost_is_parts_times_price() {
        assert_eq!(cost(&repeat("a", 161), 55), 110);
        assert_eq!(cost("hi", 40), 40);
    }
}
