//! Trade words of facilitators mapped to codes: `knowledge/trade_synonyms.csv` (embedded), one row
//! per word and code, each with its source. « scierie » is nowhere in the NAF labels (« Sciage et
//! rabotage du bois »), « lactosérum » nowhere in the List of Waste: the table bridges the gap.

use super::text;

/// The embedded table: `term,expands_to,scheme,source`.
pub const BUILTIN_CSV: &str = include_str!("../../knowledge/trade_synonyms.csv");

/// Which nomenclature a synonym points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Naf,
    Ewc,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Synonym {
    pub term: String,
    /// Folded words of the term.
    words: Vec<String>,
    /// A NAF code (`16.10`: the class and its sub-classes) or a six-digit EWC code.
    pub expands_to: String,
    pub scheme: Scheme,
    pub source: String,
}

#[derive(Debug, Default)]
pub struct Synonyms {
    rows: Vec<Synonym>,
}

#[derive(serde::Deserialize)]
struct Row {
    term: String,
    expands_to: String,
    scheme: String,
    source: String,
}

impl Synonyms {
    /// Reads a table; the error names the line.
    pub fn parse(text: &str) -> Result<Synonyms, String> {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let mut rows = Vec::new();
        for (i, record) in reader.deserialize::<Row>().enumerate() {
            let line = i + 2;
            let row = record.map_err(|e| format!("line {line}: {e}"))?;
            let scheme = match row.scheme.trim() {
                "naf" => Scheme::Naf,
                "ewc" => Scheme::Ewc,
                other => return Err(format!("line {line}: unknown scheme `{other}`")),
            };
            let words = text::words(&row.term);
            if words.is_empty() || row.expands_to.trim().is_empty() || row.source.trim().is_empty()
            {
                return Err(format!(
                    "line {line}: term, expands_to and source are required"
                ));
            }
            rows.push(Synonym {
                term: row.term,
                words,
                expands_to: row.expands_to.trim().to_owned(),
                scheme,
                source: row.source,
            });
        }
        Ok(Synonyms { rows })
    }

    /// The embedded table (a malformed file is a build defect: its test fails).
    pub fn builtin() -> Synonyms {
        Synonyms::parse(BUILTIN_CSV).unwrap_or_default()
    }

    pub fn rows(&self) -> &[Synonym] {
        &self.rows
    }

    /// The codes of `scheme` a query reaches through the table, in table order: a row matches when
    /// every query word is a word of its term, shares its stem, or begins it (« fromag » →
    /// « fromagerie »), as in the label search, where every query word must match.
    pub fn codes(&self, query: &str, scheme: Scheme) -> Vec<&str> {
        let q = text::words(query);
        if q.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<&str> = Vec::new();
        for row in self.rows.iter().filter(|r| r.scheme == scheme) {
            let matches = q.iter().all(|w| {
                row.words
                    .iter()
                    .any(|t| text::same_stem(w, t) || t.starts_with(w.as_str()))
            });
            if matches && !out.contains(&row.expands_to.as_str()) {
                out.push(&row.expands_to);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_table_reads_and_every_row_has_a_source() {
        let table = Synonyms::parse(BUILTIN_CSV).expect("table parses");
        assert!(table.rows().len() >= 40, "{}", table.rows().len());
        assert!(table.rows().iter().all(|r| !r.source.trim().is_empty()));
    }

    #[test]
    fn trade_words_reach_their_codes() {
        let t = Synonyms::builtin();
        assert_eq!(t.codes("Scierie", Scheme::Naf), vec!["16.10"]);
        assert_eq!(t.codes("fromageries", Scheme::Naf), vec!["10.51"]);
        assert_eq!(t.codes("LACTOSÉRUM", Scheme::Ewc), vec!["020501", "020599"]);
        assert!(t.codes("lactosérum", Scheme::Naf).is_empty());
        assert!(t.codes("zzz", Scheme::Ewc).is_empty());
        // every query word must match, as in the label search
        assert!(t.codes("sciure plutonium", Scheme::Ewc).is_empty());
    }
}
