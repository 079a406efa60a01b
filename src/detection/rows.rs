//! The stored forms of a detected synergy and of a pooling group (the rows a first decision
//! stores, webhook announcements carry and the lifecycle reports read), their fingerprint, and the
//! pooling groups' score.

use crate::db::models::SynergyRow;
use crate::matching::pooling::PoolingGroup;
use crate::matching::{ScoreComponents, ScoringWeights, Synergy};

/// Stable 64-bit hash of what a synergy stores (its JSON detail, from which every other detected
/// column derives): XXH3 over the serialised form, streamed without building the string.
pub(super) fn fingerprint<T: serde::Serialize>(value: &T) -> i64 {
    struct Sink(xxhash_rust::xxh3::Xxh3);
    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut sink = Sink(xxhash_rust::xxh3::Xxh3::new());
    // Serialising our own structs into a sink that cannot fail does not fail.
    let _ = serde_json::to_writer(&mut sink, value);
    i64::from_ne_bytes(sink.0.digest().to_ne_bytes())
}

/// The stored form of a substitution synergy (also how the lifecycle reports see a synergy of an
/// anonymous view).
pub fn substitution_row(s: &Synergy, fingerprint: i64, now: chrono::NaiveDateTime) -> SynergyRow {
    substitution_row_with(
        s,
        serde_json::to_string(s).unwrap_or_default(),
        fingerprint,
        now,
    )
}

/// [`substitution_row`] with `detail` given: the lifecycle reports need only the impact of each
/// synergy of a territory, and serialising every synergy whole (texts included) was most of a
/// KPI request.
pub fn substitution_row_with(
    s: &Synergy,
    detail: String,
    fingerprint: i64,
    now: chrono::NaiveDateTime,
) -> SynergyRow {
    SynergyRow {
        id: s.id.to_string(),
        kind: "substitution".into(),
        offer_id: Some(s.offer_id.to_string()),
        need_id: s.need_id.map(|n| n.to_string()),
        provider_actor_id: Some(s.provider_actor_id.to_string()),
        receiver_actor_id: Some(s.receiver_actor_id.to_string()),
        class: s.class.clone(),
        ewc_code: s.ewc_code.clone(),
        latent: s.latent,
        score: s.score,
        distance_km: Some(s.distance_km),
        quantity: s.quantity,
        base_unit: s.base_unit.map(|b| b.as_str().to_owned()),
        detail,
        status: "detected".into(),
        active: true,
        first_detected_at: now,
        last_detected_at: now,
        retired_at: None,
        status_reason: None,
        status_changed_at: None,
        realised_quantity: None,
        realised_diverted_t: None,
        realised_co2e_t: None,
        fingerprint,
    }
}

/// The stored form of a pooling group.
pub fn pooling_row(g: &PoolingGroup, fingerprint: i64, now: chrono::NaiveDateTime) -> SynergyRow {
    SynergyRow {
        id: g.id.to_string(),
        kind: "pooling".into(),
        offer_id: None,
        need_id: None,
        provider_actor_id: None,
        receiver_actor_id: None,
        class: g.key.clone(),
        ewc_code: None,
        latent: false,
        score: pooling_score(g),
        distance_km: Some(g.radius_km),
        quantity: g.total_yearly_quantity,
        base_unit: g.base_unit.map(|b| b.as_str().to_owned()),
        detail: serde_json::to_string(g).unwrap_or_default(),
        status: "detected".into(),
        active: true,
        first_detected_at: now,
        last_detected_at: now,
        retired_at: None,
        status_reason: None,
        status_changed_at: None,
        realised_quantity: None,
        realised_diverted_t: None,
        realised_co2e_t: None,
        fingerprint,
    }
}

/// Score of a pooling group on the same scale as a substitution: the same eight components, weighted
/// with the default weights (docs/MATCHING.md). Members share a class (fit 0.9) or a code (1.0); more
/// members cover more of a shared service's fixed cost (`1 − 1/n`); a tighter group is closer
/// (`exp(−radius / 20 km)`); nobody asked to share yet, so confidence is that of a latent synergy (0.5);
/// hazardous codes carry the hazardous regulatory value. A tight group of ten scores about 0.8, below
/// a declared exchange of the same quality.
pub fn pooling_score(g: &PoolingGroup) -> f64 {
    use crate::matching::pooling::PoolingKeyKind;
    use crate::matching::score::{distance_decay, regulatory_ease};
    let n = g.members.len().max(1) as f64;
    let hazardous = g.key.ends_with('*');
    let components = ScoreComponents {
        resource_fit: match g.key_kind {
            PoolingKeyKind::OfferEwc => 1.0,
            PoolingKeyKind::NeedClass => 0.9,
        },
        quantity_coverage: 1.0 - 1.0 / n,
        distance: distance_decay(g.radius_km, 20.0),
        time_overlap: 1.0,
        quality: 0.7,
        regulatory_risk: regulatory_ease(g.key_kind == PoolingKeyKind::OfferEwc, hazardous),
        confidence: 0.5,
        territorial_priority: 0.5,
    };
    components.score(&ScoringWeights::default())
}
