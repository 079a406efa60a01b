//! The lifecycle of a synergy, as facilitators follow it:
//!
//! ```text
//! detected ──▶ proposed ──▶ in_study ──▶ implemented
//!    │            │            │
//!    └────────────┴────────────┴──▶ rejected | abandoned   (with a reason)
//! ```
//!
//! `detected`, `proposed` and `in_study` are open; `implemented`, `rejected` and `abandoned` are
//! final. Every change is checked here; the database layer records it with its history.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a synergy stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SynergyStatus {
    /// Found by the detection; nobody acted on it yet (the default).
    Detected,
    /// Put to the parties by a facilitator.
    Proposed,
    /// The parties are studying it (tests, contracts, permits).
    InStudy,
    /// The exchange takes place: realised quantities and impacts can be entered.
    Implemented,
    /// Turned down by a party (with a reason).
    Rejected,
    /// Given up after it started (with a reason).
    Abandoned,
}

/// The stages of the funnel, in order: a synergy that reached a stage reached every earlier one.
pub const FUNNEL: [SynergyStatus; 4] = [
    SynergyStatus::Detected,
    SynergyStatus::Proposed,
    SynergyStatus::InStudy,
    SynergyStatus::Implemented,
];

impl SynergyStatus {
    pub const ALL: [SynergyStatus; 6] = [
        SynergyStatus::Detected,
        SynergyStatus::Proposed,
        SynergyStatus::InStudy,
        SynergyStatus::Implemented,
        SynergyStatus::Rejected,
        SynergyStatus::Abandoned,
    ];

    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            SynergyStatus::Detected => "detected",
            SynergyStatus::Proposed => "proposed",
            SynergyStatus::InStudy => "in_study",
            SynergyStatus::Implemented => "implemented",
            SynergyStatus::Rejected => "rejected",
            SynergyStatus::Abandoned => "abandoned",
        }
    }

    pub fn parse(text: &str) -> Option<SynergyStatus> {
        SynergyStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Detected, proposed or in study: the synergy can still move.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            SynergyStatus::Detected | SynergyStatus::Proposed | SynergyStatus::InStudy
        )
    }

    /// Implemented, rejected or abandoned: no change is allowed.
    pub fn is_final(self) -> bool {
        !self.is_open()
    }

    /// Rejecting or abandoning needs a reason.
    pub fn needs_reason(self) -> bool {
        matches!(self, SynergyStatus::Rejected | SynergyStatus::Abandoned)
    }

    /// Position in the funnel (detected 0 … implemented 3); `None` for rejected and abandoned.
    pub fn stage(self) -> Option<usize> {
        FUNNEL.iter().position(|s| *s == self)
    }
}

impl fmt::Display for SynergyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The statuses a synergy may move to from `from` (empty when `from` is final).
pub fn allowed_next(from: SynergyStatus) -> &'static [SynergyStatus] {
    use SynergyStatus::*;
    match from {
        Detected => &[Proposed, Rejected, Abandoned],
        Proposed => &[InStudy, Rejected, Abandoned],
        InStudy => &[Implemented, Rejected, Abandoned],
        Implemented | Rejected | Abandoned => &[],
    }
}

/// Why a status change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// Not an edge of the lifecycle (including "to the same status" and anything from a final one).
    #[error("{}", illegal_message(*from, *to, allowed))]
    Illegal {
        from: SynergyStatus,
        to: SynergyStatus,
        allowed: &'static [SynergyStatus],
    },
    /// Rejected and abandoned need a non-empty reason.
    #[error("a reason is required to set a synergy to `{to}`")]
    ReasonRequired { to: SynergyStatus },
}

fn illegal_message(from: SynergyStatus, to: SynergyStatus, allowed: &[SynergyStatus]) -> String {
    let names = allowed
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if allowed.is_empty() {
        format!(
            "cannot change a synergy from `{from}` to `{to}`: `{from}` is final, no status change is allowed"
        )
    } else if from == to {
        format!("the synergy is already `{from}`; allowed next statuses: {names}")
    } else {
        format!("cannot change a synergy from `{from}` to `{to}`; allowed next statuses: {names}")
    }
}

/// Checks one status change: it must be an edge of the lifecycle, and rejecting or abandoning
/// needs a non-blank reason.
pub fn check_transition(
    from: SynergyStatus,
    to: SynergyStatus,
    reason: Option<&str>,
) -> Result<(), TransitionError> {
    let allowed = allowed_next(from);
    if !allowed.contains(&to) {
        return Err(TransitionError::Illegal { from, to, allowed });
    }
    if to.needs_reason() && reason.is_none_or(|r| r.trim().is_empty()) {
        return Err(TransitionError::ReasonRequired { to });
    }
    Ok(())
}

/// The furthest funnel stage a synergy reached, from its current status and the statuses its
/// history went through (a synergy rejected while in study reached `in_study`).
pub fn furthest_stage(
    current: SynergyStatus,
    history: impl IntoIterator<Item = SynergyStatus>,
) -> usize {
    history
        .into_iter()
        .chain(std::iter::once(current))
        .filter_map(SynergyStatus::stage)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::SynergyStatus::*;
    use super::*;

    /// Every legal edge of the lifecycle, written out by hand.
    const LEGAL: [(SynergyStatus, SynergyStatus); 9] = [
        (Detected, Proposed),
        (Proposed, InStudy),
        (InStudy, Implemented),
        (Detected, Rejected),
        (Proposed, Rejected),
        (InStudy, Rejected),
        (Detected, Abandoned),
        (Proposed, Abandoned),
        (InStudy, Abandoned),
    ];

    #[test]
    fn every_pair_is_allowed_or_refused_as_the_lifecycle_says() {
        let mut allowed = 0;
        for from in SynergyStatus::ALL {
            for to in SynergyStatus::ALL {
                let legal = LEGAL.contains(&(from, to));
                let result = check_transition(from, to, Some("the receiver changed supplier"));
                if legal {
                    allowed += 1;
                    assert_eq!(result, Ok(()), "{from} → {to} should be allowed");
                } else {
                    match result {
                        Err(TransitionError::Illegal {
                            from: f,
                            to: t,
                            allowed,
                        }) => {
                            assert_eq!((f, t), (from, to));
                            assert_eq!(
                                allowed,
                                allowed_next(from),
                                "{from} → {to} names what is allowed"
                            );
                        }
                        other => {
                            panic!("{from} → {to} should be refused as illegal, got {other:?}")
                        }
                    }
                }
            }
        }
        assert_eq!(allowed, LEGAL.len());
    }

    #[test]
    fn allowed_next_lists_exactly_the_legal_edges() {
        for from in SynergyStatus::ALL {
            let expected: Vec<SynergyStatus> = LEGAL
                .iter()
                .filter(|(f, _)| *f == from)
                .map(|(_, t)| *t)
                .collect();
            let mut got = allowed_next(from).to_vec();
            got.sort();
            assert_eq!(got, expected, "from {from}");
        }
        for terminal in [Implemented, Rejected, Abandoned] {
            assert!(allowed_next(terminal).is_empty(), "{terminal} is final");
            assert!(terminal.is_final() && !terminal.is_open());
        }
        for open in [Detected, Proposed, InStudy] {
            assert!(open.is_open());
        }
    }

    #[test]
    fn rejecting_and_abandoning_need_a_reason() {
        for from in [Detected, Proposed, InStudy] {
            for to in [Rejected, Abandoned] {
                for missing in [None, Some(""), Some("   \n")] {
                    assert_eq!(
                        check_transition(from, to, missing),
                        Err(TransitionError::ReasonRequired { to }),
                        "{from} → {to} with {missing:?}"
                    );
                }
                assert_eq!(check_transition(from, to, Some("too far")), Ok(()));
            }
        }
        // Moving forward needs no reason.
        assert_eq!(check_transition(Detected, Proposed, None), Ok(()));
        assert_eq!(check_transition(Proposed, InStudy, None), Ok(()));
        assert_eq!(check_transition(InStudy, Implemented, None), Ok(()));
        // An illegal change is illegal before the reason is looked at.
        assert!(matches!(
            check_transition(Implemented, Rejected, None),
            Err(TransitionError::Illegal { .. })
        ));
    }

    #[test]
    fn messages_name_the_allowed_statuses() {
        let err = check_transition(Detected, Implemented, None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`detected`") && text.contains("`implemented`"),
            "{text}"
        );
        assert!(text.contains("proposed, rejected, abandoned"), "{text}");
        let same = check_transition(Proposed, Proposed, None)
            .unwrap_err()
            .to_string();
        assert!(
            same.contains("already `proposed`") && same.contains("in_study, rejected, abandoned"),
            "{same}"
        );
        let fin = check_transition(Rejected, Proposed, None)
            .unwrap_err()
            .to_string();
        assert!(fin.contains("final"), "{fin}");
    }

    #[test]
    fn names_round_trip_on_the_wire_and_in_storage() {
        for s in SynergyStatus::ALL {
            assert_eq!(SynergyStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::Value::String(s.as_str().into())
            );
            let back: SynergyStatus =
                serde_json::from_value(serde_json::Value::String(s.as_str().into())).unwrap();
            assert_eq!(back, s);
        }
        assert_eq!(InStudy.as_str(), "in_study");
        assert_eq!(SynergyStatus::parse("InStudy"), None);
        assert!(serde_json::from_str::<SynergyStatus>("\"done\"").is_err());
    }

    #[test]
    fn furthest_stage_follows_the_history() {
        assert_eq!(furthest_stage(Detected, []), 0);
        assert_eq!(
            furthest_stage(Implemented, [Detected, Proposed, InStudy]),
            3
        );
        // rejected while in study: reached in_study
        assert_eq!(
            furthest_stage(
                Rejected,
                [Detected, Proposed, Proposed, InStudy, InStudy, Rejected]
            ),
            2
        );
        // abandoned right after detection
        assert_eq!(furthest_stage(Abandoned, [Detected, Abandoned]), 0);
        assert_eq!(Proposed.stage(), Some(1));
        assert_eq!(Rejected.stage(), None);
    }
}
