//! Field-level validation errors, collected so a client sees every bad field at once.

use serde::Serialize;
use utoipa::ToSchema;

/// One invalid field: its JSON path (`quantity.unit`, `siret`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    /// For file imports: the line of the file (the header is line 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
}

/// Accumulates field errors; `finish` turns them into a result.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldError>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
            row: None,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }

    pub fn finish<T>(self, value: T) -> Result<T, Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.0)
        }
    }
}

/// The first character no text of ours may hold: control characters other than tab and line
/// breaks (C0, DEL, C1 — NUL among them, which PostgreSQL cannot store), and the bidirectional
/// marks, embeddings, overrides and isolates, which make a name display as another one
/// ("Trojan Source", CVE-2021-42574) in facilitators' screens and partners' portals.
pub fn forbidden_char(text: &str) -> Option<char> {
    text.chars().find(|&c| {
        (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
            || matches!(
                c,
                '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            )
    })
}

/// Why `text` cannot be stored in a one-line field (a name, a code), if it cannot.
pub fn line_problem(text: &str) -> Option<String> {
    match text.chars().find(|c| matches!(c, '\t' | '\n' | '\r')) {
        Some(_) => Some("must be one line (no tab or line break)".to_owned()),
        None => text_problem(text),
    }
}

/// Why `text` cannot be stored in a free-text field, if it cannot.
pub fn text_problem(text: &str) -> Option<String> {
    forbidden_char(text).map(|c| {
        format!(
            "must not contain control or bidirectional formatting characters (found U+{:04X})",
            c as u32
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_are_refused_accents_and_line_breaks_kept() {
        assert_eq!(
            text_problem("Scierie Dupré & Fils – Nuits-St-Georges"),
            None
        );
        assert_eq!(text_problem("ligne 1\nligne 2\ttab"), None);
        for bad in [
            "a\u{0}b",
            "a\u{7}b",
            "a\u{7f}b",
            "a\u{85}b",
            "evil\u{202E}gnp.exe",
            "x\u{2067}y",
            "\u{200F}",
        ] {
            assert!(text_problem(bad).is_some(), "{bad:?} passed");
        }
        assert!(line_problem("Nom\nsur deux lignes").is_some());
        assert_eq!(line_problem("Nom ordinaire"), None);
    }
}
