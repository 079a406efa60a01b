//! A build's substitution synergies in compact form: the engine's candidate and the synergy's id
//! (48 bytes), best first. Lists filter and rank on what a candidate and the snapshot say (parties,
//! class, score); the full synergy (components, explanations, impact) is materialised by the engine
//! for the synergies a reader is shown, never for the whole build — at national scale the full
//! form (~1 KiB with its texts) of every candidate would not fit in memory.

use rayon::prelude::*;
use uuid::Uuid;

use crate::matching::{
    Candidate, Carry, MatchingError, MatchingSettings, NeutralPriority, Snapshot, Synergy,
};

/// One detected substitution synergy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detected {
    pub id: Uuid,
    pub candidate: Candidate,
}

/// The substitution synergies of one build, best first (score descending, then id).
#[derive(Debug, Default)]
pub struct Substitutions(Vec<Detected>);

impl Substitutions {
    /// Every candidate of the snapshot, ranked (the engine's [`crate::matching::detect`]).
    pub fn detect(
        snapshot: &Snapshot,
        settings: &MatchingSettings,
    ) -> Result<Substitutions, MatchingError> {
        let candidates = crate::matching::detect(snapshot, settings, &NeutralPriority)?;
        // The ids (a SHA-1 each) and the ranking run on the threads of the caller's rayon pool: on
        // one thread they were a third of a national detection (6.5M synergies).
        let mut detected: Vec<Detected> = candidates
            .par_iter()
            .map(|&candidate| Detected {
                id: candidate.id(snapshot),
                candidate,
            })
            .collect();
        drop(candidates);
        detected.par_sort_unstable_by(best_first);
        Ok(Substitutions(detected))
    }

    /// The synergies of `snapshot` from those of the previous build: the offers `carry` carries keep
    /// theirs (ids kept, indexes moved), the others are matched again, and the two ranked lists are
    /// merged. The same list as [`Substitutions::detect`] gives; `None` when the plan cannot be
    /// followed (a carried synergy lost a party, which the plan rules out): detect in full then.
    pub fn detect_after(
        previous: &Substitutions,
        carry: &Carry,
        snapshot: &Snapshot,
        settings: &MatchingSettings,
    ) -> Result<Option<Substitutions>, MatchingError> {
        let rematched = crate::matching::detect_offers(
            snapshot,
            carry.rematched(),
            settings,
            &NeutralPriority,
        )?;
        let mut fresh: Vec<Detected> = rematched
            .par_iter()
            .map(|&candidate| Detected {
                id: candidate.id(snapshot),
                candidate,
            })
            .collect();
        fresh.par_sort_unstable_by(best_first);
        // The carried ones keep their order (their scores and ids did not change): merged with the
        // fresh ones as they come, without a copy of the whole list.
        let mut broken = false;
        let mut carried = previous
            .iter()
            .filter(|d| carry.carries(d.candidate.offer))
            .map_while(|d| {
                let moved = carry.moved(&d.candidate);
                broken |= moved.is_none();
                Some(Detected {
                    id: d.id,
                    candidate: moved?,
                })
            })
            .peekable();
        let mut fresh = fresh.into_iter().peekable();
        let mut merged = Vec::with_capacity(previous.len() + fresh.len());
        loop {
            let next = match (carried.peek(), fresh.peek()) {
                (Some(x), Some(y)) if best_first(x, y).is_le() => carried.next(),
                (Some(_), Some(_)) | (None, Some(_)) => fresh.next(),
                (Some(_), None) => carried.next(),
                (None, None) => break,
            };
            merged.extend(next);
        }
        drop(carried);
        if broken {
            return Ok(None);
        }
        Ok(Some(Substitutions(merged)))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, position: u32) -> Option<&Detected> {
        self.0.get(position as usize)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Detected> {
        self.0.iter()
    }

    pub fn as_slice(&self) -> &[Detected] {
        &self.0
    }

    /// A list as given (tests of what reads one).
    #[cfg(test)]
    pub(super) fn from_ranked(ranked: Vec<Detected>) -> Substitutions {
        Substitutions(ranked)
    }
}

/// The order of a build's synergies: score descending, then id.
fn best_first(a: &Detected, b: &Detected) -> std::cmp::Ordering {
    b.candidate
        .score
        .total_cmp(&a.candidate.score)
        .then_with(|| a.id.cmp(&b.id))
}

/// What a list reads of a detected synergy without materialising it.
#[derive(Debug, Clone, Copy)]
pub struct Brief<'a> {
    pub id: Uuid,
    pub score: f64,
    pub latent: bool,
    pub provider_actor_id: Uuid,
    pub receiver_actor_id: Uuid,
    /// Class of the offer (as the full synergy's `class`).
    pub class: &'a str,
    /// The offer's EWC code, six digits.
    pub ewc_code: Option<crate::matching::EwcCode>,
}

impl Detected {
    pub fn brief<'a>(&self, snapshot: &'a Snapshot) -> Brief<'a> {
        let c = &self.candidate;
        let offer = snapshot.resource(c.offer);
        Brief {
            id: self.id,
            score: c.score,
            latent: c.latent,
            provider_actor_id: snapshot.actor(c.provider_actor(snapshot)).id,
            receiver_actor_id: snapshot.actor(c.receiver_actor(snapshot)).id,
            class: &snapshot.taxonomy.class(offer.class).name,
            ewc_code: offer.ewc,
        }
    }

    /// The full synergy, as the engine describes it (`None` only if the snapshot no longer
    /// supports the candidate, which a build's own snapshot always does).
    pub fn materialise(&self, snapshot: &Snapshot, settings: &MatchingSettings) -> Option<Synergy> {
        crate::matching::synergy_of(snapshot, &self.candidate, settings, &NeutralPriority)
    }

    /// [`Detected::materialise`] without the explanations (empty texts): its figures only.
    pub fn figures(&self, snapshot: &Snapshot, settings: &MatchingSettings) -> Option<Synergy> {
        crate::matching::figures_of(snapshot, &self.candidate, settings, &NeutralPriority)
    }
}

impl Brief<'_> {
    /// The offer's EWC code written as six digits into `buf`.
    pub fn ewc<'b>(&self, buf: &'b mut [u8; 6]) -> Option<&'b str> {
        self.ewc_code.map(|code| code.write_compact(buf))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::matching::synth::{generate, load_communes_path};
    use crate::matching::{Knowledge, Taxonomy};

    /// The compact build ranks, counts and describes its synergies exactly as the engine's full
    /// synergies do: same ids in the same order, scores equal bit for bit, the same parties, class
    /// and code, and every one of them materialises.
    #[test]
    fn compact_synergies_are_the_full_synergies_ranked_alike() {
        let reference = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reference");
        let communes = load_communes_path(&Path::new(reference).join("geo/fr_communes.csv"))
            .expect("communes");
        let (actors, resources) = generate(&communes, 3_000, 11).expect("generate");
        let taxonomy = Taxonomy::builtin().expect("taxonomy");
        let knowledge = Knowledge::load(
            &Path::new(reference).join("cases/maestri_exchanges_part_a.csv"),
            &taxonomy,
        )
        .expect("knowledge");
        let snapshot = Snapshot::build(actors, resources, &taxonomy, &knowledge);
        let settings = MatchingSettings::default();
        let full =
            crate::matching::detect_all(&snapshot, &settings, &NeutralPriority).expect("detect");
        let compact = Substitutions::detect(&snapshot, &settings).expect("detect");
        assert!(full.len() > 1_000, "{}", full.len());
        assert_eq!(compact.len(), full.len());
        for (d, s) in compact.iter().zip(&full) {
            assert_eq!(d.id, s.id);
            assert_eq!(d.candidate.score.to_bits(), s.score.to_bits(), "{}", s.id);
            let brief = d.brief(&snapshot);
            assert_eq!(
                (brief.provider_actor_id, brief.receiver_actor_id),
                (s.provider_actor_id, s.receiver_actor_id)
            );
            assert_eq!((brief.class, brief.latent), (s.class.as_str(), s.latent));
            let mut buf = [0u8; 6];
            assert_eq!(brief.ewc(&mut buf), s.ewc_code.as_deref());
            assert_eq!(d.materialise(&snapshot, &settings).as_ref(), Some(s));
            let figures = d.figures(&snapshot, &settings).expect("figures");
            assert_eq!(
                (
                    figures.explanation_fr.as_str(),
                    figures.explanation_en.as_str()
                ),
                ("", "")
            );
            let told = Synergy {
                explanation_fr: s.explanation_fr.clone(),
                explanation_en: s.explanation_en.clone(),
                ..figures
            };
            assert_eq!(
                &told, s,
                "figures and the full synergy differ but for the texts"
            );
        }
    }
}
