//! Validated identifiers: who the patient is (as a pseudonym), which event,
//! which organisation, which place.
//!
//! Each type is small and `Copy` so that the journey engine can hold
//! millions of them; each has exactly one way in, a validating `parse`.

use std::fmt;

use crate::rejection::Rejection;

/// A patient's ICS pseudonym: the 32 bytes of HMAC-SHA256(ICS key, NHS
/// number), written on the wire as 64 lower-case hexadecimal characters.
/// Also used for pseudonymised spell and episode references.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pseudonym([u8; 32]);

impl Pseudonym {
    pub const HEX_LENGTH: usize = 64;

    /// Parses the wire form. Upper-case hex is refused so that one
    /// pseudonym has exactly one spelling across partners.
    pub fn parse(field: &'static str, text: &str) -> Result<Pseudonym, Rejection> {
        let bytes = text.as_bytes();
        if bytes.len() != Pseudonym::HEX_LENGTH {
            return Err(Rejection::invalid_field(
                field,
                "a pseudonym is exactly 64 lower-case hexadecimal characters",
            ));
        }
        let mut value = [0_u8; 32];
        // Collect invalid characters with a bitwise OR instead of branching
        // per character: this runs twice for every record ingested.
        let mut invalid = 0_u8;
        for (index, pair) in bytes.chunks_exact(2).enumerate() {
            let (high, low) = (
                LOWER_HEX[usize::from(pair[0])],
                LOWER_HEX[usize::from(pair[1])],
            );
            invalid |= (high | low) & 0x10;
            value[index] = high << 4 | (low & 0x0f);
        }
        if invalid != 0 {
            return Err(Rejection::invalid_field(
                field,
                "a pseudonym is exactly 64 lower-case hexadecimal characters",
            ));
        }
        Ok(Pseudonym(value))
    }

    pub const fn from_bytes(bytes: [u8; 32]) -> Pseudonym {
        Pseudonym(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The wire form, without allocating (a message key per record).
    pub fn hex(&self) -> PseudonymHex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0_u8; 64];
        for (index, byte) in self.0.iter().enumerate() {
            text[2 * index] = DIGITS[usize::from(byte >> 4)];
            text[2 * index + 1] = DIGITS[usize::from(byte & 0x0f)];
        }
        PseudonymHex(text)
    }
}

/// A pseudonym's 64 lower-case hexadecimal characters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PseudonymHex([u8; 64]);

impl PseudonymHex {
    /// The 64 ASCII hexadecimal digits.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII hexadecimal digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for PseudonymHex {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "PseudonymHex({}..)", &self.as_str()[..4])
    }
}

impl fmt::Display for Pseudonym {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.hex().as_str())
    }
}

/// Debug output is shortened so that a stray `{:?}` in a log line does not
/// carry a whole pseudonym.
impl fmt::Debug for Pseudonym {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Pseudonym({:02x}{:02x}..)", self.0[0], self.0[1])
    }
}

/// An event's UUID, as chosen by the partner that published it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(u128);

impl EventId {
    /// Parses the canonical 8-4-4-4-12 form, in either case.
    pub fn parse(field: &'static str, text: &str) -> Result<EventId, Rejection> {
        const INVALID: &str = "an event id is a UUID in the 8-4-4-4-12 hexadecimal form";
        let bytes = text.as_bytes();
        if bytes.len() != 36 || [8, 13, 18, 23].iter().any(|&dash| bytes[dash] != b'-') {
            return Err(Rejection::invalid_field(field, INVALID));
        }
        // As for pseudonyms: a table lookup per character and invalid
        // characters collected with a bitwise OR, not a branch each.
        let mut value: u128 = 0;
        let mut invalid = 0_u8;
        for group in [
            &bytes[0..8],
            &bytes[9..13],
            &bytes[14..18],
            &bytes[19..23],
            &bytes[24..36],
        ] {
            for &byte in group {
                let digit = HEX[usize::from(byte)];
                invalid |= digit;
                value = value << 4 | u128::from(digit & 0x0f);
            }
        }
        if invalid & 0x10 != 0 {
            return Err(Rejection::invalid_field(field, INVALID));
        }
        Ok(EventId(value))
    }

    pub const fn from_u128(value: u128) -> EventId {
        EventId(value)
    }

    pub const fn as_u128(self) -> u128 {
        self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = format!("{:032x}", self.0);
        write!(
            formatter,
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "EventId({self})")
    }
}

/// An ODS organisation code: a trust (`RVW`), a site (`RVW01`), a practice
/// (`M83670`), a pharmacy or a local authority. Three to six upper-case
/// letters and digits; a bounded set, so usable as a metric label.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OdsCode {
    bytes: [u8; 6],
    length: u8,
}

impl OdsCode {
    pub fn parse(field: &'static str, text: &str) -> Result<OdsCode, Rejection> {
        let source = text.as_bytes();
        let well_formed = (3..=6).contains(&source.len())
            && source
                .iter()
                .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit());
        if !well_formed {
            return Err(Rejection::invalid_field(
                field,
                "an ODS code is 3 to 6 upper-case letters and digits",
            ));
        }
        let mut bytes = [0_u8; 6];
        bytes[..source.len()].copy_from_slice(source);
        Ok(OdsCode {
            bytes,
            length: source.len() as u8,
        })
    }

    /// The code's first `length` characters (all of it when shorter): a
    /// trust's code from one of its sites' (`RVW01` to `RVW`). No check is
    /// needed: a prefix of a valid code is letters and digits too.
    pub const fn truncated(self, length: u8) -> OdsCode {
        if self.length <= length {
            return self;
        }
        let mut bytes = self.bytes;
        let mut index = length as usize;
        while index < bytes.len() {
            bytes[index] = 0;
            index += 1;
        }
        OdsCode { bytes, length }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters and digits are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.length)]).unwrap_or_default()
    }
}

impl fmt::Display for OdsCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl fmt::Debug for OdsCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "OdsCode({})", self.as_str())
    }
}

/// A place: the ONS GSS code of an upper-tier or unitary local authority in
/// England (E06 unitary, E08 metropolitan district, E09 London borough,
/// E10 county), for example `E06000047`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlaceCode([u8; 9]);

impl PlaceCode {
    /// Every place outside the ICS's reference data, as one value: patients
    /// resident elsewhere still count, under `out_of_area`, and no record
    /// can add a place of its own. [`PlaceCode::parse`] never gives it.
    pub const OUT_OF_AREA: PlaceCode = PlaceCode([0; 9]);

    pub fn parse(field: &'static str, text: &str) -> Result<PlaceCode, Rejection> {
        let source = text.as_bytes();
        let well_formed = source.len() == 9
            && matches!(&source[..3], b"E06" | b"E08" | b"E09" | b"E10")
            && source[3..].iter().all(u8::is_ascii_digit);
        if !well_formed {
            return Err(Rejection::invalid_field(
                field,
                "a place is a GSS code: E06, E08, E09 or E10 followed by six digits",
            ));
        }
        let mut bytes = [0_u8; 9];
        bytes.copy_from_slice(source);
        Ok(PlaceCode(bytes))
    }

    pub fn as_str(&self) -> &str {
        if *self == PlaceCode::OUT_OF_AREA {
            return "out_of_area";
        }
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The nine bytes the journey record carries (zeros for
    /// [`PlaceCode::OUT_OF_AREA`]).
    pub const fn as_bytes(&self) -> &[u8; 9] {
        &self.0
    }

    /// The place of nine bytes a journey record carries.
    pub fn from_record_bytes(bytes: [u8; 9]) -> Option<PlaceCode> {
        if bytes == [0; 9] {
            return Some(PlaceCode::OUT_OF_AREA);
        }
        PlaceCode::parse("place", std::str::from_utf8(&bytes).ok()?).ok()
    }
}

impl fmt::Display for PlaceCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl fmt::Debug for PlaceCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "PlaceCode({})", self.as_str())
    }
}

/// Value of each lower-case hexadecimal digit; 0x10 marks every other byte.
const LOWER_HEX: [u8; 256] = {
    let mut table = [0x10_u8; 256];
    let mut digit = 0;
    while digit < 10 {
        table[b'0' as usize + digit] = digit as u8;
        digit += 1;
    }
    let mut letter = 0;
    while letter < 6 {
        table[b'a' as usize + letter] = 10 + letter as u8;
        letter += 1;
    }
    table
};

/// Like [`LOWER_HEX`], upper-case digits accepted too.
const HEX: [u8; 256] = {
    let mut table = LOWER_HEX;
    let mut letter = 0;
    while letter < 6 {
        table[b'A' as usize + letter] = 10 + letter as u8;
        letter += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RejectReason;

    #[test]
    fn pseudonym_accepts_lower_hex_only() {
        let text = "0123456789abcdef".repeat(4);
        let pseudonym = Pseudonym::parse("patient_pseudonym", &text).expect("valid pseudonym");
        assert_eq!(pseudonym.to_string(), text);
        assert_eq!(format!("{pseudonym:?}"), "Pseudonym(0123..)");
        for bad in [
            text.to_uppercase(),
            text[..63].to_owned(),
            format!("{text}0"),
            "g".repeat(64),
        ] {
            let rejection =
                Pseudonym::parse("patient_pseudonym", &bad).expect_err("invalid pseudonym");
            assert_eq!(rejection.reason, RejectReason::InvalidField);
            assert_eq!(rejection.field, Some("patient_pseudonym"));
        }
    }

    #[test]
    fn event_id_round_trips_in_canonical_form() {
        let text = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
        let event_id = EventId::parse("event_id", text).expect("valid uuid");
        assert_eq!(event_id.to_string(), text);
        assert_eq!(
            EventId::parse("event_id", &text.to_uppercase()),
            Ok(event_id)
        );
        for bad in [
            "",
            "1b4e28ba2fa111d2883f0016d3cca427",
            "1b4e28ba-2fa1-11d2-883f-0016d3cca42g",
            "1b4e28ba-2fa1-11d2-883f_0016d3cca427",
            "1b4e28ba-2fa1-11d2-883f-0016d3cca4\u{e9}",
        ] {
            assert!(EventId::parse("event_id", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ods_codes() {
        for good in ["RVW", "RVW01", "M83670", "FA123", "702"] {
            assert_eq!(
                OdsCode::parse("source_organisation", good)
                    .expect(good)
                    .as_str(),
                good
            );
        }
        for bad in ["RV", "rvw", "RVW0123", "RV W", ""] {
            assert!(OdsCode::parse("source_organisation", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn place_codes() {
        for good in ["E06000047", "E08000003", "E09000001", "E10000007"] {
            assert_eq!(PlaceCode::parse("place", good).expect(good).as_str(), good);
        }
        for bad in [
            "E07000001",
            "W06000001",
            "E0600004",
            "E060000477",
            "E0600004X",
            "e06000047",
        ] {
            assert!(PlaceCode::parse("place", bad).is_err(), "{bad}");
        }
    }

    // The Avro edge skips the NHS number guard for these fields once they
    // have validated; that is sound only if no valid value can hold one.
    proptest::proptest! {
        #[test]
        fn valid_identifiers_never_hold_an_nhs_number(
            bytes in proptest::array::uniform32(proptest::prelude::any::<u8>()),
            uuid in proptest::prelude::any::<u128>(),
            ods in "[A-Z0-9]{3,6}",
            place in "E(06|08|09|10)[0-9]{6}",
        ) {
            let pseudonym = Pseudonym::from_bytes(bytes).to_string();
            proptest::prop_assert!(Pseudonym::parse("p", &pseudonym).is_ok());
            proptest::prop_assert!(crate::guard_identifiable_data([("p", pseudonym.as_str())]).is_ok());
            let event_id = EventId::from_u128(uuid).to_string();
            proptest::prop_assert!(crate::guard_identifiable_data([("e", event_id.as_str())]).is_ok());
            proptest::prop_assert!(OdsCode::parse("o", &ods).is_ok());
            proptest::prop_assert!(!crate::contains_nhs_number(&ods));
            proptest::prop_assert!(!crate::contains_nhs_number(&place));
        }
    }

    #[test]
    fn an_all_digit_pseudonym_is_still_one_long_token() {
        let digits = "9434765919".repeat(6) + "9434";
        assert!(Pseudonym::parse("p", &digits).is_ok());
        assert!(crate::guard_identifiable_data([("p", digits.as_str())]).is_ok());
    }
}
