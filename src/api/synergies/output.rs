//! What the synergy endpoints answer: substitution synergies and pooling groups with their status,
//! the names of their parties and, for pooling groups, labels and explanations in the reader's
//! language; and whether a reader sees statuses at all.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::State;
use crate::auth::Caller;
use crate::detection::{Built, pooling_score};
use crate::matching::Synergy;
use crate::matching::pooling::PoolingGroup;
use crate::reference::Lang;

/// A substitution synergy with its status and the names of the parties.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubstitutionOut {
    /// Always `substitution`.
    pub kind: String,
    #[serde(flatten)]
    pub synergy: Synergy,
    /// Lifecycle status (`detected`, `proposed`…); absent for keyless public readers, for whom
    /// what facilitators decide about a synergy is not public.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub provider_name: String,
    pub receiver_name: String,
    pub offer_label: Option<String>,
    pub need_label: Option<String>,
}

/// A pooling group (shared need or shared outflow of ≥ 3 nearby actors) with its status and rank.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PoolingOut {
    /// Always `pooling`.
    pub kind: String,
    #[serde(flatten)]
    pub group: PoolingGroup,
    /// Rank among synergies, on the scale of substitution scores (the same components and weights;
    /// docs/MATCHING.md).
    pub score: f64,
    /// Lifecycle status; absent for keyless public readers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// What the members share, in the reader's language (`Accept-Language`): the need class's label,
    /// or the EWC code's label.
    pub label: String,
    /// The resource class of the key (the need class, or the EWC code's class) in the reader's
    /// language; `None` for an EWC code no class rule covers.
    pub class_label: Option<String>,
    /// The members with their names, in the order of `members` (anonymous labels for the actors a
    /// partner or keyless reader may not see).
    pub parties: Vec<ActorName>,
    /// One sentence: who, how close, what, and what they could do together.
    pub explanation_fr: String,
    pub explanation_en: String,
}

/// An actor's id with its name beside it (the gate rewrites `name` to the anonymous label for the
/// actors a partner or keyless reader may not see: `auth::anonymise`, `actor_id` beside `name`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActorName {
    pub actor_id: Uuid,
    pub name: String,
}

/// What the service writes about a synergy in the reader's language: resource class and EWC labels.
pub struct Labels<'a> {
    pub state: &'a State,
    pub lang: Lang,
}

impl Labels<'_> {
    /// A resource class's label (`material/biomass/wood` → « Bois »); `None` for an unknown class.
    pub fn class(&self, class: &str) -> Option<String> {
        self.state
            .detection
            .taxonomy
            .get(class)
            .map(|c| self.lang.pick(&c.label_fr, &c.label_en).to_owned())
    }

    /// An EWC code's label in the reader's language.
    fn ewc(&self, code: &str, lang: Lang) -> Option<String> {
        self.state
            .reference
            .ewc
            .get(code)
            .map(|c| lang.pick(&c.label_fr, &c.label_en).to_owned())
    }

    fn class_in(&self, class: &str, lang: Lang) -> Option<String> {
        self.state
            .detection
            .taxonomy
            .get(class)
            .map(|c| lang.pick(&c.label_fr, &c.label_en).to_owned())
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum SynergyItem {
    Substitution(Box<SubstitutionOut>),
    Pooling(Box<PoolingOut>),
}

/// Whether a reader sees synergy statuses: keyless public readers do not (what facilitators decide
/// about a synergy is theirs and the parties'); key holders do.
pub(super) fn shows_status(caller: &Caller) -> bool {
    !matches!(caller, Caller::Public)
}

pub(super) fn substitution_out(built: &Built, s: &Synergy, show_status: bool) -> SubstitutionOut {
    let name = |id: &Uuid| {
        built
            .actors
            .get(id)
            .map(|a| a.name.clone())
            .unwrap_or_default()
    };
    let label = |id: &Uuid| {
        let snapshot = &built.snapshot;
        snapshot
            .resource_index(*id)
            .map(|i| snapshot.resource(i).label.clone())
    };
    SubstitutionOut {
        kind: "substitution".into(),
        status: show_status.then(|| built.status(&s.id)),
        provider_name: name(&s.provider_actor_id),
        receiver_name: name(&s.receiver_actor_id),
        offer_label: label(&s.offer_id),
        need_label: s.need_id.as_ref().and_then(label),
        synergy: s.clone(),
    }
}

pub(super) fn pooling_out(
    built: &Built,
    g: &PoolingGroup,
    show_status: bool,
    labels: &Labels<'_>,
) -> PoolingOut {
    use crate::matching::pooling::PoolingKeyKind;
    let parties = g
        .members
        .iter()
        .map(|m| ActorName {
            actor_id: m.actor_id,
            name: built
                .actors
                .get(&m.actor_id)
                .map(|a| a.name.clone())
                .unwrap_or_default(),
        })
        .collect();
    let class = match g.key_kind {
        PoolingKeyKind::NeedClass => Some(g.key.clone()),
        PoolingKeyKind::OfferEwc => labels
            .state
            .detection
            .taxonomy
            .class_of_ewc(&g.key)
            .map(|c| c.name.clone()),
    };
    let label_in = |lang: Lang| match g.key_kind {
        PoolingKeyKind::NeedClass => labels.class_in(&g.key, lang),
        PoolingKeyKind::OfferEwc => labels.ewc(&g.key, lang),
    };
    let label = label_in(labels.lang).unwrap_or_else(|| g.key.clone());
    let (explanation_fr, explanation_en) = pooling_explanations(
        g,
        &label_in(Lang::Fr).unwrap_or_else(|| g.key.clone()),
        &label_in(Lang::En).unwrap_or_else(|| g.key.clone()),
    );
    PoolingOut {
        kind: "pooling".into(),
        score: pooling_score(g),
        status: show_status.then(|| built.status(&g.id)),
        label,
        class_label: class.as_deref().and_then(|c| labels.class(c)),
        parties,
        explanation_fr,
        explanation_en,
        group: g.clone(),
    }
}

/// « 5 entreprises à moins de 6 km les unes des autres déclarent un besoin de bois (1200 t/an au
/// total) : achat groupé ou approvisionnement mutualisé possible. » and its English twin. The
/// distance is an upper bound of the distance between two members (twice the radius around the
/// centroid), so the sentence is true of every pair.
fn pooling_explanations(g: &PoolingGroup, label_fr: &str, label_en: &str) -> (String, String) {
    use crate::matching::pooling::PoolingKeyKind;
    let n = g.members.len();
    let km = (2.0 * g.radius_km).ceil().max(1.0);
    let total = g
        .total_yearly_quantity
        .zip(g.base_unit)
        .filter(|(q, _)| q.is_finite() && *q > 0.0);
    let decimals = |q: f64| if q < 10.0 { 1 } else { 0 };
    let total_fr = total
        .map(|(q, u)| {
            format!(
                " ({} {}/an au total)",
                Lang::Fr.number(q, decimals(q)),
                u.as_str()
            )
        })
        .unwrap_or_default();
    let total_en = total
        .map(|(q, u)| {
            format!(
                " ({} {}/year in total)",
                Lang::En.number(q, decimals(q)),
                u.as_str()
            )
        })
        .unwrap_or_default();
    let km_fr = Lang::Fr.number(km, 0);
    match g.key_kind {
        PoolingKeyKind::NeedClass => (
            format!(
                "{n} entreprises à moins de {km_fr} km les unes des autres déclarent un besoin {}{total_fr} : achat groupé ou approvisionnement mutualisé possible.",
                de_fr(label_fr)
            ),
            format!(
                "{n} companies less than {km_fr} km apart declare a need for {}{total_en}: joint purchasing or shared supply possible.",
                lower_first(label_en)
            ),
        ),
        PoolingKeyKind::OfferEwc => (
            format!(
                "{n} entreprises à moins de {km_fr} km les unes des autres produisent le déchet {} « {label_fr} »{total_fr} : collecte ou traitement mutualisé possible.",
                g.key
            ),
            format!(
                "{n} companies less than {km_fr} km apart produce the waste {} “{label_en}”{total_en}: shared collection or treatment possible.",
                g.key
            ),
        ),
    }
}

/// A label inside a sentence: its first letter in lower case, unless it starts an acronym (`CO2`).
fn lower_first(label: &str) -> String {
    let mut chars = label.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && !second.is_uppercase() => {
            first.to_lowercase().chain(label.chars().skip(1)).collect()
        }
        _ => label.to_owned(),
    }
}

/// « de bois », « d’eau chaude »: the French preposition with elision before a vowel or a mute h.
fn de_fr(label: &str) -> String {
    let text = lower_first(label);
    let elides = text
        .chars()
        .next()
        .is_some_and(|c| "aeiouyéèêàâîôûh".contains(c));
    if elides {
        format!("d’{text}")
    } else {
        format!("de {text}")
    }
}
