//! NAF rév.2 (the French version of NACE Rev.2) at every level: section (`C`), division (`23`),
//! group (`23.5`), class (`23.51`) and French sub-class (`23.51Z`), with French and English labels.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ReferenceError, malformed, read_records, text};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NafEntry {
    pub code: String,
    /// section, division, group, class or subclass.
    pub level: String,
    pub parent: Option<String>,
    pub section: String,
    pub label_fr: String,
    pub label_en: String,
    #[serde(skip)]
    words: Vec<String>,
}

#[derive(Deserialize)]
struct FrRow {
    code: String,
    niveau: String,
    section: String,
    libelle: String,
}

#[derive(Deserialize)]
struct NaceRow {
    code: String,
    level: String,
    parent: String,
    section: String,
    label_en: String,
    label_fr_naf: String,
}

#[derive(Debug, Default)]
pub struct NafList {
    entries: Vec<NafEntry>,
    by_code: HashMap<String, usize>,
}

impl NafList {
    pub fn load(naf_fr: &Path, nace: &Path) -> Result<NafList, ReferenceError> {
        let mut english: HashMap<String, (String, String, String)> = HashMap::new();
        let mut list = NafList::default();
        for (line, row) in read_records::<NaceRow>(nace)? {
            if row.code.is_empty() {
                return Err(malformed(nace, line, "empty code"));
            }
            if row.level == "section" {
                list.push(NafEntry {
                    code: row.code.clone(),
                    level: "section".into(),
                    parent: None,
                    section: row.section.clone(),
                    label_fr: row.label_fr_naf.clone(),
                    label_en: row.label_en.clone(),
                    words: Vec::new(),
                });
            }
            english.insert(row.code, (row.label_en, row.parent, row.section));
        }
        for (line, row) in read_records::<FrRow>(naf_fr)? {
            let level = match row.niveau.as_str() {
                "division" => "division",
                "groupe" => "group",
                "classe" => "class",
                "sous-classe" => "subclass",
                other => return Err(malformed(naf_fr, line, format!("unknown level `{other}`"))),
            };
            let parent = match level {
                "division" => Some(row.section.clone()),
                "subclass" => row
                    .code
                    .get(..row.code.len().saturating_sub(1))
                    .map(str::to_owned),
                _ => english
                    .get(&row.code)
                    .map(|(_, p, _)| p.clone())
                    .filter(|p| !p.is_empty()),
            };
            // A sub-class shares its class's English label (NACE stops at the class).
            let english_code = if level == "subclass" {
                parent.clone().unwrap_or_default()
            } else {
                row.code.clone()
            };
            let label_en = english
                .get(&english_code)
                .map(|(l, _, _)| l.clone())
                .unwrap_or_default();
            list.push(NafEntry {
                code: row.code,
                level: level.into(),
                parent,
                section: row.section,
                label_fr: row.libelle,
                label_en,
                words: Vec::new(),
            });
        }
        if list.entries.is_empty() {
            return Err(malformed(naf_fr, 1, "no codes"));
        }
        Ok(list)
    }

    fn push(&mut self, mut entry: NafEntry) {
        entry.words = [text::words(&entry.label_fr), text::words(&entry.label_en)].concat();
        self.by_code.insert(entry.code.clone(), self.entries.len());
        self.entries.push(entry);
    }

    /// Exact lookup, case-insensitive on the sub-class letter: `23.51z` finds `23.51Z`.
    pub fn get(&self, code: &str) -> Option<&NafEntry> {
        self.by_code
            .get(&code.trim().to_uppercase())
            .map(|&i| &self.entries[i])
    }

    pub fn all(&self) -> &[NafEntry] {
        &self.entries
    }

    /// Ranked search: a query that looks like a code (`23`, `23.5`, `2351`, `23.51Z`) matches by
    /// prefix, shorter (higher-level) codes first; otherwise words against both labels.
    pub fn search(&self, query: &str) -> Vec<&NafEntry> {
        let compact: String = query
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '.')
            .collect::<String>()
            .to_uppercase();
        let looks_like_code = !compact.is_empty()
            && compact.chars().take(2).all(|c| c.is_ascii_digit())
            && compact.chars().all(|c| c.is_ascii_alphanumeric());
        if looks_like_code
            || (compact.len() == 1 && compact.chars().all(|c| c.is_ascii_uppercase()))
        {
            let mut hits: Vec<&NafEntry> = self
                .entries
                .iter()
                .filter(|e| e.code.replace('.', "").starts_with(&compact) || e.code == compact)
                .collect();
            hits.sort_by(|a, b| a.code.len().cmp(&b.code.len()).then(a.code.cmp(&b.code)));
            return hits;
        }
        let q = text::words(query);
        let mut hits: Vec<(f64, usize)> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| text::word_score(&q, &[(e.words.as_slice(), 1.0)]).map(|s| (s, i)))
            .collect();
        hits.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        hits.into_iter().map(|(_, i)| &self.entries[i]).collect()
    }
}
