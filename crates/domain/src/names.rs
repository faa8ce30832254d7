//! What a user-given name or label may contain: the one rule for every name the console, the
//! CLI and the API show back (projects, databases, connections, service tokens, workspaces,
//! OAuth apps) and for the other short texts shown next to them (`logicalId`s, app
//! descriptions, e-mail addresses).
//!
//! Names are shown to other people: in the console, on the OAuth consent page, in CLI tables.
//! A name with a right-to-left override (U+202E) can make `gpj.exe` read as `exe.jpg`, a
//! zero-width space can make two different names look the same, and a control character
//! (BEL, ESC …) is interpreted by the terminal that prints a CLI table. So names refuse:
//! * control characters (Unicode category Cc: U+0000–U+001F, U+007F–U+009F);
//! * bidirectional formatting characters (U+061C, U+200E, U+200F, U+202A–U+202E,
//!   U+2066–U+2069) and the line/paragraph separators U+2028, U+2029;
//! * invisible characters: zero-width space/joiners (U+200B–U+200D), word joiner and invisible
//!   operators (U+2060–U+2064, U+206A–U+206F), U+FEFF, the soft hyphen U+00AD, the combining
//!   grapheme joiner U+034F, Hangul fillers (U+115F, U+1160, U+3164, U+FFA0), Khmer inherent
//!   vowels (U+17B4, U+17B5), Mongolian selectors (U+180B–U+180F), interlinear annotation
//!   marks (U+FFF9–U+FFFB), musical format marks (U+1D173–U+1D17A) and the tag characters
//!   (U+E0000–U+E007F, invisible text).
//!
//! A refusal is a `400 bad_request` naming the field and the offending code point (as `U+XXXX`,
//! never the character itself, which would reproduce the trick in the message).

use crate::{DomainError, Result};

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 255;

/// Whether `c` is a control, bidirectional-formatting or invisible character (see the module
/// documentation for the list).
pub fn is_hidden_or_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// The characters [`is_hidden_or_control`] refuses that are in the Basic Multilingual Plane,
/// as the body of a regular-expression character class (for the OpenAPI `pattern` of names;
/// the astral ones, U+1D173–U+1D17A and U+E0000–U+E007F, cannot be written in a class of a
/// pattern without the `u` flag and are refused by the server all the same).
pub const HIDDEN_OR_CONTROL_CLASS: &str = r"\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb";

/// The first refused character of `text`, as `U+XXXX`.
fn first_hidden(text: &str) -> Option<String> {
    text.chars()
        .find(|c| is_hidden_or_control(*c))
        .map(|c| format!("U+{:04X}", u32::from(c)))
}

/// A name of something people create: 1 to [`MAX_NAME_CHARS`] characters, not only spaces,
/// none of them a control, bidirectional-formatting or invisible character. `field` is the
/// wire name of the field (`name`, `displayName`), used in the message.
pub fn validate_name(field: &str, name: &str) -> Result<()> {
    validate_visible(field, name)?;
    let len = name.chars().count();
    if name.trim().is_empty() || len > MAX_NAME_CHARS {
        return Err(DomainError::bad_request_hint(
            format!("{field} must be 1 to {MAX_NAME_CHARS} characters, not only spaces"),
            format!("Send a non-empty {field} of at most {MAX_NAME_CHARS} characters."),
        ));
    }
    Ok(())
}

/// Refuses `text` when it has a control, bidirectional or invisible character (for
/// identifiers with rules of their own, such as `logicalId`).
pub fn validate_visible(field: &str, text: &str) -> Result<()> {
    match first_hidden(text) {
        Some(cp) => Err(DomainError::bad_request_hint(
            format!("{field} contains {cp}, a control, bidirectional or invisible character"),
            format!("It is shown to other people; type the {field} with visible characters only."),
        )),
        None => Ok(()),
    }
}

/// A free text shown next to a name (an app's description): at most `max` characters, line
/// breaks and tabs allowed, no other control character and no bidirectional or invisible one.
pub fn validate_text(field: &str, text: &str, max: usize) -> Result<()> {
    let hidden = text
        .chars()
        .find(|c| !matches!(c, '\n' | '\r' | '\t') && is_hidden_or_control(*c));
    if let Some(c) = hidden {
        return Err(DomainError::bad_request(format!(
            "{field} contains U+{:04X}, a control, bidirectional or invisible character",
            u32::from(c)
        )));
    }
    if text.chars().count() > max {
        return Err(DomainError::bad_request(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(())
}

/// Whether `text` is free of the characters names refuse (for identifiers and addresses that
/// have their own message).
pub fn is_visible(text: &str) -> bool {
    !text.chars().any(is_hidden_or_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(name: &str) -> bool {
        matches!(
            validate_name("name", name),
            Err(DomainError::BadRequest { .. })
        )
    }

    #[test]
    fn plain_names_in_any_script_pass() {
        for ok in [
            "shop",
            "My Project",
            "données-prod",
            "проект",
            "مشروع",
            "プロジェクト",
            "a b",
            "🚀 launch",
            &"x".repeat(255),
        ] {
            assert!(validate_name("name", ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn control_bidi_and_invisible_characters_are_refused() {
        for c in [
            '\u{0000}',
            '\u{0007}',
            '\u{001B}',
            '\u{007F}',
            '\u{0085}',
            '\u{00AD}',
            '\u{061C}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{2028}',
            '\u{2029}',
            '\u{202A}',
            '\u{202E}',
            '\u{2060}',
            '\u{2066}',
            '\u{2069}',
            '\u{3164}',
            '\u{FEFF}',
            '\u{E0001}',
            '\u{E0041}',
            '\u{1D173}',
        ] {
            assert!(refused(&format!("gpj{c}exe")), "U+{:04X}", u32::from(c));
            assert!(!is_visible(&c.to_string()));
        }
    }

    #[test]
    fn the_message_names_the_code_point_not_the_character() {
        let Err(DomainError::BadRequest { message, .. }) = validate_name("name", "a\u{202E}b")
        else {
            unreachable!("refused above")
        };
        assert!(message.contains("U+202E"), "{message}");
        assert!(!message.contains('\u{202E}'), "{message}");
    }

    #[test]
    fn empty_blank_and_long_names_are_refused() {
        assert!(refused(""));
        assert!(refused("   "));
        assert!(refused(&"x".repeat(256)));
    }

    #[test]
    fn texts_allow_line_breaks_only() {
        assert!(validate_text("description", "line 1\r\nline 2\tend", 100).is_ok());
        assert!(validate_text("description", "a\u{202E}b", 100).is_err());
        assert!(validate_text("description", "a\u{0007}b", 100).is_err());
        assert!(validate_text("description", &"x".repeat(101), 100).is_err());
    }

    #[test]
    fn the_pattern_class_lists_the_bmp_characters() {
        // Every BMP character the rule refuses is inside one of the class's ranges, and no
        // other.
        let class = HIDDEN_OR_CONTROL_CLASS;
        let mut spans: Vec<(u32, u32)> = Vec::new();
        let mut rest = class;
        while let Some(start) = rest.strip_prefix("\\u") {
            let lo = u32::from_str_radix(&start[..4], 16).unwrap_or(u32::MAX);
            rest = &start[4..];
            let hi = if let Some(r) = rest.strip_prefix("-\\u") {
                let hi = u32::from_str_radix(&r[..4], 16).unwrap_or(u32::MAX);
                rest = &r[4..];
                hi
            } else {
                lo
            };
            spans.push((lo, hi));
        }
        assert!(rest.is_empty() && !spans.is_empty());
        for cp in 0..=0xFFFFu32 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let in_class = spans.iter().any(|(lo, hi)| (*lo..=*hi).contains(&cp));
            assert_eq!(is_hidden_or_control(c), in_class, "U+{cp:04X}");
        }
    }
}
