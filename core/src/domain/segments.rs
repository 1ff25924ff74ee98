//! SMS segment counting: GSM-7 (160 characters, 153 per part of a multipart message)
//! and UCS-2 (70, or 67 per part).
//!
//! A body is GSM-7 when every character is in the GSM 03.38 basic set or its extension
//! table; extension characters (`^ { } \ [ ~ ] | €` and form feed) take two septets.
//! Any other character forces UCS-2 for the whole body, where a character outside the
//! Basic Multilingual Plane takes two code units. A part boundary never splits an
//! escape pair or a surrogate pair, which is what real handsets and providers do.

use super::records::Encoding;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// How a body is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// GSM-7 or UCS-2.
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2) in the body.
    pub units: u32,
    /// Parts the body is sent in; at least 1 (an empty body is one empty part).
    pub segments: u32,
}

/// The GSM 03.38 basic character set (the escape code itself excluded).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The GSM 03.38 extension table: each costs an escape septet plus its own.
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// Septets each ASCII character takes in GSM-7 (0: none), read off the two tables above
/// once, so that the common case is one lookup instead of a scan of the tables.
static ASCII_SEPTETS: LazyLock<[u8; 128]> = LazyLock::new(|| {
    let mut septets = [0; 128];
    for (table, cost) in [(GSM7_BASIC, 1), (GSM7_EXTENSION, 2)] {
        for character in table.chars().filter(char::is_ascii) {
            septets[character as usize] = cost;
        }
    }
    septets
});

/// Septets one character takes in GSM-7, or `None` if it has no GSM-7 form.
pub fn gsm7_septets(character: char) -> Option<u32> {
    if character.is_ascii() {
        return match ASCII_SEPTETS[character as usize] {
            0 => None,
            cost => Some(u32::from(cost)),
        };
    }
    if GSM7_BASIC.contains(character) {
        Some(1)
    } else if GSM7_EXTENSION.contains(character) {
        Some(2)
    } else {
        None
    }
}

/// The most parts a message may have: the providers cap a concatenated message at about
/// ten (Twilio: 1 600 characters), so a longer template or rendered body is refused where
/// it enters rather than failing at the provider — and a request cannot make the engine
/// render megabytes per contact.
pub const MAX_SEGMENTS: u32 = 10;

/// Whether every character of `text` can be sent in GSM-7.
pub fn is_gsm7(text: &str) -> bool {
    text.chars().all(|character| gsm7_septets(character).is_some())
}

/// Characters per part: (single-part limit, per-part limit of a multipart message).
const fn limits(encoding: Encoding) -> (u32, u32) {
    match encoding {
        Encoding::Gsm7 => (160, 153),
        Encoding::Ucs2 => (70, 67),
    }
}

/// The encoding, size and number of parts of `text`.
pub fn count_segments(text: &str) -> SegmentInfo {
    let (encoding, cost): (Encoding, fn(char) -> u32) = if is_gsm7(text) {
        (Encoding::Gsm7, |character| gsm7_septets(character).unwrap_or(1))
    } else {
        (Encoding::Ucs2, |character| character.len_utf16() as u32)
    };
    let units: u32 = text.chars().map(cost).sum();
    let (single, per_part) = limits(encoding);
    if units <= single {
        return SegmentInfo { encoding, units, segments: 1 };
    }
    // Fill parts greedily; a character (an escape pair, a surrogate pair) that does not
    // fit whole in the current part starts the next one.
    let mut segments = 1;
    let mut used = 0;
    for cost in text.chars().map(cost) {
        if used + cost > per_part {
            segments += 1;
            used = 0;
        }
        used += cost;
    }
    SegmentInfo { encoding, units, segments }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn segments(text: &str) -> (Encoding, u32, u32) {
        let info = count_segments(text);
        (info.encoding, info.units, info.segments)
    }

    #[test]
    fn single_part_limits() {
        assert_eq!(segments(""), (Encoding::Gsm7, 0, 1));
        assert_eq!(segments(&"a".repeat(160)), (Encoding::Gsm7, 160, 1));
        assert_eq!(segments(&"a".repeat(161)), (Encoding::Gsm7, 161, 2));
        assert_eq!(segments(&"ж".repeat(70)), (Encoding::Ucs2, 70, 1));
        assert_eq!(segments(&"ж".repeat(71)), (Encoding::Ucs2, 71, 2));
    }

    #[test]
    fn multipart_limits() {
        assert_eq!(segments(&"a".repeat(306)).2, 2);
        assert_eq!(segments(&"a".repeat(307)).2, 3);
        assert_eq!(segments(&"ж".repeat(134)).2, 2);
        assert_eq!(segments(&"ж".repeat(135)).2, 3);
    }

    #[test]
    fn extension_characters_count_double_and_are_not_split() {
        assert_eq!(segments("€"), (Encoding::Gsm7, 2, 1));
        assert_eq!(segments(&"{".repeat(80)), (Encoding::Gsm7, 160, 1));
        assert_eq!(segments(&"{".repeat(81)).2, 2);
        // 152 septets then an escape pair: the pair does not fit in part one's last septet.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(10));
        assert_eq!(segments(&text), (Encoding::Gsm7, 164, 2));
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(segments(&text), (Encoding::Gsm7, 306, 3));
    }

    #[test]
    fn the_ascii_lookup_agrees_with_the_tables() {
        for character in (0..128u8).map(char::from) {
            let expected = if GSM7_BASIC.contains(character) {
                Some(1)
            } else if GSM7_EXTENSION.contains(character) {
                Some(2)
            } else {
                None
            };
            assert_eq!(gsm7_septets(character), expected, "{character:?}");
        }
    }

    #[test]
    fn which_characters_are_gsm7() {
        assert!(is_gsm7("ΔΦΓΛΩΠΨΣΘΞ é à Ñ ü @£$¥"));
        assert!(!is_gsm7("α"), "lowercase Greek is not in the GSM alphabet");
        assert!(!is_gsm7("ê"));
        assert!(!is_gsm7("\u{1b}"), "the escape code alone is not a character");
        assert_eq!(segments("Γειά").0, Encoding::Ucs2);
    }

    #[test]
    fn characters_outside_the_bmp_take_two_units_and_are_not_split() {
        assert_eq!(segments("😀"), (Encoding::Ucs2, 2, 1));
        assert_eq!(segments(&"😀".repeat(35)), (Encoding::Ucs2, 70, 1));
        let text = format!("{}😀", "ж".repeat(66));
        assert_eq!(segments(&format!("{text}{}", "ж".repeat(3))), (Encoding::Ucs2, 71, 2));
        let text = format!("{}😀{}", "ж".repeat(66), "ж".repeat(66));
        assert_eq!(segments(&text), (Encoding::Ucs2, 134, 3), "the pair moves to part two, which then overflows");
    }

    /// A reference written the other way round: split the text into parts explicitly and count them.
    fn reference(text: &str) -> u32 {
        let gsm = text.chars().all(|c| GSM7_BASIC.contains(c) || GSM7_EXTENSION.contains(c));
        let cost = |c: char| {
            if gsm {
                if GSM7_EXTENSION.contains(c) {
                    2
                } else {
                    1
                }
            } else {
                c.len_utf16() as u32
            }
        };
        let (single, part) = if gsm { (160, 153) } else { (70, 67) };
        let total: u32 = text.chars().map(cost).sum();
        if total <= single {
            return 1;
        }
        let mut parts: Vec<u32> = vec![0];
        for c in text.chars() {
            if parts.last().unwrap() + cost(c) > part {
                parts.push(0);
            }
            *parts.last_mut().unwrap() += cost(c);
        }
        parts.len() as u32
    }

    fn text() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            4 => proptest::sample::select(GSM7_BASIC.chars().collect::<Vec<_>>()),
            1 => proptest::sample::select(GSM7_EXTENSION.chars().collect::<Vec<_>>()),
            1 => proptest::sample::select(vec!['ж', 'α', 'ê', '中', '😀', '🎉']),
        ];
        proptest::collection::vec(pieces, 0..400).prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #[test]
        fn matches_the_reference(text in text()) {
            prop_assert_eq!(count_segments(&text).segments, reference(&text));
        }

        #[test]
        fn appending_never_reduces_the_count(text in text(), extra in text()) {
            let longer = format!("{text}{extra}");
            prop_assert!(count_segments(&longer).segments >= count_segments(&text).segments);
        }
    }
}
