//! The one error type of the AFME engine.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One bad cell of an imported CSV file.
///
/// `row` counts records the way a spreadsheet shows them: the header is row 1, so the first data
/// row is row 2. `column` is the header name of the bad cell (empty when the whole row is bad, e.g.
/// a wrong number of fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AfmeRowError)]
pub struct RowError {
    pub row: usize,
    pub column: String,
    pub message: String,
}

impl RowError {
    pub fn new(row: usize, column: &str, message: impl Into<String>) -> Self {
        Self {
            row,
            column: column.to_string(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.column.is_empty() {
            write!(f, "row {}: {}", self.row, self.message)
        } else {
            write!(
                f,
                "row {}, column {}: {}",
                self.row, self.column, self.message
            )
        }
    }
}

/// Everything that can go wrong in `afme`. The API maps `InvalidRows` and `InvalidInput` to 422.
#[derive(Debug, thiserror::Error)]
pub enum AfmeError {
    /// The CSV could not be read at all (IO error, undecodable text).
    #[error("cannot read CSV: {0}")]
    Csv(String),

    /// All-or-nothing import refused: every bad cell is listed.
    #[error("{} invalid cell(s) in the CSV; first: {}", .0.len(), .0.first().map(|e| e.to_string()).unwrap_or_default())]
    InvalidRows(Vec<RowError>),

    /// The family table (knowledge/afme_families.toml or a replacement) is malformed.
    #[error("invalid AFME family table: {0}")]
    FamilyTable(String),

    /// A caller-supplied argument makes no sense (negative tonnage, bad index, empty member list…).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A reconciliation constraint involves only fixed rows (no uncertainty) and is not satisfied:
    /// nothing may move to satisfy it.
    #[error(
        "constraint '{constraint}' involves only rows without uncertainty and is violated by {residual}; give some of its rows an uncertainty"
    )]
    ConstraintOnFixedRows { constraint: String, residual: f64 },

    /// Linearly dependent constraints that contradict each other.
    #[error(
        "constraint '{constraint}' contradicts the others (residual {residual} after adjustment)"
    )]
    InconsistentConstraints { constraint: String, residual: f64 },

    /// The balance identity cannot be written for this account.
    #[error("cannot build the balance constraint: {0}")]
    Balance(String),
}

impl AfmeError {
    /// The per-cell report of a refused import, if that is what this error is.
    pub fn row_errors(&self) -> Option<&[RowError]> {
        match self {
            AfmeError::InvalidRows(errors) => Some(errors),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_error_display_names_row_and_column() {
        let e = RowError::new(3, "flow", "unknown flow type 'XX'");
        assert_eq!(e.to_string(), "row 3, column flow: unknown flow type 'XX'");
        let e = RowError::new(4, "", "expected 10 fields");
        assert_eq!(e.to_string(), "row 4: expected 10 fields");
    }

    #[test]
    fn invalid_rows_error_summarises_first() {
        let err = AfmeError::InvalidRows(vec![RowError::new(2, "value", "negative value")]);
        assert!(err.to_string().contains("1 invalid cell"));
        assert!(err.to_string().contains("row 2, column value"));
        assert_eq!(err.row_errors().map(|e| e.len()), Some(1));
    }
}
