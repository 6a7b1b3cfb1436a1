//! Recognising NHS numbers so that they can be kept out of everything
//! icsflow writes.
//!
//! The guard is deliberately token based: a 64-character hexadecimal
//! pseudonym often contains a run of ten digits, and one in eleven of those
//! would pass the check digit by chance, so only whole tokens count.

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

/// True when `text` holds a valid NHS number as a token of its own: ten
/// digits not touching other letters or digits, or the usual spaced or
/// hyphenated forms `943 476 5919` and `943-476-5919`.
pub fn contains_nhs_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    // One pass over the tokens (maximal runs of ASCII letters and digits);
    // only all-digit tokens of length 10 (plain form) or 3 (start of the
    // spaced form) need a closer look. This runs on every string of every
    // record, so it avoids a second pass.
    let mut position = 0;
    while position < bytes.len() {
        if !bytes[position].is_ascii_alphanumeric() {
            position += 1;
            continue;
        }
        let start = position;
        let mut all_digits = true;
        while position < bytes.len() && bytes[position].is_ascii_alphanumeric() {
            all_digits &= bytes[position].is_ascii_digit();
            position += 1;
        }
        if all_digits {
            let token = &bytes[start..position];
            match token.len() {
                10 if is_valid_nhs_number(token) => return true,
                3 if spaced_number_at(bytes, start) => return true,
                _ => {}
            }
        }
    }
    false
}

/// Whether a `3 3 4` digit group form starts at `start`, separated by one
/// space or hyphen and not running on into further letters or digits.
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
    if bytes
        .get(start + LENGTH)
        .is_some_and(u8::is_ascii_alphanumeric)
    {
        return false;
    }
    let mut digits = [0_u8; 10];
    let groups = [&candidate[0..3], &candidate[4..7], &candidate[8..12]];
    let mut index = 0;
    for group in groups {
        for &byte in group {
            digits[index] = byte;
            index += 1;
        }
    }
    is_valid_nhs_number(&digits)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(!contains_nhs_number("x9434765919"));
        assert!(!contains_nhs_number("94347659190"));
        assert!(!contains_nhs_number("943 476 59190"));
        assert!(!contains_nhs_number("RVW01"));
        assert!(!contains_nhs_number(""));
    }

    #[test]
    fn a_pseudonym_with_a_valid_digit_run_inside_is_not_a_number() {
        let pseudonym = format!("ab{VALID}cdef{}", "0".repeat(48));
        assert_eq!(pseudonym.len(), 64);
        assert!(!contains_nhs_number(&pseudonym));
    }
}
