//! Ranking a list of synergies: the territorial priority from the territory's AFME account
//! ([`Prioritiser`]) and the page of a territory's or an actor's list ([`ranked_page`]), which
//! materialises only the synergies of the requested page.

use uuid::Uuid;

use crate::api::error::ApiError;
use crate::api::{Page, State};
use crate::auth::Caller;
use crate::detection::{Brief, Built, Positions, pooling_score};
use crate::matching::Synergy;
use crate::matching::pooling::PoolingGroup;

use super::output::{Labels, SynergyItem, pooling_out, shows_status, substitution_out};
use super::query::SynergyQuery;

/// Sets the territorial-priority component of synergies from a territory's AFME account and
/// recomputes their score: a synergy in a family the territory imports or landfills a lot ranks
/// higher than an otherwise equal one.
pub struct Prioritiser {
    report: Option<crate::afme::priority::PriorityReport>,
    weights: crate::matching::ScoringWeights,
}

impl Prioritiser {
    pub fn neutral(state: &State) -> Prioritiser {
        Prioritiser {
            report: None,
            weights: state.detection.settings.weights.clone(),
        }
    }

    /// The priorities of a territory's latest account (neutral without one).
    pub async fn of_territory(state: &State, code: Option<&str>) -> Result<Prioritiser, ApiError> {
        let report = match code.map(str::trim).filter(|c| !c.is_empty()) {
            Some(code) => {
                Some(crate::api::afme::priorities_for(state, code).await?).filter(|r| !r.neutral)
            }
            None => None,
        };
        Ok(Prioritiser {
            report,
            weights: state.detection.settings.weights.clone(),
        })
    }

    /// Whether scores are the build's own (no territorial account to weigh them).
    fn is_neutral(&self) -> bool {
        self.report.is_none()
    }

    /// The AFME family of a synergy's resource: from its class, else from its EWC code.
    pub fn family(s: &Synergy) -> crate::afme::model::Family {
        crate::afme::families::FamilyTable::builtin()
            .family_for_resource(&s.class, s.ewc_code.as_deref())
    }

    /// `score` of a synergy of `class` and `ewc_code` whose territorial priority was `was`, with
    /// the territory's priority instead: the score is a weighted mean, so only that term moves.
    /// Lists rank detected synergies by this value without materialising them, and show it.
    fn prioritised(&self, score: f64, was: f64, class: &str, ewc_code: Option<&str>) -> f64 {
        let Some(report) = &self.report else {
            return score;
        };
        let family =
            crate::afme::families::FamilyTable::builtin().family_for_resource(class, ewc_code);
        let total: f64 = self.weights.as_array().iter().sum();
        if total <= 0.0 {
            return score;
        }
        let moved = self.weights.territorial_priority
            * (crate::matching::score::clamp01(report.priority(family))
                - crate::matching::score::clamp01(was))
            / total;
        crate::matching::score::clamp01(score + moved)
    }

    /// The score of a detected synergy with the territory's priority (`brief` of a build whose
    /// territorial priority is neutral).
    fn score(&self, brief: &crate::detection::Brief<'_>) -> f64 {
        use crate::matching::TerritorialPriority as _;
        let mut buf = [0u8; 6];
        let neutral = crate::matching::NeutralPriority.priority(brief.class, None);
        self.prioritised(brief.score, neutral, brief.class, brief.ewc(&mut buf))
    }

    /// The synergy with the territory's priority in its components and score.
    pub fn apply(&self, s: &Synergy) -> Synergy {
        let mut out = s.clone();
        if let Some(report) = &self.report {
            out.score = self.prioritised(
                s.score,
                s.components.territorial_priority,
                &s.class,
                s.ewc_code.as_deref(),
            );
            out.components.territorial_priority = report.priority(Self::family(s));
        }
        out
    }
}

/// A synergy a list keeps, before it is materialised: its index in the build and its score in the
/// list. Lists rank these light entries and build the full items of the requested page only.
#[derive(Debug, Clone, Copy)]
enum Ranked {
    Substitution(u32),
    Pooling(usize),
}

/// Which synergies a list ranks: positions from the build's index (`None`: all), then the exact
/// filters of substitutions and pooling groups.
pub(super) struct Selection<'a, S, P> {
    pub(super) candidates: Option<&'a Positions>,
    pub(super) substitution: S,
    pub(super) pooling: P,
}

/// A page of synergies (substitution and pooling) touching a territory, ranked by score.
pub(super) fn ranked_page(
    labels: &Labels<'_>,
    caller: &Caller,
    built: &Built,
    query: &SynergyQuery,
    priority: &Prioritiser,
    selection: Selection<impl Fn(&Brief<'_>) -> bool, impl Fn(&PoolingGroup) -> bool>,
) -> Result<Page<SynergyItem>, ApiError> {
    let Selection {
        candidates,
        substitution: keep_substitution,
        pooling: keep_pooling,
    } = selection;
    let state = labels.state;
    if query.max_latent.is_some() {
        return Err(ApiError::field(
            "max_latent",
            "only for one resource's matches (/resources/{id}/matches, /match): lists keep 3 latent receivers per offer",
        ));
    }
    // The territory's or actor's synergies from the build's index, else every one.
    let substitutions: Box<dyn Iterator<Item = u32>> = match candidates {
        Some(p) => Box::new(p.synergies.iter().copied()),
        None => Box::new(0..built.synergies.len() as u32),
    };
    let groups: Box<dyn Iterator<Item = usize>> = match candidates {
        Some(p) => Box::new(p.pooling.iter().map(|&i| i as usize)),
        None => Box::new(0..built.pooling.len()),
    };
    let substitutions = substitutions
        .filter_map(|i| Some((i, built.brief(i)?)))
        .filter(|(_, s)| keep_substitution(s))
        .map(|(i, s)| (i, s, priority.score(&s)))
        .filter(|(_, s, score)| query.keeps(s.class, s.latent, *score))
        .map(|(i, s, score)| (score, s.id, Ranked::Substitution(i)));
    let mut groups: Vec<(f64, Uuid, Ranked)> = groups
        .filter_map(|i| Some((i, built.pooling.get(i)?)))
        .filter(|(_, g)| query.keeps_pooling(g) && keep_pooling(g))
        .map(|(i, g)| (pooling_score(g), g.id, Ranked::Pooling(i)))
        .collect();
    let order = |a: &(f64, Uuid, Ranked), b: &(f64, Uuid, Ranked)| {
        b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1))
    };
    groups.sort_by(order);
    let ranked: Vec<(f64, Uuid, Ranked)> = if priority.is_neutral() {
        // The build keeps substitutions best first (score, then id: this order), and the index
        // gives positions in ascending order: merged with the few groups, the first items are the
        // page's, and a list reads O(page) synergies, not its territory's all.
        let (offset, limit) = crate::api::page_window(state, &query.page())?;
        let wanted = offset.saturating_add(limit).saturating_add(1);
        let mut substitutions = substitutions.peekable();
        let mut groups = groups.into_iter().peekable();
        let mut out = Vec::with_capacity(wanted.min(1_024));
        while out.len() < wanted {
            let next = match (substitutions.peek(), groups.peek()) {
                (Some(s), Some(g)) if order(g, s).is_lt() => groups.next(),
                (Some(_), _) => substitutions.next(),
                (None, _) => groups.next(),
            };
            match next {
                Some(item) => out.push(item),
                None => break,
            }
        }
        out
    } else {
        let mut all: Vec<(f64, Uuid, Ranked)> = substitutions.chain(groups).collect();
        all.sort_by(order);
        all
    };
    let (range, next_cursor) = crate::api::page_bounds(state, ranked.len(), &query.page())?;
    let show_status = shows_status(caller);
    let items =
        ranked[range]
            .iter()
            .filter_map(|(_, _, entry)| match *entry {
                Ranked::Substitution(i) => Some(SynergyItem::Substitution(Box::new(
                    substitution_out(built, &priority.apply(&built.synergy_at(i)?), show_status),
                ))),
                Ranked::Pooling(i) => Some(SynergyItem::Pooling(Box::new(pooling_out(
                    built,
                    built.pooling.get(i)?,
                    show_status,
                    labels,
                )))),
            })
            .collect();
    Ok(Page { items, next_cursor })
}
