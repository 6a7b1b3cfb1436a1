//! HMAC-SHA256 pseudonyms of NHS numbers.
//!
//! The message is the NHS number's ten digits as ASCII, without spaces or
//! hyphens; the key is the ICS key's bytes; the pseudonym is the 32-byte
//! MAC, written as 64 lower-case hexadecimal characters on the wire. An
//! unkeyed hash would not do: there are only about 10^9 valid NHS numbers,
//! so a plain SHA-256 can be reversed by trying them all.

use std::fmt;

use hmac::{Hmac, Mac};
use icsflow_core::{is_valid_nhs_number, Pseudonym};
use sha2::Sha256;

/// The ICS pseudonymisation key. Its bytes never appear in `Debug` output.
#[derive(Clone)]
pub struct PseudonymKey {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("PseudonymKey(redacted)")
    }
}

/// Why a key was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PseudonymKeyError {
    /// Fewer than [`PseudonymKey::MIN_BYTES`] bytes.
    TooShort { bytes: usize },
}

impl fmt::Display for PseudonymKeyError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PseudonymKeyError::TooShort { bytes } => write!(
                formatter,
                "the key has {bytes} bytes; an ICS key has at least {} (for example 64 random hexadecimal characters)",
                PseudonymKey::MIN_BYTES
            ),
        }
    }
}

impl std::error::Error for PseudonymKeyError {}

/// Why a value is not an NHS number. The value itself is never part of
/// the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NhsNumberError {
    /// Not ten digits (after removing spaces and hyphens).
    NotTenDigits,
    /// Ten digits, but the modulus 11 check digit is wrong.
    WrongCheckDigit,
}

impl fmt::Display for NhsNumberError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            NhsNumberError::NotTenDigits => "not an NHS number: it must have ten digits",
            NhsNumberError::WrongCheckDigit => {
                "not an NHS number: the check digit (modulus 11) is wrong"
            }
        })
    }
}

impl std::error::Error for NhsNumberError {}

impl PseudonymKey {
    /// An HMAC-SHA256 key shorter than its 32-byte output weakens it.
    pub const MIN_BYTES: usize = 32;

    pub fn new(key: &[u8]) -> Result<PseudonymKey, PseudonymKeyError> {
        if key.len() < PseudonymKey::MIN_BYTES {
            return Err(PseudonymKeyError::TooShort { bytes: key.len() });
        }
        // HMAC takes a key of any length; the length check above is ours.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .map_err(|_| PseudonymKeyError::TooShort { bytes: key.len() })?;
        Ok(PseudonymKey { mac })
    }

    /// The key as stored in a key file: its bytes, with one trailing
    /// newline (`\n` or `\r\n`) removed.
    pub fn from_file_contents(contents: &[u8]) -> Result<PseudonymKey, PseudonymKeyError> {
        let trimmed = contents
            .strip_suffix(b"\r\n")
            .or_else(|| contents.strip_suffix(b"\n"))
            .unwrap_or(contents);
        PseudonymKey::new(trimmed)
    }

    /// The pseudonym of an NHS number given as ten digits, optionally in the
    /// `943 476 5919` or `943-476-5919` form, with surrounding spaces.
    pub fn pseudonymise(&self, nhs_number: &str) -> Result<Pseudonym, NhsNumberError> {
        let mut digits = [0_u8; 10];
        let mut count = 0;
        for byte in nhs_number.trim().bytes() {
            match byte {
                b'0'..=b'9' if count < digits.len() => {
                    digits[count] = byte;
                    count += 1;
                }
                b' ' | b'-' => {}
                _ => return Err(NhsNumberError::NotTenDigits),
            }
        }
        if count != digits.len() {
            return Err(NhsNumberError::NotTenDigits);
        }
        if !is_valid_nhs_number(&digits) {
            return Err(NhsNumberError::WrongCheckDigit);
        }
        Ok(self.pseudonymise_bytes(&digits))
    }

    /// The keyed hash of any identifier (the simulator uses it for hospital
    /// spell references too).
    pub fn pseudonymise_bytes(&self, message: &[u8]) -> Pseudonym {
        let mut mac = self.mac.clone();
        mac.update(message);
        Pseudonym::from_bytes(mac.finalize().into_bytes().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PseudonymKey {
        PseudonymKey::new(b"icsflow test key, 32 bytes long!").expect("long enough")
    }

    /// Expected values computed independently with Python's `hmac` module:
    /// `hmac.new(key, b"9434765919", hashlib.sha256).hexdigest()`.
    #[test]
    fn pseudonyms_match_an_independent_hmac_sha256() {
        let pseudonym = key().pseudonymise("9434765919").expect("valid");
        assert_eq!(
            pseudonym.hex().as_str(),
            "600917ec2133070637c9f9f8c4fc63a4f25e98668ef180995d98175b449e262f"
        );
        for spelling in ["943 476 5919", "943-476-5919", " 9434765919\t"] {
            assert_eq!(key().pseudonymise(spelling), Ok(pseudonym), "{spelling}");
        }
    }

    #[test]
    fn invalid_numbers_are_refused_without_echoing_them() {
        assert_eq!(
            key().pseudonymise("9434765918"),
            Err(NhsNumberError::WrongCheckDigit)
        );
        for text in [
            "943476591",
            "94347659190",
            "94347a5919",
            "",
            "943 476 5919 1",
        ] {
            assert_eq!(
                key().pseudonymise(text),
                Err(NhsNumberError::NotTenDigits),
                "{text}"
            );
        }
        assert!(!NhsNumberError::WrongCheckDigit.to_string().contains("943"));
    }

    #[test]
    fn short_keys_are_refused_and_keys_are_never_printed() {
        assert_eq!(
            PseudonymKey::new(b"short").map(|_| ()),
            Err(PseudonymKeyError::TooShort { bytes: 5 })
        );
        let from_file =
            PseudonymKey::from_file_contents(b"icsflow test key, 32 bytes long!\n").expect("key");
        assert_eq!(
            from_file.pseudonymise("9434765919"),
            key().pseudonymise("9434765919")
        );
        assert_eq!(format!("{from_file:?}"), "PseudonymKey(redacted)");
    }
}
