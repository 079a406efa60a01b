//! Allocation: the optimum beats greedy matching; flows name their parties; latent ones are out.

use super::*;

// ---------------------------------------------------------------------------------------------------
// 8. Allocation
// ---------------------------------------------------------------------------------------------------

#[actix_web::test]
async fn allocation_beats_greedy_on_a_constructed_instance() {
    let app = spawn_app().await;
    // Along an east-west line: B ── 20 km ── X ─ 2 km ─ A ── 10 km ── Y. B may not travel over 25 km,
    // so it reaches X only; A reaches X (best score) and Y.
    let x = site(
        &app,
        "Chaufferie X",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 0.0, 0.0),
    )
    .await;
    let a = site(
        &app,
        "Scierie A",
        "16.10A",
        DIJON,
        near(&app, DIJON, 2.0, 0.0),
    )
    .await;
    let y = site(
        &app,
        "Chaufferie Y",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 12.0, 0.0),
    )
    .await;
    let b = site(
        &app,
        "Scierie B",
        "16.10A",
        DIJON,
        near(&app, DIJON, -20.0, 0.0),
    )
    .await;
    let offer_a = resource(&app, &a, sawdust(100.0)).await;
    let mut body_b = sawdust(100.0);
    body_b["max_distance_km"] = json!(25);
    let offer_b = resource(&app, &b, body_b).await;
    let need_x = resource(&app, &x, boiler_need(tonnes(100.0))).await;
    let need_y = resource(&app, &y, boiler_need(tonnes(100.0))).await;

    let declared =
        substitutions(&all_items(&app, "/api/v1/synergies?territory=21&latent=false").await);
    let pair = |o: &str, n: &str| {
        declared
            .iter()
            .find(|s| s["offer_id"] == o && s["need_id"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("synergy {o} → {n} in {declared:#?}"))
    };
    let (ax, ay, bx) = (
        pair(&offer_a, &need_x),
        pair(&offer_a, &need_y),
        pair(&offer_b, &need_x),
    );
    assert!(
        !declared
            .iter()
            .any(|s| s["offer_id"] == offer_b.as_str() && s["need_id"] == need_y.as_str()),
        "B cannot reach Y"
    );
    assert_eq!(declared.len(), 3, "{declared:#?}");
    let (s_ax, s_ay, s_bx) = (num(&ax, "score"), num(&ay, "score"), num(&bx, "score"));
    assert!(
        s_ax > s_ay && s_ax > s_bx,
        "A → X is the best single synergy: {s_ax} {s_ay} {s_bx}"
    );

    let reply = ok(&app, "/api/v1/territories/21/allocation").await;
    let alloc = &reply.body;
    let allocated = |s: &Value| {
        alloc["per_synergy"]
            .as_array()
            .and_then(|v| v.iter().find(|p| p["synergy_id"] == s["id"]))
            .map(|p| num(p, "allocated"))
            // only non-zero flows are listed: a synergy that loses to better uses is absent
            .unwrap_or(0.0)
    };
    // Greedy takes A → X first and then nothing fits; the optimum sends A → Y and B → X.
    approx(allocated(&ay), 100.0, "A → Y");
    approx(allocated(&bx), 100.0, "B → X");
    approx(allocated(&ax), 0.0, "A → X");
    assert!(
        alloc["per_synergy"]
            .as_array()
            .is_some_and(|v| v.len() == 2 && v.iter().all(|p| num(p, "allocated") > 0.0)),
        "only the two non-zero flows: {alloc:#}"
    );
    // Each flow names its parties and the class, in the reader's language.
    let flow_ay = alloc["per_synergy"]
        .as_array()
        .and_then(|v| v.iter().find(|p| p["synergy_id"] == ay["id"]))
        .cloned()
        .unwrap_or_default();
    assert_eq!(flow_ay["provider"]["name"], "Scierie A", "{flow_ay:#}");
    assert_eq!(flow_ay["receiver"]["name"], "Chaufferie Y");
    assert_eq!(flow_ay["class"], "material/biomass/wood");
    let french = str_of(&flow_ay, "class_label").to_owned();
    let english = app
        .get_lang("/api/v1/territories/21/allocation", "en")
        .await;
    let english_label = english.body["per_synergy"]
        .as_array()
        .and_then(|v| v.iter().find(|p| p["synergy_id"] == ay["id"]))
        .map(|p| str_of(p, "class_label").to_owned())
        .unwrap_or_default();
    assert!(!french.is_empty() && !english_label.is_empty());
    assert_ne!(french, english_label, "FR and EN labels");
    // values are rounded to 1e-3 in the answer
    let rounded = |got: f64, want: f64, what: &str| {
        assert!((got - want).abs() <= 5e-4 + 1e-9, "{what}: {got} vs {want}");
    };
    rounded(
        num(alloc, "total_value"),
        100.0 * (s_ay + s_bx),
        "optimal value",
    );
    rounded(num(alloc, "greedy_value"), 100.0 * s_ax, "greedy value");
    assert!(
        num(alloc, "total_value") > num(alloc, "greedy_value") + 1.0,
        "{alloc:#}"
    );
    let tonnes_unit = alloc["by_unit"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["base_unit"] == "t"))
        .cloned()
        .unwrap_or_else(|| panic!("unit t in {alloc:#}"));
    assert_eq!(tonnes_unit["exact"], true);
    approx(num(&tonnes_unit, "allocated"), 200.0, "tonnes allocated");
    approx(
        num(&tonnes_unit, "greedy_allocated"),
        100.0,
        "tonnes allocated by greedy",
    );
    approx(
        num(&alloc["total_allocated_by_unit"], "t"),
        200.0,
        "total by unit",
    );
    // Latent synergies take no part.
    let excluded: HashSet<&str> = alloc["excluded"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| str_of(e, "synergy_id"))
        .collect();
    for s in all_items(&app, "/api/v1/synergies?territory=21&latent=true").await {
        assert!(
            excluded.contains(str_of(&s, "id")),
            "latent {} excluded",
            s["id"]
        );
    }
    assert_eq!(
        app.get("/api/v1/territories/XX-NOWHERE/allocation")
            .await
            .status,
        404
    );
}
