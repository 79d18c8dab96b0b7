//! `ShortStr`: an AMQP short string, UTF-8 and at most 255 bytes, sharing the frame's buffer.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use bytes::Bytes;
use bytestring::ByteString;

use crate::error::{DecodeError, EncodeError};

/// An AMQP short string: UTF-8, at most 255 bytes.
///
/// Decoded short strings are slices of the frame they came in (no copy), which is why
/// this is not a `String`. Cloning is a reference-count increment.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShortStr(ByteString);

impl ShortStr {
    /// The longest short string, in bytes.
    pub const MAX_LEN: usize = 255;

    /// A short string from any string, or an error when it is longer than 255 bytes.
    pub fn new(s: impl Into<String>) -> Result<Self, EncodeError> {
        let s = s.into();
        if s.len() > Self::MAX_LEN {
            return Err(EncodeError::ShortStringTooLong(s.len()));
        }
        Ok(ShortStr(ByteString::from(s)))
    }

    /// A short string from a static string, without copying; cut to 255 bytes if longer.
    pub fn from_static(s: &'static str) -> Self {
        ShortStr(ByteString::from_static(cut(s)))
    }

    /// A short string sharing `bytes` (no copy), checking UTF-8 and the length.
    pub fn from_bytes(bytes: Bytes) -> Result<Self, DecodeError> {
        if bytes.len() > Self::MAX_LEN {
            return Err(DecodeError::ShortStringTooLong(bytes.len()));
        }
        ByteString::try_from(bytes)
            .map(ShortStr)
            .map_err(|_| DecodeError::InvalidUtf8)
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The underlying bytes, shared.
    pub fn as_bytes(&self) -> &Bytes {
        self.0.as_bytes()
    }
}

fn cut(s: &str) -> &str {
    if s.len() <= ShortStr::MAX_LEN {
        return s;
    }
    let mut end = ShortStr::MAX_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Cuts a longer string to 255 bytes on a character boundary. Use [`ShortStr::new`]
/// where a cut would change meaning (names); this suits texts.
impl From<&str> for ShortStr {
    fn from(s: &str) -> Self {
        ShortStr(ByteString::from(cut(s)))
    }
}

/// Cuts a longer string to 255 bytes on a character boundary, as `From<&str>`.
impl From<String> for ShortStr {
    fn from(mut s: String) -> Self {
        let len = cut(&s).len();
        s.truncate(len);
        ShortStr(ByteString::from(s))
    }
}

impl Deref for ShortStr {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ShortStr {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ShortStr {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ShortStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ShortStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_refuses_more_than_255_bytes() {
        assert!(ShortStr::new("a".repeat(255)).is_ok());
        assert_eq!(
            ShortStr::new("a".repeat(256)),
            Err(EncodeError::ShortStringTooLong(256))
        );
    }

    #[test]
    fn from_cuts_on_a_char_boundary() {
        let s = ShortStr::from("ü".repeat(200));
        assert_eq!(s.len(), 254);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        assert_eq!(
            ShortStr::from_bytes(Bytes::from_static(&[0xff, 0xfe])),
            Err(DecodeError::InvalidUtf8)
        );
    }
}
