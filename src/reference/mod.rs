//! Nomenclatures and geography loaded once at start from the reference directory
//! (`reference.dir`, default `../shared/reference`): the European List of Waste, NAF rév.2,
//! and the French communes with their département, région and EPCI.
//! A missing or malformed file stops the start with an error naming the file and line.

pub mod ewc;
pub mod geo;
pub mod lang;
pub mod naf;
pub mod synonyms;
pub mod text;

use std::path::{Path, PathBuf};

pub use ewc::{EwcCode, EwcList};
pub use geo::{Commune, Geography, TerritoryKind, TerritoryRef};
pub use lang::Lang;
pub use naf::{NafEntry, NafList};

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("reference file {file}: cannot read: {message}")]
    Io { file: PathBuf, message: String },
    #[error("reference file {file}, line {line}: {message}")]
    Malformed {
        file: PathBuf,
        line: u64,
        message: String,
    },
}

/// All reference data, immutable after start and shared by every request.
#[derive(Debug)]
pub struct Reference {
    pub dir: PathBuf,
    pub ewc: EwcList,
    pub naf: NafList,
    pub geo: Geography,
    /// Trade words → codes (`knowledge/trade_synonyms.csv`), for the code searches.
    pub synonyms: synonyms::Synonyms,
}

impl Reference {
    pub fn load(dir: &Path) -> Result<Reference, ReferenceError> {
        Ok(Reference {
            dir: dir.to_path_buf(),
            ewc: EwcList::load(&dir.join("ewc/list_of_waste.csv"))?,
            naf: NafList::load(
                &dir.join("naf/naf_rev2_fr.csv"),
                &dir.join("naf/nace_rev2_en_fr.csv"),
            )?,
            geo: Geography::load(dir)?,
            synonyms: synonyms::Synonyms::builtin(),
        })
    }

    /// NAF search as facilitators type it: codes reached through the trade-word table first (a
    /// class with its sub-classes), then the ranked word search of the labels (accents and case
    /// ignored, prefixes and stems).
    pub fn search_naf(&self, query: &str) -> Vec<&NafEntry> {
        let mut hits: Vec<&NafEntry> = Vec::new();
        for code in self.synonyms.codes(query, synonyms::Scheme::Naf) {
            for entry in self.naf.all().iter().filter(|e| e.code.starts_with(code)) {
                if !hits.iter().any(|h| h.code == entry.code) {
                    hits.push(entry);
                }
            }
        }
        for entry in self.naf.search(query) {
            if !hits.iter().any(|h| h.code == entry.code) {
                hits.push(entry);
            }
        }
        hits
    }

    /// List of Waste search: codes reached through the trade-word table first, then the ranked word
    /// search of the labels.
    pub fn search_ewc(&self, query: &str) -> Vec<&EwcCode> {
        let mut hits: Vec<&EwcCode> = self
            .synonyms
            .codes(query, synonyms::Scheme::Ewc)
            .into_iter()
            .filter_map(|code| self.ewc.get(code))
            .collect();
        for entry in self.ewc.search(query) {
            if !hits.iter().any(|h| h.code == entry.code) {
                hits.push(entry);
            }
        }
        hits
    }
}

/// Opens a CSV file for reading with headers, mapping IO errors to `ReferenceError::Io`.
pub(crate) fn open_csv(path: &Path) -> Result<csv::Reader<std::fs::File>, ReferenceError> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| ReferenceError::Io {
            file: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// Deserialises every record of a CSV file, reporting the line of the first bad record.
pub(crate) fn read_records<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<Vec<(u64, T)>, ReferenceError> {
    let mut reader = open_csv(path)?;
    let mut out = Vec::new();
    for record in reader.deserialize::<T>() {
        match record {
            Ok(row) => out.push((out.len() as u64 + 2, row)),
            Err(e) => {
                let line = e
                    .position()
                    .map(|p| p.line())
                    .unwrap_or(out.len() as u64 + 2);
                return Err(ReferenceError::Malformed {
                    file: path.to_path_buf(),
                    line,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(out)
}

pub(crate) fn malformed(path: &Path, line: u64, message: impl Into<String>) -> ReferenceError {
    ReferenceError::Malformed {
        file: path.to_path_buf(),
        line,
        message: message.into(),
    }
}
