//! The evidence base of reuse: every piece of evidence that an activity takes a resource, with its
//! provenance. The receiver model ([`super::receiver_model`]) is fitted on it.
//!
//! Four sources, each a file with its own citations:
//! - **case base**: documented industrial-symbiosis exchanges (MAESTRI,
//!   `../shared/reference/cases/maestri_exchanges_part_a.csv`, read at run time): provider and receiver
//!   NACE, EWC code(s), case (site) number — the unit of cross-validation;
//! - **eco-industrial parks**: `knowledge/evidence_eip_exchanges.csv`, 302 further exchanges of 10 parks
//!   (R package EIPs, GPL), each coded by hand to NACE and EWC code or class with a rationale; the rows
//!   of a park that is a site of the case base name its case (left out with it);
//! - **US EPA REI 2012**: `knowledge/evidence_epa_rei.csv`, the tonnes of each recycled commodity taken in
//!   by each receiving NACE division — a sector-level prior;
//! - **sector input profiles**: the `input` rows of `knowledge/sector_profiles.csv` and
//!   `knowledge/sector_inputs.csv` (BREFs, ADEME, trade bodies, each row cited).

use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use super::knowledge::NaceKey;
use super::taxonomy::{ClassId, EwcCode, Taxonomy, csv_rows};
use super::{MatchingError, Result};

const EIP_CSV: &str = include_str!("../../knowledge/evidence_eip_exchanges.csv");
const REI_CSV: &str = include_str!("../../knowledge/evidence_epa_rei.csv");
const INPUTS_CSV: &str = include_str!("../../knowledge/sector_inputs.csv");
const PROFILES_CSV: &str = include_str!("../../knowledge/sector_profiles.csv");

/// Where a piece of evidence comes from; each source has its own weight in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// A documented exchange of the case base (MAESTRI).
    CaseBase,
    /// A documented exchange of an eco-industrial park (EIPs package).
    Park,
    /// US EPA REI 2012 tonnage share of a recycled commodity.
    EpaRei,
    /// A sector input profile.
    Profile,
}

impl Source {
    /// Whether the evidence is a documented exchange between two firms.
    pub fn is_exchange(self) -> bool {
        matches!(self, Source::CaseBase | Source::Park)
    }
}

/// "Activity `receiver` takes `class` (`code`) from `provider`", with a weight within its source.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The receiving activity, as precise as the source says (division, group or class).
    pub receiver: NaceKey,
    pub code: Option<EwcCode>,
    pub class: ClassId,
    pub provider: Option<NaceKey>,
    /// Weight within the source (1 for one exchange; shares of it when it lists several codes).
    pub weight: f64,
    pub source: Source,
    /// Case (site) number of a case-base exchange: the unit left out in cross-validation.
    pub case: Option<u32>,
}

/// One documented exchange of the case base, as the evaluation replays it.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseExchange {
    pub case: u32,
    /// Row index within the file (1-based, header excluded).
    pub row: usize,
    pub provider: Option<NaceKey>,
    pub receiver: NaceKey,
    /// The first EWC code of the exchange.
    pub code: EwcCode,
    pub description: String,
}

/// All the evidence, and the case-base exchanges it was built from.
#[derive(Debug, Clone, Default)]
pub struct EvidenceBase {
    pub observations: Vec<Observation>,
    pub exchanges: Vec<CaseExchange>,
}

fn nace_list(text: &str) -> Vec<NaceKey> {
    let mut keys: Vec<NaceKey> = text.split(';').filter_map(NaceKey::parse).collect();
    keys.dedup();
    keys
}

impl EvidenceBase {
    /// The embedded sources plus the case base read from `exchanges_csv` (MAESTRI format).
    pub fn load(exchanges_csv: &Path, tax: &Taxonomy) -> Result<EvidenceBase> {
        let file = std::fs::File::open(exchanges_csv).map_err(|error| MatchingError::Io {
            path: exchanges_csv.to_owned(),
            error,
        })?;
        let mut base = EvidenceBase::default();
        base.add_case_base(std::io::BufReader::new(file), tax)?;
        base.add_builtin(tax)?;
        Ok(base)
    }

    /// The embedded sources only (parks, EPA REI, profiles): no case base.
    pub fn builtin(tax: &Taxonomy) -> Result<EvidenceBase> {
        let mut base = EvidenceBase::default();
        base.add_builtin(tax)?;
        Ok(base)
    }

    fn add_builtin(&mut self, tax: &Taxonomy) -> Result<()> {
        self.add_parks(EIP_CSV.as_bytes(), tax)?;
        self.add_epa_rei(REI_CSV.as_bytes(), tax)?;
        self.add_profiles("sector_profiles.csv", PROFILES_CSV.as_bytes(), tax)?;
        self.add_profiles("sector_inputs.csv", INPUTS_CSV.as_bytes(), tax)
    }

    /// MAESTRI exchanges: columns `Case Number`, `EWC code`, `NACE code - Providing industry`,
    /// `NACE code - Receiving industry`; several codes separated by `;` share the exchange's weight.
    pub fn add_case_base(&mut self, reader: impl Read, tax: &Taxonomy) -> Result<()> {
        let src = "exchanges";
        let csv_err = |error| MatchingError::Csv {
            source_name: src.into(),
            error,
        };
        let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let headers = rdr.headers().map_err(csv_err)?.clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim() == name)
                .ok_or_else(|| MatchingError::Data {
                    source_name: src.into(),
                    line: 1,
                    message: format!("missing column `{name}`"),
                })
        };
        let case_col = col("Case Number")?;
        let ewc_col = col("EWC code")?;
        let provider_col = col("NACE code - Providing industry")?;
        let receiver_col = col("NACE code - Receiving industry")?;
        let desc_col = col("Waste description")?;
        for (row, record) in rdr.records().enumerate() {
            let record = record.map_err(csv_err)?;
            let field = |i: usize| record.get(i).unwrap_or_default();
            let mut codes: Vec<EwcCode> = field(ewc_col)
                .split(';')
                .filter_map(EwcCode::parse)
                .collect();
            codes.dedup();
            let receivers = nace_list(field(receiver_col));
            let provider = nace_list(field(provider_col)).first().copied();
            let case = field(case_col).trim().parse::<u32>().ok();
            let (Some(&first), Some(&receiver)) = (codes.first(), receivers.first()) else {
                continue;
            };
            if let Some(case) = case {
                self.exchanges.push(CaseExchange {
                    case,
                    row: row + 1,
                    provider,
                    receiver,
                    code: first,
                    description: field(desc_col).trim().to_owned(),
                });
            }
            let share = 1.0 / (codes.len() * receivers.len()) as f64;
            for code in &codes {
                let Some(class) = tax.class_id_of_ewc(*code) else {
                    continue;
                };
                for receiver in &receivers {
                    self.observations.push(Observation {
                        receiver: *receiver,
                        code: Some(*code),
                        class,
                        provider,
                        weight: share,
                        source: Source::CaseBase,
                        case,
                    });
                }
            }
        }
        Ok(())
    }

    fn add_parks(&mut self, reader: impl Read, tax: &Taxonomy) -> Result<()> {
        #[derive(Deserialize)]
        struct Row {
            supplier_nace: String,
            receiver_nace: String,
            ewc_code: String,
            class: String,
            /// The case-base case of the same site and literature: left out with it in
            /// cross-validation, and counted with it under `weights.per_case_cap`.
            same_site_case: String,
        }
        let src = "evidence_eip_exchanges.csv";
        for (line, row) in csv_rows::<Row>(src, reader)? {
            let bad = |message: String| MatchingError::Data {
                source_name: src.into(),
                line,
                message,
            };
            let receiver = NaceKey::parse(&row.receiver_nace)
                .ok_or_else(|| bad(format!("bad NACE `{}`", row.receiver_nace)))?;
            let code = match row.ewc_code.trim() {
                "" => None,
                c => Some(EwcCode::parse(c).ok_or_else(|| bad(format!("bad EWC code `{c}`")))?),
            };
            let class = tax
                .id(row.class.trim())
                .ok_or_else(|| bad(format!("unknown class `{}`", row.class)))?;
            let case = match row.same_site_case.trim() {
                "" => None,
                c => Some(
                    c.parse::<u32>()
                        .map_err(|_| bad(format!("bad case number `{c}`")))?,
                ),
            };
            self.observations.push(Observation {
                receiver,
                code,
                class,
                provider: NaceKey::parse(&row.supplier_nace),
                weight: 1.0,
                source: Source::Park,
                case,
            });
        }
        Ok(())
    }

    /// Tonnage shares: each recycled commodity weighs 1 in all, shared among its receiving divisions
    /// by tonnes, then among its codes (or its classes when it has no code).
    fn add_epa_rei(&mut self, reader: impl Read, tax: &Taxonomy) -> Result<()> {
        #[derive(Deserialize)]
        struct Row {
            recycled_commodity_code: String,
            receiver_nace_division: String,
            tonnes: f64,
            ewc_codes: String,
            classes: String,
        }
        let src = "evidence_epa_rei.csv";
        let rows = csv_rows::<Row>(src, reader)?;
        let mut totals: std::collections::HashMap<&str, f64> = Default::default();
        for (_, r) in &rows {
            *totals
                .entry(r.recycled_commodity_code.as_str())
                .or_default() += r.tonnes.max(0.0);
        }
        for (line, row) in &rows {
            let bad = |message: String| MatchingError::Data {
                source_name: src.into(),
                line: *line,
                message,
            };
            let receiver = NaceKey::parse(&row.receiver_nace_division)
                .ok_or_else(|| bad(format!("bad NACE `{}`", row.receiver_nace_division)))?;
            let total = totals
                .get(row.recycled_commodity_code.as_str())
                .copied()
                .unwrap_or(0.0);
            if total <= 0.0 || !row.tonnes.is_finite() || row.tonnes <= 0.0 {
                continue;
            }
            let share = row.tonnes / total;
            let codes = row
                .ewc_codes
                .split_whitespace()
                .map(|c| EwcCode::parse(c).ok_or_else(|| bad(format!("bad EWC code `{c}`"))))
                .collect::<Result<Vec<_>>>()?;
            let classes = row
                .classes
                .split_whitespace()
                .map(|c| tax.id(c).ok_or_else(|| bad(format!("unknown class `{c}`"))))
                .collect::<Result<Vec<_>>>()?;
            self.push_spread(receiver, &codes, &classes, share, Source::EpaRei, tax);
        }
        Ok(())
    }

    /// Input rows of a profile file (`naf,…,ewc_codes,classes,source`, with or without `direction`).
    fn add_profiles(&mut self, src: &'static str, reader: impl Read, tax: &Taxonomy) -> Result<()> {
        #[derive(Deserialize)]
        struct Row {
            naf: String,
            #[serde(default)]
            direction: Option<String>,
            ewc_codes: String,
            classes: String,
        }
        for (line, row) in csv_rows::<Row>(src, reader)? {
            if row.direction.as_deref().is_some_and(|d| d != "input") {
                continue;
            }
            let bad = |message: String| MatchingError::Data {
                source_name: src.into(),
                line,
                message,
            };
            let receiver =
                NaceKey::parse(&row.naf).ok_or_else(|| bad(format!("bad NAF `{}`", row.naf)))?;
            let codes = row
                .ewc_codes
                .split_whitespace()
                .map(|c| EwcCode::parse(c).ok_or_else(|| bad(format!("bad EWC code `{c}`"))))
                .collect::<Result<Vec<_>>>()?;
            let classes = row
                .classes
                .split_whitespace()
                .map(|c| tax.id(c).ok_or_else(|| bad(format!("unknown class `{c}`"))))
                .collect::<Result<Vec<_>>>()?;
            // A profile names each code it accepts: one unit of evidence per code, and one per class
            // for what it accepts by class.
            for code in &codes {
                if let Some(class) = tax.class_id_of_ewc(*code) {
                    self.push(receiver, Some(*code), class, 1.0, Source::Profile);
                }
            }
            for class in &classes {
                self.push(receiver, None, *class, 1.0, Source::Profile);
            }
        }
        Ok(())
    }

    fn push_spread(
        &mut self,
        receiver: NaceKey,
        codes: &[EwcCode],
        classes: &[ClassId],
        weight: f64,
        source: Source,
        tax: &Taxonomy,
    ) {
        if codes.is_empty() {
            for class in classes {
                self.push(
                    receiver,
                    None,
                    *class,
                    weight / classes.len() as f64,
                    source,
                );
            }
            return;
        }
        for code in codes {
            if let Some(class) = tax.class_id_of_ewc(*code) {
                self.push(
                    receiver,
                    Some(*code),
                    class,
                    weight / codes.len() as f64,
                    source,
                );
            }
        }
    }

    fn push(
        &mut self,
        receiver: NaceKey,
        code: Option<EwcCode>,
        class: ClassId,
        weight: f64,
        source: Source,
    ) {
        self.observations.push(Observation {
            receiver,
            code,
            class,
            provider: None,
            weight,
            source,
            case: None,
        });
    }

    /// Case numbers of the case base, ascending.
    pub fn cases(&self) -> Vec<u32> {
        let mut cases: Vec<u32> = self.exchanges.iter().map(|e| e.case).collect();
        cases.sort_unstable();
        cases.dedup();
        cases
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tax() -> Taxonomy {
        Taxonomy::builtin().expect("taxonomy")
    }

    const HEADER: &str = "eip,supplier,accepter,transaction,kind,supplier_nace,receiver_nace,ewc_code,class,rationale,source,same_site_case\n";

    /// A park of the same site as a case of the case base carries that case, so that leaving the case
    /// out of the cross-validation leaves the park's rows out too.
    #[test]
    fn same_site_park_rows_go_with_their_case() {
        let t = tax();
        let csv = format!(
            "{HEADER}P,A,B,Ash,by_product,17.11,20.15,100103,material/mineral/ash,r,s,3\n\
             Q,A,B,Ash,by_product,17.11,20.15,100103,material/mineral/ash,r,s,\n"
        );
        let mut base = EvidenceBase::default();
        base.add_parks(csv.as_bytes(), &t).expect("parks");
        let cases: Vec<Option<u32>> = base.observations.iter().map(|o| o.case).collect();
        assert_eq!(cases, vec![Some(3), None]);
        let bad = format!("{HEADER}P,A,B,Ash,by_product,17.11,20.15,,material/mineral/ash,r,s,x\n");
        assert!(
            EvidenceBase::default()
                .add_parks(bad.as_bytes(), &t)
                .is_err()
        );
    }

    #[test]
    fn embedded_same_site_parks_name_a_case() {
        let base = EvidenceBase::builtin(&tax()).expect("evidence");
        let tagged: Vec<u32> = base
            .observations
            .iter()
            .filter(|o| o.source == Source::Park)
            .filter_map(|o| o.case)
            .collect();
        assert!(tagged.len() >= 60, "{}", tagged.len());
        assert!(tagged.iter().all(|c| [2, 3, 8, 10, 27].contains(c)));
    }
}
