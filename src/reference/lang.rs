//! The reader's language and its conventions: French by default, English on request
//! (`Accept-Language`), for the labels the service writes and its CSV exports (French: `;`, decimal
//! comma, a BOM so that spreadsheets read UTF-8; English: `,` and `.`).

use serde::Serialize;
use utoipa::ToSchema;

/// A language the service writes its labels in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Fr,
    En,
}

impl Lang {
    /// The preferred supported language of an `Accept-Language` header (RFC 9110 §12.5.4): the
    /// highest `q` among `fr*` and `en*` ranges, the first listed on a tie; `*` or nothing
    /// supported → French. A malformed header is read as far as it makes sense, never refused.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let Some(header) = header else {
            return Lang::Fr;
        };
        let mut best: Option<(f64, Lang)> = None;
        for part in header.split(',') {
            let mut pieces = part.split(';');
            let range = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = pieces
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|v| v.trim().parse::<f64>().ok())
                .filter(|q| q.is_finite())
                .unwrap_or(1.0);
            let primary = range.split('-').next().unwrap_or("");
            let lang = match primary {
                "fr" => Lang::Fr,
                "en" => Lang::En,
                _ => continue,
            };
            if q <= 0.0 {
                continue;
            }
            if best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::Fr, |(_, l)| l)
    }

    /// `fr` or `en` (for `Content-Language`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    /// One of two texts.
    pub fn pick<'a>(self, fr: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Fr => fr,
            Lang::En => en,
        }
    }

    /// The CSV field separator of the reader's spreadsheets.
    pub fn csv_delimiter(self) -> u8 {
        match self {
            Lang::Fr => b';',
            Lang::En => b',',
        }
    }

    /// What a CSV export starts with: a UTF-8 BOM for French spreadsheets (which otherwise read
    /// the file as Windows-1252), nothing in English.
    pub fn csv_preamble(self) -> &'static str {
        match self {
            Lang::Fr => "\u{feff}",
            Lang::En => "",
        }
    }

    /// A number for a CSV cell: rounded to `decimals` places, trailing zeros dropped, no thousands
    /// separator, decimal comma in French (`1234,5`) and point in English (`1234.5`). Not finite →
    /// empty cell.
    pub fn number(self, value: f64, decimals: usize) -> String {
        if !value.is_finite() {
            return String::new();
        }
        let mut text = format!("{value:.decimals$}");
        if text.contains('.') {
            let trimmed = text.trim_end_matches('0').trim_end_matches('.').len();
            text.truncate(trimmed);
        }
        if text == "-0" {
            text = "0".into();
        }
        match self {
            Lang::Fr => text.replace('.', ","),
            Lang::En => text,
        }
    }
}

/// Rounds to `decimals` places (for JSON figures: no `156000.0000000855`).
pub fn round_to(value: f64, decimals: i32) -> f64 {
    if !value.is_finite() {
        return value;
    }
    let factor = 10f64.powi(decimals);
    let rounded = (value * factor).round() / factor;
    if rounded == 0.0 { 0.0 } else { rounded }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_supported_language() {
        assert_eq!(Lang::from_accept_language(None), Lang::Fr);
        assert_eq!(Lang::from_accept_language(Some("en")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("en-GB,en;q=0.9")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("de, en;q=0.5")), Lang::En);
        assert_eq!(
            Lang::from_accept_language(Some("fr-FR, en;q=0.8")),
            Lang::Fr
        );
        assert_eq!(
            Lang::from_accept_language(Some("en;q=0.2, fr;q=0.9")),
            Lang::Fr
        );
        assert_eq!(Lang::from_accept_language(Some("de")), Lang::Fr);
        assert_eq!(Lang::from_accept_language(Some("en;q=0")), Lang::Fr);
        assert_eq!(Lang::from_accept_language(Some(";;,q=,EN;q=abc")), Lang::En);
    }

    #[test]
    fn numbers_follow_the_convention() {
        assert_eq!(Lang::Fr.number(1234.56, 1), "1234,6");
        assert_eq!(Lang::En.number(1234.56, 1), "1234.6");
        assert_eq!(Lang::Fr.number(156000.0000000855, 0), "156000");
        assert_eq!(Lang::En.number(0.5, 3), "0.5");
        assert_eq!(Lang::En.number(-0.0001, 1), "0");
        assert_eq!(Lang::Fr.number(f64::NAN, 1), "");
        assert_eq!(round_to(156000.0000000855, 3), 156000.0);
        assert_eq!(round_to(0.51999998, 3), 0.52);
    }
}
