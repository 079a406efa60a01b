//! The European List of Waste (Decision 2000/532/EC as amended by 2014/955/EU).

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ReferenceError, malformed, read_records, text};

/// One six-digit code of the List of Waste.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EwcCode {
    /// Six digits, no spaces: `100102`.
    pub code: String,
    /// As printed in the list: `10 01 02`, with `*` for hazardous entries.
    pub display: String,
    pub hazardous: bool,
    /// `absolute` or `mirror` entry.
    pub entry_type: String,
    pub chapter: String,
    pub subchapter: String,
    pub label_en: String,
    pub label_fr: String,
    pub chapter_en: String,
    pub chapter_fr: String,
    pub subchapter_en: String,
    pub subchapter_fr: String,
    #[serde(skip)]
    words: Vec<String>,
    #[serde(skip)]
    context_words: Vec<String>,
}

#[derive(Deserialize)]
struct Row {
    code: String,
    code_display: String,
    hazardous: String,
    entry_type: String,
    chapter: String,
    subchapter: String,
    description_en: String,
    description_fr: String,
    chapter_en: String,
    chapter_fr: String,
    subchapter_en: String,
    subchapter_fr: String,
}

#[derive(Debug, Default)]
pub struct EwcList {
    codes: Vec<EwcCode>,
    by_code: HashMap<String, usize>,
}

impl EwcList {
    pub fn load(path: &Path) -> Result<EwcList, ReferenceError> {
        let mut list = EwcList::default();
        for (line, row) in read_records::<Row>(path)? {
            if row.code.len() != 6 || !row.code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed(
                    path,
                    line,
                    format!("code `{}` is not six digits", row.code),
                ));
            }
            let hazardous = match row.hazardous.as_str() {
                "true" => true,
                "false" => false,
                other => {
                    return Err(malformed(
                        path,
                        line,
                        format!("hazardous `{other}` is not true/false"),
                    ));
                }
            };
            let words = [
                text::words(&row.description_fr),
                text::words(&row.description_en),
            ]
            .concat();
            let context_words = [
                text::words(&row.subchapter_fr),
                text::words(&row.subchapter_en),
                text::words(&row.chapter_fr),
                text::words(&row.chapter_en),
            ]
            .concat();
            list.by_code.insert(row.code.clone(), list.codes.len());
            list.codes.push(EwcCode {
                code: row.code,
                display: row.code_display,
                hazardous,
                entry_type: if row.entry_type.to_lowercase().contains("mirror") {
                    "mirror"
                } else {
                    "absolute"
                }
                .to_owned(),
                chapter: row.chapter,
                subchapter: row.subchapter,
                label_en: row.description_en,
                label_fr: row.description_fr,
                chapter_en: row.chapter_en,
                chapter_fr: row.chapter_fr,
                subchapter_en: row.subchapter_en,
                subchapter_fr: row.subchapter_fr,
                words,
                context_words,
            });
        }
        if list.codes.is_empty() {
            return Err(malformed(path, 1, "no codes"));
        }
        Ok(list)
    }

    /// Looks a code up in any usual spelling: `100102`, `10 01 02`, `10 01 02*`.
    pub fn get(&self, code: &str) -> Option<&EwcCode> {
        self.by_code
            .get(&normalise_code(code))
            .map(|&i| &self.codes[i])
    }

    pub fn all(&self) -> &[EwcCode] {
        &self.codes
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Ranked search: a query made of digits (spaces and `*` allowed) is a code prefix; otherwise
    /// words, matched accent- and case-insensitively against the French and English labels (the
    /// code's own label weighs more than its chapter's). Ties keep list order.
    pub fn search(&self, query: &str) -> Vec<&EwcCode> {
        let digits = normalise_code(query);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return self
                .codes
                .iter()
                .filter(|c| c.code.starts_with(&digits))
                .collect();
        }
        let q = text::words(query);
        let mut hits: Vec<(f64, usize)> = self
            .codes
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                text::word_score(
                    &q,
                    &[(c.words.as_slice(), 1.0), (c.context_words.as_slice(), 0.3)],
                )
                .map(|s| (s, i))
            })
            .collect();
        hits.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        hits.into_iter().map(|(_, i)| &self.codes[i]).collect()
    }
}

/// Strips spaces and the hazardous marker: `10 01 02*` → `100102`.
pub fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '*')
        .collect()
}
