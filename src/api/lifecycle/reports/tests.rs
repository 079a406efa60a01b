use super::*;

fn row(kind: &str, class: &str, ewc: Option<&str>) -> SynergyRow {
    let t = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default();
    SynergyRow {
        id: Uuid::new_v4().to_string(),
        kind: kind.into(),
        offer_id: None,
        need_id: None,
        provider_actor_id: None,
        receiver_actor_id: None,
        class: class.into(),
        ewc_code: ewc.map(str::to_owned),
        latent: false,
        score: 0.5,
        distance_km: Some(1.0),
        quantity: Some(500.0),
        base_unit: Some("t".into()),
        detail: r#"{"impact":{"quantity_per_year":500,"base_unit":"t","diverted_tonnes":250,"co2e_avoided_t":125,"transport_co2e_t":5,"net_co2e_t":120}}"#.into(),
        status: "implemented".into(),
        active: true,
        first_detected_at: t,
        last_detected_at: t,
        retired_at: None,
        status_reason: None,
        status_changed_at: Some(t),
        realised_quantity: None,
        realised_diverted_t: None,
        realised_co2e_t: None,
        fingerprint: 0,
    }
}

fn report(import_dependence: Option<f64>) -> PriorityReport {
    PriorityReport {
        territory: "21".into(),
        year: Some(2015),
        formula: String::new(),
        neutral: false,
        families: vec![crate::afme::priority::FamilyPriority {
            family: Family::AgriculturalFood,
            import_dependence,
            landfill_share: None,
            dmc_weight: None,
            priority: 0.5,
        }],
    }
}

#[test]
fn estimates_realised_values_and_scaling() {
    let r = row("substitution", "material/biomass/wood", Some("030105"));
    assert_eq!(family_of(&r), Family::AgriculturalFood);
    let e = effects(
        &Figures::of_row(&r),
        Family::AgriculturalFood,
        &report(Some(0.75)),
    );
    assert_eq!(
        (e.exchanged_t, e.diverted_t, e.co2e_t, e.imports_t),
        (500.0, 250.0, 120.0, 500.0)
    );
    assert!(!e.realised);
    // only the quantity realised: estimates scale
    let mut q = r.clone();
    q.realised_quantity = Some(400.0);
    let e = effects(
        &Figures::of_row(&q),
        Family::AgriculturalFood,
        &report(Some(0.75)),
    );
    assert_eq!(
        (e.exchanged_t, e.diverted_t, e.co2e_t),
        (400.0, 200.0, 96.0)
    );
    // realised values override
    q.realised_diverted_t = Some(300.0);
    q.realised_co2e_t = Some(10.0);
    let e = effects(
        &Figures::of_row(&q),
        Family::AgriculturalFood,
        &report(Some(0.5)),
    );
    assert_eq!(
        (e.exchanged_t, e.diverted_t, e.co2e_t, e.imports_t),
        (400.0, 300.0, 10.0, 0.0)
    );
    assert!(e.realised && !e.substitutes_import, "0.5 is not > 0.5");
    // not in tonnes: nothing exchanged in t
    let mut heat = r.clone();
    heat.base_unit = Some("MWh".into());
    assert_eq!(
        effects(
            &Figures::of_row(&heat),
            Family::AgriculturalFood,
            &report(None)
        )
        .exchanged_t,
        0.0
    );
    // pooling: realised only
    let mut pool = row("pooling", "03 01 05", None);
    assert_eq!(
        family_of(&pool),
        FamilyTable::builtin().family_for_ewc("03 01 05")
    );
    assert_eq!(
        effects(
            &Figures::of_row(&pool),
            Family::AgriculturalFood,
            &report(Some(1.0))
        ),
        Effects::default()
    );
    pool.realised_diverted_t = Some(12.0);
    assert_eq!(
        effects(
            &Figures::of_row(&pool),
            Family::AgriculturalFood,
            &report(Some(1.0))
        )
        .diverted_t,
        12.0
    );
}

#[test]
fn funnel_counts_the_furthest_stage() {
    let mk = |status: SynergyStatus, reached: usize| Counted {
        id: Uuid::nil(),
        kind: "substitution",
        status,
        family: Family::AgriculturalFood,
        reached,
        year: 2026,
        effects: Effects {
            diverted_t: 1.0,
            ..Effects::default()
        },
    };
    let items = [
        mk(SynergyStatus::Implemented, 3),
        mk(SynergyStatus::Rejected, 1),
        mk(SynergyStatus::InStudy, 2),
        mk(SynergyStatus::Detected, 0),
    ];
    let k = kpi_block(&items);
    assert_eq!(k.synergies, 4);
    let reached: Vec<usize> = k.funnel.iter().map(|s| s.reached).collect();
    assert_eq!(reached, vec![4, 3, 2, 1]);
    let rates: Vec<Option<f64>> = k.funnel.iter().map(|s| s.rate).collect();
    assert_eq!(rates, vec![Some(1.0), Some(0.75), Some(0.5), Some(0.25)]);
    assert_eq!(k.funnel[3].from_previous, Some(0.5));
    assert_eq!(k.funnel[0].from_previous, None);
    assert_eq!(
        (k.counts.implemented, k.counts.rejected, k.counts.in_study),
        (1, 1, 1)
    );
    assert_eq!(
        (k.implemented.synergies, k.implemented.tonnes_diverted_t),
        (1, 1.0)
    );
    assert_eq!(k.in_progress.synergies, 1);
    let empty = kpi_block(&[]);
    assert!(empty.funnel.iter().all(|s| s.rate.is_none()));
}
