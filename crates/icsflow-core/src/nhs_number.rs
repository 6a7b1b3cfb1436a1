//! Recognising NHS numbers so that they can be kept out of everything
//! icsflow writes.
//!
//! Two searches: [`contains_nhs_number`] over the strings of a record that
//! could be read (free text, and every string of a rejected record but the
//! ones that validated as identifiers), and [`may_hold_nhs_number`] over raw
//! bytes that could not be read, before any of them are copied anywhere.

/// True when `digits` is ten ASCII digits whose check digit is right
/// (modulus 11, weights 10 down to 2).
pub fn is_valid_nhs_number(digits: &[u8]) -> bool {
    if digits.len() != 10 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let weighted_sum: u32 = digits[..9]
        .iter()
        .zip((2..=10).rev())
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    let check = match 11 - weighted_sum % 11 {
        11 => 0,
        10 => return false,
        check => check,
    };
    u32::from(digits[9] - b'0') == check
}

/// True when `text` holds a valid NHS number: a run of exactly ten digits
/// (whatever letters touch it: `NHS9434765919`, `9434765919X`), or the
/// usual spaced or hyphenated forms `943 476 5919` and `943-476-5919`.
///
/// Runs are of digits, not of letters and digits, because people glue
/// prefixes and suffixes to numbers; a longer run of digits (a timestamp)
/// is not a number. Validated identifiers are not passed here: a
/// 64-character hexadecimal pseudonym holds a run of ten digits that passes
/// the check by chance about once in 170, so callers skip fields that
/// validated as a pseudonym or UUID (see `guard_identifiable_data`).
pub fn contains_nhs_number(text: &str) -> bool {
    find_numbers(text.as_bytes(), RunRule::ExactlyTen)
}

/// True when raw bytes (a record in any framing, parsed or not) may hold a
/// valid NHS number: any ten consecutive digits of a run of ten to twelve
/// (in Avro binary a string's length byte or the next field's can be an
/// ASCII digit and lengthen the run), or a spaced form. Stricter than
/// [`contains_nhs_number`], for deciding whether bytes may be copied at all.
pub fn may_hold_nhs_number(bytes: &[u8]) -> bool {
    find_numbers(bytes, RunRule::AnyWindowUpToTwelve)
}

/// True when `text`, read as a person reads it, may show a valid NHS
/// number in any spelling: every Unicode decimal digit reads as its ASCII
/// digit (full-width `９`, Arabic-Indic, mathematical bold…), every
/// character that is neither a letter nor a digit is passed over (spaces of
/// any kind, dots, dashes of any kind, slashes, underscores, zero-width and
/// other invisible characters), and any ten consecutive digits of a run
/// (letters end a run) that pass the check count, however long the run.
///
/// Far broader than [`contains_nhs_number`], and so wrong more often about
/// text that holds many digits (a date and time is a run of twelve): for
/// deciding whether text a person chose to copy (`icsflow pseudonymise
/// --keep`) may go out, and for tests that what reached a topic shows no
/// number. Nothing icsflow carries past ingest depends on it: only checked
/// codes and identifiers travel.
pub fn may_show_nhs_number(text: &str) -> bool {
    let mut run: Vec<u8> = Vec::new();
    let holds = |run: &[u8]| run.len() >= 10 && run.windows(10).any(is_valid_nhs_number);
    for character in text.chars() {
        if let Some(digit) = decimal_digit_value(character) {
            run.push(b'0' + digit);
        } else if character.is_alphabetic() {
            if holds(&run) {
                return true;
            }
            run.clear();
        }
    }
    holds(&run)
}

/// The value of a Unicode decimal digit (general category Nd): every block
/// of them is ten consecutive code points from its zero.
fn decimal_digit_value(character: char) -> Option<u8> {
    const ZEROS: &[u32] = &[
        0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66,
        0x0CE6, 0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946,
        0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0,
        0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0,
        0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50,
        0x11DA0, 0x16A60, 0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140,
        0x1E2F0, 0x1E950, 0x1FBF0,
    ];
    let code = u32::from(character);
    ZEROS
        .iter()
        .find(|zero| (**zero..**zero + 10).contains(&code))
        .map(|zero| (code - zero) as u8)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RunRule {
    ExactlyTen,
    AnyWindowUpToTwelve,
}

fn find_numbers(bytes: &[u8], rule: RunRule) -> bool {
    // One pass over the maximal runs of ASCII digits. This runs on every
    // free-text string of every record, so it avoids a second pass.
    let mut position = 0;
    while position < bytes.len() {
        if !bytes[position].is_ascii_digit() {
            position += 1;
            continue;
        }
        let start = position;
        while position < bytes.len() && bytes[position].is_ascii_digit() {
            position += 1;
        }
        let run = &bytes[start..position];
        let found = match (rule, run.len()) {
            (_, 10) => is_valid_nhs_number(run),
            (RunRule::AnyWindowUpToTwelve, 11..=12) => run.windows(10).any(is_valid_nhs_number),
            (_, 3) => spaced_number_at(bytes, start),
            (RunRule::AnyWindowUpToTwelve, 4) => spaced_number_at(bytes, start + 1),
            _ => false,
        };
        if found {
            return true;
        }
    }
    false
}

/// Whether a `3 3 4` digit group form starts at `start`, separated by one
/// space or hyphen and not running on into further digits.
fn spaced_number_at(bytes: &[u8], start: usize) -> bool {
    const LENGTH: usize = 12;
    if bytes.len() < start + LENGTH {
        return false;
    }
    let candidate = &bytes[start..start + LENGTH];
    let separator = candidate[3];
    if !(separator == b' ' || separator == b'-') || candidate[7] != separator {
        return false;
    }
    if bytes.get(start + LENGTH).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let mut digits = [0_u8; 10];
    let groups = [&candidate[0..3], &candidate[4..7], &candidate[8..12]];
    let mut index = 0;
    for group in groups {
        for &byte in group {
            if !byte.is_ascii_digit() {
                return false;
            }
            digits[index] = byte;
            index += 1;
        }
    }
    is_valid_nhs_number(&digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_spelling_a_reader_would_read_as_the_number_may_show_it() {
        let full_width: String = VALID
            .chars()
            .map(|digit| char::from_u32(0xFF10 + digit.to_digit(10).unwrap_or(0)).unwrap_or('0'))
            .collect();
        let zero_width: String = VALID
            .chars()
            .flat_map(|digit| [digit, '\u{200b}'])
            .collect();
        for spelling in [
            "9434765919",
            "943.476.5919",
            "943/476/5919",
            "943_476_5919",
            "943-4765919",
            "9434-765-919",
            "943--476  5919",
            "943\u{a0}476\u{a0}5919",
            "943\u{2013}476\u{2013}5919",
            "NHS.943.476.5919",
            "NHS9434765919",
            "09434765919",
            "9434765919000",
            full_width.as_str(),
            zero_width.as_str(),
        ] {
            assert!(may_show_nhs_number(spelling), "{spelling}");
        }
        for text in [
            "9434765918",
            "943a476b5919",
            "2026-12-07",
            "E06000047",
            "RXP01",
            "",
        ] {
            assert!(!may_show_nhs_number(text), "{text}");
        }
    }

    // 943 476 5919 is the NHS's own published example of a valid number.
    const VALID: &str = "9434765919";

    #[test]
    fn check_digit_rule() {
        assert!(is_valid_nhs_number(VALID.as_bytes()));
        assert!(!is_valid_nhs_number(b"9434765918"));
        assert!(!is_valid_nhs_number(b"943476591"));
        assert!(!is_valid_nhs_number(b"94347659190"));
        assert!(!is_valid_nhs_number(b"94347659a9"));
        // Check digit 0: the weighted sum is a multiple of 11.
        assert!(is_valid_nhs_number(b"4000000020"));
        assert!(!is_valid_nhs_number(b"4000000021"));
        // Remainder 1 gives check value 10, which no number may have.
        for last in b'0'..=b'9' {
            assert!(!is_valid_nhs_number(&[
                b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'8', b'9', last
            ]));
        }
    }

    #[test]
    fn finds_numbers_as_whole_tokens_only() {
        assert!(contains_nhs_number(VALID));
        assert!(contains_nhs_number("patient 9434765919 seen"));
        assert!(contains_nhs_number("nhs:9434765919"));
        assert!(contains_nhs_number("943 476 5919"));
        assert!(contains_nhs_number("ref 943-476-5919."));
        assert!(!contains_nhs_number("943 476-5919"));
        // Letters glued to the number do not hide it.
        assert!(contains_nhs_number("NHS9434765919"));
        assert!(contains_nhs_number("ID9434765919"));
        assert!(contains_nhs_number("9434765919X"));
        assert!(contains_nhs_number("x9434765919"));
        assert!(contains_nhs_number("nhs.9434765919"));
        assert!(contains_nhs_number("NHS943 476 5919"));
        assert!(contains_nhs_number("(943-476-5919)"));
        assert!(!contains_nhs_number("94347659190"));
        assert!(!contains_nhs_number("943 476 59190"));
        assert!(!contains_nhs_number("RVW01"));
        assert!(!contains_nhs_number(""));
    }

    #[test]
    fn raw_bytes_are_searched_through_neighbouring_digits() {
        assert!(may_hold_nhs_number(b"NHS9434765919"));
        // An Avro length byte of 24 is the ASCII digit 0.
        assert!(may_hold_nhs_number(b"\x0209434765919\x02"));
        assert!(may_hold_nhs_number(b"9434765919\x30\x31"));
        assert!(may_hold_nhs_number(b"\x00943-476-5919\x00"));
        assert!(!contains_nhs_number("09434765919"));
        assert!(!may_hold_nhs_number(b"1733000000000"));
        assert!(!may_hold_nhs_number(b"RVW01 E06000047"));
    }
}
