use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use super::*;
use crate::matching::engine::rank;
use crate::matching::snapshot::{SnapActor, SnapResource};
use crate::matching::synth::{generate, load_communes_path};
use crate::matching::{
    Knowledge, MatchingSettings, NeutralPriority, Taxonomy, detect, detect_offers,
};

struct Fixture {
    taxonomy: Taxonomy,
    knowledge: Knowledge,
    actors: Vec<SnapActor>,
    resources: Vec<SnapResource>,
}

/// Generated actors and resources, France squeezed threefold and positions rounded to 0.02° so that
/// searches are full and many points lie at the same distance (ties cut by the pools).
fn fixture(n: usize, seed: u64) -> Fixture {
    let reference = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reference");
    let communes =
        load_communes_path(&Path::new(reference).join("geo/fr_communes.csv")).expect("communes");
    let (mut actors, resources) = generate(&communes, n, seed).expect("generate");
    for a in &mut actors {
        a.lat = ((47.0 + (a.lat - 46.5) / 3.0) * 50.0).round() / 50.0;
        a.lng = ((4.5 + (a.lng - 2.5) / 3.0) * 50.0).round() / 50.0;
    }
    let taxonomy = Taxonomy::builtin().expect("taxonomy");
    let knowledge = Knowledge::load(
        &Path::new(reference).join("cases/maestri_exchanges_part_a.csv"),
        &taxonomy,
    )
    .expect("knowledge");
    Fixture {
        taxonomy,
        knowledge,
        actors,
        resources,
    }
}

impl Fixture {
    fn snapshot(&self) -> Snapshot {
        Snapshot::build(
            self.actors.clone(),
            self.resources.clone(),
            &self.taxonomy,
            &self.knowledge,
        )
    }

    /// One random change of the kinds a service sees: a resource added, removed or edited, an actor
    /// moved (onto another actor's site: ties), re-classified, added or removed.
    fn change(&mut self, rng: &mut StdRng) -> &'static str {
        let id = Uuid::from_u128(rng.random());
        let r = rng.random_range(0..self.resources.len());
        let a = rng.random_range(0..self.actors.len());
        match rng.random_range(0..8) {
            0 => {
                let mut copy = self.resources[r].clone();
                copy.id = id;
                copy.actor_id = self.actors[a].id;
                self.resources.push(copy);
                "resource added"
            }
            1 => {
                self.resources.swap_remove(r);
                "resource removed"
            }
            2 => {
                let q = &mut self.resources[r].yearly_quantity;
                *q = Some(q.unwrap_or(10.0) * 3.0);
                "quantity changed"
            }
            3 => {
                let other = self.resources[rng.random_range(0..self.resources.len())].clone();
                let res = &mut self.resources[r];
                (res.class, res.ewc_code) = (other.class, other.ewc_code);
                "class changed"
            }
            4 => {
                let to = self.actors[rng.random_range(0..self.actors.len())].clone();
                (self.actors[a].lat, self.actors[a].lng) = (to.lat, to.lng);
                "actor moved"
            }
            5 => {
                let naf = self.actors[rng.random_range(0..self.actors.len())]
                    .naf_code
                    .clone();
                self.actors[a].naf_code = naf;
                "activity changed"
            }
            6 => {
                let mut actor = self.actors[a].clone();
                actor.id = id;
                let mut need = self.resources[r].clone();
                (need.id, need.actor_id) = (Uuid::from_u128(rng.random()), id);
                self.actors.push(actor);
                self.resources.push(need);
                "actor added"
            }
            _ => {
                // Its resources stay in the input: the snapshot leaves them out (unknown actor).
                self.actors.swap_remove(a);
                "actor removed"
            }
        }
    }
}

/// Candidates in the order of a full detection: by offer, then best first.
fn in_detection_order(mut candidates: Vec<Candidate>) -> Vec<Candidate> {
    candidates.sort_by(|a, b| a.offer.cmp(&b.offer).then_with(|| rank(a, b)));
    candidates
}

/// After any mix of changes, the offers carried over plus the offers matched again give exactly the
/// full detection of the new snapshot (every field, bit for bit), while matching again only a part.
#[test]
fn carried_and_rematched_offers_give_the_full_detection() {
    let mut fixture = fixture(3_000, 5);
    let settings = MatchingSettings::default();
    let mut rng = StdRng::seed_from_u64(17);
    let mut previous = fixture.snapshot();
    let mut before = detect(&previous, &settings, &NeutralPriority).expect("detect");
    let (mut rematched, mut offers) = (0, 0);
    for round in 0..40 {
        let changes: Vec<&str> = (0..rng.random_range(1..=4))
            .map(|_| fixture.change(&mut rng))
            .collect();
        let next = fixture.snapshot();
        let carry = Carry::plan(&previous, &next, &settings.detection, usize::MAX).expect("a plan");
        let mut incremental: Vec<Candidate> = before
            .iter()
            .filter(|c| carry.carries(c.offer))
            .map(|c| {
                carry
                    .moved(c)
                    .expect("a carried candidate keeps its parties")
            })
            .collect();
        incremental.extend(
            detect_offers(&next, carry.rematched(), &settings, &NeutralPriority).expect("detect"),
        );
        let full = detect(&next, &settings, &NeutralPriority).expect("detect");
        assert_eq!(
            in_detection_order(incremental),
            full,
            "round {round}: {changes:?}"
        );
        rematched += carry.rematched().len();
        offers += next
            .resources()
            .iter()
            .filter(|r| r.kind == ResourceKind::Offer)
            .count();
        (previous, before) = (next, full);
    }
    // Not everything again: the changes reach a part of the offers.
    assert!(
        rematched * 4 < offers,
        "{rematched} offers matched again of {offers}"
    );
}

#[test]
fn nothing_changed_carries_every_offer() {
    let fixture = fixture(1_000, 3);
    let settings = MatchingSettings::default();
    let (a, b) = (fixture.snapshot(), fixture.snapshot());
    let carry = Carry::plan(&a, &b, &settings.detection, 0).expect("no change");
    assert!(carry.rematched().is_empty());
    assert_eq!(carry.changes(), 0);
    let offers = a
        .resources()
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind == ResourceKind::Offer);
    for (i, _) in offers {
        assert!(carry.carries(i as u32));
    }
}

#[test]
fn too_many_changes_leave_the_plan_to_a_full_detection() {
    let mut fixture = fixture(1_000, 3);
    let settings = MatchingSettings::default();
    let previous = fixture.snapshot();
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..20 {
        fixture.change(&mut rng);
    }
    let next = fixture.snapshot();
    assert!(Carry::plan(&previous, &next, &settings.detection, 5).is_none());
    assert!(Carry::plan(&previous, &next, &settings.detection, 1_000).is_some());
}
