//! The receiver model: the probability that activity `D` (a NACE division) takes resource `R` (EWC
//! code, class) from provider `P`, learned from the evidence base ([`super::evidence`]).
//!
//! Hierarchical Dirichlet back-off (see `docs/MATCHING.md`): the contexts of a query, from the most
//! specific to the broadest, are
//! (provider division, EWC subchapter) → EWC code → subchapter → chapter → class → parent classes → the
//! category root (material, energy, water…). The root's distribution of receiving divisions is the
//! popularity prior; each more specific context `L` with evidence counts `n_L(D)` (total `N_L`) refines
//! the broader estimate: `P_L(D) = (n_L(D) + α_L · P_{L+1}(D)) / (N_L + α_L)`. A context without evidence
//! leaves the estimate unchanged, so the model falls back to popularity and never below it; a single
//! document (`N_L = 1`) moves the estimate only as much as `α_L` allows. Sources are weighted
//! (`[weights]`): one case-base exchange counts 1. The parameters live in `knowledge/receiver_model.toml`
//! and are fitted by leave-one-case-out cross-validation (`symbiose evaluate --fit`).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::evidence::{EvidenceBase, Observation, Source};
use super::knowledge::NaceKey;
use super::taxonomy::{ClassId, EwcCode, Taxonomy};
use super::{MatchingError, Result};

const PARAMS_TOML: &str = include_str!("../../knowledge/receiver_model.toml");

/// Weight of one unit of evidence of each source, relative to a case-base exchange.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceWeights {
    pub case_base: f64,
    pub park: f64,
    pub epa_rei: f64,
    pub profile: f64,
    /// Multiplier of the statistics and profiles (EPA REI, sector inputs) in the popularity prior (the
    /// category root): they say which activities can take a resource, less how often they do.
    pub prior_statistics: f64,
    /// Most weight one case (site) of the case base gives a division in one context: a case study
    /// that lists the same pathway many times is one piece of evidence, not many.
    pub per_case_cap: f64,
    /// Multiplier of statistics and profiles naming waste collectors, treaters and recyclers
    /// (divisions 38, 39) or waste wholesalers (46) as receivers: intermediaries rather than users.
    pub intermediaries: f64,
}

/// Concentration `α` of each back-off level: how much evidence a context needs before it outweighs the
/// broader estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Concentrations {
    /// (provider's division, EWC subchapter).
    pub provider: f64,
    /// The provider's division alone: what its outflows go to, whatever the code.
    pub provider_activity: f64,
    pub code: f64,
    pub subchapter: f64,
    pub chapter: f64,
    pub class: f64,
    pub parent_class: f64,
    /// Boost of the groups and classes the evidence names within a division: an activity whose class
    /// holds a share `s` of the division's evidence scores `P(division) × (1 + class_boost × s)`; the
    /// division's other activities keep `P(division)` (0: every activity of the division alike).
    pub class_boost: f64,
}

/// The names of [`ModelParams`]' fields, `section.name`, in file order.
pub const PARAMETERS: [&str; 15] = [
    "weights.case_base",
    "weights.park",
    "weights.epa_rei",
    "weights.profile",
    "weights.prior_statistics",
    "weights.per_case_cap",
    "weights.intermediaries",
    "alpha.provider",
    "alpha.provider_activity",
    "alpha.code",
    "alpha.subchapter",
    "alpha.chapter",
    "alpha.class",
    "alpha.parent_class",
    "alpha.class_boost",
];

/// The model's parameters (`knowledge/receiver_model.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelParams {
    pub weights: SourceWeights,
    pub alpha: Concentrations,
}

impl ModelParams {
    /// The fitted parameters embedded in the binary.
    pub fn builtin() -> Result<ModelParams> {
        let p: ModelParams = config::Config::builder()
            .add_source(config::File::from_str(
                PARAMS_TOML,
                config::FileFormat::Toml,
            ))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| MatchingError::Data {
                source_name: "receiver_model.toml".into(),
                line: 0,
                message: e.to_string(),
            })?;
        p.validate()?;
        Ok(p)
    }

    /// Every parameter as (`section.name`, value), in the order of `knowledge/receiver_model.toml`.
    pub fn entries(&self) -> Vec<(&'static str, f64)> {
        let mut copy = *self;
        PARAMETERS
            .iter()
            .filter_map(|name| copy.slot(name).map(|v| (*name, *v)))
            .collect()
    }

    /// Sets one parameter by its `section.name`; false when there is none of that name.
    pub fn set(&mut self, name: &str, value: f64) -> bool {
        self.slot(name).map(|v| *v = value).is_some()
    }

    fn slot(&mut self, name: &str) -> Option<&mut f64> {
        let (w, a) = (&mut self.weights, &mut self.alpha);
        Some(match name {
            "weights.case_base" => &mut w.case_base,
            "weights.park" => &mut w.park,
            "weights.epa_rei" => &mut w.epa_rei,
            "weights.profile" => &mut w.profile,
            "weights.prior_statistics" => &mut w.prior_statistics,
            "weights.per_case_cap" => &mut w.per_case_cap,
            "weights.intermediaries" => &mut w.intermediaries,
            "alpha.provider" => &mut a.provider,
            "alpha.provider_activity" => &mut a.provider_activity,
            "alpha.code" => &mut a.code,
            "alpha.subchapter" => &mut a.subchapter,
            "alpha.chapter" => &mut a.chapter,
            "alpha.class" => &mut a.class,
            "alpha.parent_class" => &mut a.parent_class,
            "alpha.class_boost" => &mut a.class_boost,
            _ => return None,
        })
    }

    pub fn validate(&self) -> Result<()> {
        if self
            .entries()
            .iter()
            .any(|(_, v)| !v.is_finite() || *v < 0.0)
        {
            return Err(MatchingError::InvalidSettings(
                "receiver model: weights and concentrations must be finite and non-negative".into(),
            ));
        }
        Ok(())
    }

    fn weight(&self, source: Source) -> f64 {
        match source {
            Source::CaseBase => self.weights.case_base,
            Source::Park => self.weights.park,
            Source::EpaRei => self.weights.epa_rei,
            Source::Profile => self.weights.profile,
        }
    }
}

/// Waste collection, treatment and recycling (38), remediation (39), wholesale (46).
fn is_intermediary(receiver: NaceKey) -> bool {
    ["38", "39", "46"]
        .iter()
        .filter_map(|d| NaceKey::parse(d))
        .any(|d| d.contains(receiver))
}

/// The most specific context in which a division has evidence: what the score rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Documented for this subchapter from a provider of the same activity.
    Provider,
    Code,
    Subchapter,
    Chapter,
    Class,
    ParentClass,
    /// Only the popularity of the division among receivers of the category.
    Prior,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Context {
    Provider(NaceKey),
    ProviderSubchapter(NaceKey, u32),
    Code(u32),
    Subchapter(u32),
    Chapter(u32),
    /// A class and every descendant.
    Class(ClassId),
}

#[derive(Debug, Clone, Default)]
struct Cell {
    weight: f64,
    /// Documented exchanges (case base, parks) counted in this cell, each once (shared among its
    /// codes and receivers).
    exchanges: f64,
    /// Weight by receiving group or class within the division (evidence more precise than the division).
    finer: BTreeMap<NaceKey, f64>,
}

#[derive(Debug, Clone, Default)]
struct Dist {
    total: f64,
    cells: BTreeMap<NaceKey, Cell>,
}

/// One receiving division with its probability.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub division: NaceKey,
    pub probability: f64,
    pub basis: Basis,
    /// Documented exchanges at `basis`, each counted once.
    pub exchanges: f64,
    /// Groups and classes of the division documented at `basis`, with their share of its evidence.
    pub finer: Vec<(NaceKey, f64)>,
    /// `class_boost` of the parameters.
    pub class_boost: f64,
}

impl Prediction {
    /// Score of an activity of the division: the division's probability, raised for the groups and
    /// classes the evidence names by their share of it (`class_boost`), never lowered.
    pub fn value_for(&self, activity: Option<NaceKey>) -> f64 {
        let share = activity.map_or(0.0, |a| {
            self.finer
                .iter()
                .filter(|(k, _)| k.contains(a))
                .map(|(_, s)| *s)
                .fold(0.0, f64::max)
        });
        self.value_of_share(share)
    }

    /// [`Self::value_for`] given the share of the activity's group or class.
    pub fn value_of_share(&self, share: f64) -> f64 {
        self.probability * (1.0 + self.class_boost * share)
    }
}

/// The fitted model.
#[derive(Debug, Clone, Default)]
pub struct ReceiverModel {
    params: Option<ModelParams>,
    tables: HashMap<Context, Dist>,
}

impl ReceiverModel {
    /// Counts the observations (those `keep` accepts) into every context they belong to.
    pub fn fit(
        evidence: &EvidenceBase,
        params: ModelParams,
        tax: &Taxonomy,
        keep: impl Fn(&Observation) -> bool,
    ) -> ReceiverModel {
        let mut tables: HashMap<Context, Dist> = HashMap::new();
        let mut per_case: HashMap<(u32, Context, NaceKey), f64> = HashMap::new();
        for o in evidence.observations.iter().filter(|o| keep(o)) {
            let mut w = o.weight * params.weight(o.source);
            if !o.source.is_exchange() && is_intermediary(o.receiver) {
                w *= params.weights.intermediaries;
            }
            if w <= 0.0 {
                continue;
            }
            let root_w = if o.source.is_exchange() {
                w
            } else {
                w * params.weights.prior_statistics
            };
            let mut add = |ctx: Context, w: f64| {
                let w = match o.case {
                    Some(case) => {
                        let used = per_case
                            .entry((case, ctx, o.receiver.division()))
                            .or_default();
                        let room = (params.weights.per_case_cap - *used).max(0.0);
                        let w = w.min(room);
                        *used += w;
                        w
                    }
                    None => w,
                };
                if w <= 0.0 {
                    return;
                }
                let dist = tables.entry(ctx).or_default();
                dist.total += w;
                let cell = dist.cells.entry(o.receiver.division()).or_default();
                cell.weight += w;
                if o.source.is_exchange() {
                    // How many documented exchanges (not their weight in the model), for the
                    // explanation.
                    cell.exchanges += o.weight;
                }
                if o.receiver.len() > 2 {
                    *cell.finer.entry(o.receiver).or_default() += w;
                }
            };
            if let Some(code) = o.code {
                add(Context::Code(code.value()), w);
                add(Context::Subchapter(code.subchapter()), w);
                add(Context::Chapter(code.chapter()), w);
                if let Some(p) = o.provider {
                    add(
                        Context::ProviderSubchapter(p.division(), code.subchapter()),
                        w,
                    );
                }
            }
            if let Some(p) = o.provider {
                add(Context::Provider(p.division()), w);
            }
            let mut class = Some(o.class);
            while let Some(c) = class {
                let parent = tax.parent_id(c);
                add(Context::Class(c), if parent.is_none() { root_w } else { w });
                class = parent;
            }
        }
        ReceiverModel {
            params: Some(params),
            tables,
        }
    }

    /// Receiving divisions of a resource, most probable first (ties by division). Empty when the
    /// resource's category has no evidence at all.
    pub fn predict(
        &self,
        tax: &Taxonomy,
        code: Option<EwcCode>,
        class: ClassId,
        provider: Option<NaceKey>,
    ) -> Vec<Prediction> {
        let Some(params) = self.params else {
            return Vec::new();
        };
        let a = params.alpha;
        // Broadest first: the class chain up to the root, then chapter, subchapter, code, provider.
        let mut chain: Vec<(Context, f64, Basis)> = Vec::new();
        if let Some(p) = provider {
            chain.push((
                Context::Provider(p.division()),
                a.provider_activity,
                Basis::Prior,
            ));
        }
        let mut class_chain = Vec::new();
        let mut c = Some(class);
        while let Some(id) = c {
            class_chain.push(id);
            c = tax.parent_id(id);
        }
        let Some(root) = class_chain.pop() else {
            return Vec::new();
        };
        for (i, id) in class_chain.iter().enumerate().rev() {
            let (alpha, basis) = if i == 0 {
                (a.class, Basis::Class)
            } else {
                (a.parent_class, Basis::ParentClass)
            };
            chain.push((Context::Class(*id), alpha, basis));
        }
        if let Some(code) = code {
            chain.push((Context::Chapter(code.chapter()), a.chapter, Basis::Chapter));
            chain.push((
                Context::Subchapter(code.subchapter()),
                a.subchapter,
                Basis::Subchapter,
            ));
            chain.push((Context::Code(code.value()), a.code, Basis::Code));
            if let Some(p) = provider {
                chain.push((
                    Context::ProviderSubchapter(p.division(), code.subchapter()),
                    a.provider,
                    Basis::Provider,
                ));
            }
        }
        let Some(prior) = self
            .tables
            .get(&Context::Class(root))
            .filter(|d| d.total > 0.0)
        else {
            return Vec::new();
        };
        let divisions: Vec<NaceKey> = prior.cells.keys().copied().collect();
        let mut p: Vec<f64> = divisions
            .iter()
            .map(|d| prior.cells.get(d).map_or(0.0, |c| c.weight) / prior.total)
            .collect();
        let mut basis: Vec<(Basis, &Cell)> = divisions
            .iter()
            .map(|d| (Basis::Prior, &prior.cells[d]))
            .collect();
        for (ctx, alpha, level) in &chain {
            let Some(dist) = self.tables.get(ctx).filter(|d| d.total > 0.0) else {
                continue;
            };
            for (i, d) in divisions.iter().enumerate() {
                let cell = dist.cells.get(d);
                let n = cell.map_or(0.0, |c| c.weight);
                p[i] = (n + alpha * p[i]) / (dist.total + alpha);
                if let Some(cell) = cell.filter(|c| c.weight > 0.0) {
                    basis[i] = (*level, cell);
                }
            }
        }
        let mut out: Vec<Prediction> = divisions
            .iter()
            .zip(p)
            .zip(basis)
            .filter(|((_, p), _)| *p > 0.0)
            .map(|((division, probability), (basis, cell))| Prediction {
                division: *division,
                probability,
                basis,
                exchanges: cell.exchanges,
                finer: cell
                    .finer
                    .iter()
                    .map(|(k, w)| (*k, w / cell.weight))
                    .collect(),
                class_boost: a.class_boost,
            })
            .collect();
        out.sort_by(|x, y| {
            y.probability
                .total_cmp(&x.probability)
                .then_with(|| x.division.cmp(&y.division))
        });
        out
    }

    /// Every division, group and class some evidence names as a receiver.
    pub fn receiver_keys(&self) -> std::collections::BTreeSet<NaceKey> {
        self.tables
            .values()
            .flat_map(|d| d.cells.iter())
            .flat_map(|(div, cell)| std::iter::once(*div).chain(cell.finer.keys().copied()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tax() -> Taxonomy {
        Taxonomy::builtin().expect("taxonomy")
    }

    fn obs(tax: &Taxonomy, receiver: &str, code: &str, case: u32) -> Observation {
        let code = EwcCode::parse(code).expect("code");
        Observation {
            receiver: NaceKey::parse(receiver).expect("nace"),
            code: Some(code),
            class: tax.class_id_of_ewc(code).expect("class"),
            provider: None,
            weight: 1.0,
            source: Source::CaseBase,
            case: Some(case),
        }
    }

    fn params() -> ModelParams {
        ModelParams {
            weights: SourceWeights {
                case_base: 1.0,
                park: 1.0,
                epa_rei: 1.0,
                profile: 1.0,
                prior_statistics: 1.0,
                per_case_cap: 1e9,
                intermediaries: 1.0,
            },
            alpha: Concentrations {
                provider: 1.0,
                provider_activity: 1.0,
                code: 1.0,
                subchapter: 1.0,
                chapter: 1.0,
                class: 1.0,
                parent_class: 1.0,
                class_boost: 0.0,
            },
        }
    }

    #[test]
    fn the_exact_code_outweighs_a_broadly_documented_division() {
        let t = tax();
        // Power plants (35) take many combustible wastes of chapter 03; the exact code 03 01 05 was
        // documented once, towards panels (16.21).
        let mut base = EvidenceBase::default();
        for (i, code) in ["030101", "030104", "030199", "030307", "030310"]
            .iter()
            .enumerate()
        {
            base.observations.push(obs(&t, "35.11", code, i as u32));
        }
        base.observations.push(obs(&t, "16.21", "030105", 9));
        let m = ReceiverModel::fit(&base, params(), &t, |_| true);
        let code = EwcCode::parse("030105").expect("code");
        let class = t.class_id_of_ewc(code).expect("class");
        let p = m.predict(&t, Some(code), class, None);
        assert_eq!(p[0].division.to_string(), "16", "{p:?}");
        assert_eq!(p[0].basis, Basis::Code);
        assert_eq!(p[0].finer[0].0.to_string(), "16.21");
        // Probabilities form a distribution.
        let sum: f64 = p.iter().map(|x| x.probability).sum();
        assert!((sum - 1.0).abs() < 1e-9, "{sum}");
        // Another code of the chapter falls back on the chapter: power first.
        let other = EwcCode::parse("030399").expect("code");
        let p = m.predict(&t, Some(other), t.class_id_of_ewc(other).expect("c"), None);
        assert_eq!(p[0].division.to_string(), "35", "{p:?}");
    }

    #[test]
    fn no_evidence_in_a_category_gives_no_receiver() {
        let t = tax();
        let mut base = EvidenceBase::default();
        base.observations.push(obs(&t, "23.51", "100102", 1));
        let m = ReceiverModel::fit(&base, params(), &t, |_| true);
        let heat = t.id("energy/heat/low_temperature").expect("heat");
        assert!(m.predict(&t, None, heat, None).is_empty());
        // Left-out observations are not counted.
        let m = ReceiverModel::fit(&base, params(), &t, |o| o.case != Some(1));
        let ash = t.id("material/mineral/ash").expect("ash");
        assert!(m.predict(&t, None, ash, None).is_empty());
    }

    #[test]
    fn builtin_parameters_load() {
        let p = ModelParams::builtin().expect("params");
        assert!(p.weights.case_base > 0.0);
        // Every named parameter reads and writes its own field.
        assert_eq!(p.entries().len(), PARAMETERS.len());
        let mut q = p;
        assert!(q.set("alpha.code", 7.5) && q.alpha.code == 7.5);
        assert!(!q.set("alpha.nothing", 1.0));
    }
}
