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

/// Whether every character of `text` can be sent in GSM-7.
pub fn is_gsm7(text: &str) -> bool {
    let _ = text;
    todo!("domain helper")
}

/// The encoding, size and number of parts of `text`.
pub fn count_segments(text: &str) -> SegmentInfo {
    let _ = text;
    todo!("domain helper")
}
