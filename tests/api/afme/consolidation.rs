//! Consolidating accounts: a région aggregates its départements, reconciliation balances uncertain rows.

use super::*;

#[actix_web::test]
async fn a_region_aggregates_its_departements_and_trade_between_them_cancels() {
    let app = spawn_app().await;
    // 21 exports 250 t to 71 and imports 100 t from it; 71 declares both sides
    let dep21 = csv(&[
        "21,2015,DE,all,,1000,t,,,",
        "21,2015,IMP,all,rest_of_france,300,t,,,",
        "21,2015,IMP,all,71,100,t,,,",
        "21,2015,EXP,all,71,250,t,,,",
        "21,2015,EXP,all,rest_of_france,150,t,,,",
    ]);
    let dep71 = csv(&[
        "71,2015,DE,all,,500,t,,,",
        "71,2015,IMP,all,21,250,t,,,",
        "71,2015,EXP,all,21,100,t,,,",
        "71,2015,EXP,all,abroad,50,t,,,",
    ]);
    assert_eq!(import(&app, "21", dep21).await.status, 201);
    assert_eq!(import(&app, "71", dep71).await.status, 201);

    let reply = app
        .get("/api/v1/territories/R27/afme/aggregate?year=2015")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let with = reply.body["members_with_account"].clone();
    assert_eq!(with, json!(["21", "71"]));
    assert!(
        reply.body["members"]
            .as_array()
            .is_some_and(|m| m.contains(&json!("89"))),
        "the région's other départements are members"
    );
    let ind = &reply.body["indicators"];
    close(num(&ind["de"]["value"]), 1500.0, 1e-6, "DE of R27");
    close(
        num(&ind["imp"]["value"]),
        300.0,
        1e-6,
        "IMP of R27: only from the rest of France",
    );
    close(
        num(&ind["exp"]["value"]),
        200.0,
        1e-6,
        "EXP of R27: 150 to France + 50 abroad",
    );
    close(num(&ind["dmi"]["value"]), 1800.0, 1e-6, "DMI of R27");
    close(num(&ind["dmc"]["value"]), 1600.0, 1e-6, "DMC of R27");
    let aggregated = &reply.body["aggregated"];
    assert_eq!(
        aggregated["cancelled_rows"].as_array().map(Vec::len),
        Some(4),
        "both sides of both internal flows"
    );
    let flows = aggregated["internal_flows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(flows.len(), 2);
    for f in &flows {
        close(num(&f["difference"]), 0.0, 1e-9, "both sides agree");
    }
    let partners: Vec<&str> = aggregated["rows"]
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r["partner"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        !partners.contains(&"21") && !partners.contains(&"71"),
        "no member is a partner of the région: {partners:?}"
    );
    assert!(reply.body["declared"].is_null());

    // a directly declared regional account is compared with the aggregate
    let declared = csv(&[
        "R27,2015,DE,all,,1500,t,,,",
        "R27,2015,IMP,all,,320,t,,,",
        "R27,2015,EXP,all,,200,t,,,",
    ]);
    assert_eq!(import(&app, "r27", declared).await.status, 201);
    let compared = app.get("/api/v1/territories/R27/afme/aggregate").await;
    assert_eq!(compared.status, 200, "{}", compared.text);
    let rows = compared.body["declared"]["comparison"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let imp = rows
        .iter()
        .find(|r| r["flow"] == "IMP" && r["family"] == "all")
        .cloned()
        .unwrap_or(Value::Null);
    close(num(&imp["aggregated"]), 300.0, 1e-6, "aggregated IMP");
    close(num(&imp["declared"]), 320.0, 1e-6, "declared IMP");
    close(num(&imp["difference"]), -20.0, 1e-6, "difference");

    let commune = app.get("/api/v1/territories/21231/afme/aggregate").await;
    assert_eq!(
        commune.status, 422,
        "a commune has no members: {}",
        commune.text
    );
    let nothing = app
        .get("/api/v1/territories/R27/afme/aggregate?year=1999")
        .await;
    assert_eq!(nothing.status, 404, "{}", nothing.text);
}

/// Worked by hand. Balance DE + IMP − EXP − DPO − NAS = 0 with
/// DE = 100 (σ 3), IMP = 50 (σ 4), EXP = 40 and DPO = 30 (fixed), NAS = 70 (σ 12).
/// r = 100 + 50 − 40 − 30 − 70 = 10; A Q Aᵀ = 9 + 16 + 144 = 169; λ = 10/169.
/// DE = 100 − 9·10/169 = 99.467456; IMP = 50 − 16·10/169 = 49.053254; NAS = 70 + 144·10/169 = 78.520710.
/// σ̂² = σ² − σ⁴/169: DE 8.520710 (σ̂ 2.919026), IMP 14.485207 (3.805944), NAS 21.301775 (4.615385).
/// χ² = r²/169 = 0.591716 with 1 degree of freedom, p = erfc(√(χ²/2)) = 0.44176.
#[actix_web::test]
async fn reconciliation_adjusts_uncertain_rows_to_the_balance() {
    let app = spawn_app().await;
    let text = csv(&[
        "21,2015,DE,all,,100,t,3,,",
        "21,2015,IMP,all,,50,t,4,,",
        "21,2015,EXP,all,,40,t,,,",
        "21,2015,DPO,all,,30,t,,,",
        "21,2015,NAS,all,,70,t,12,,",
    ]);
    assert_eq!(import(&app, "21", text).await.status, 201);

    // no body at all: the balance alone
    let reply = app
        .send(
            app.client
                .post(app.url("/api/v1/territories/21/afme/reconcile?year=2015")),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let rec = &reply.body["reconciliation"];
    let values = rec["values"].as_array().cloned().unwrap_or_default();
    assert_eq!(values.len(), 5);
    let eps = 1e-6;
    for (i, adjusted, sd) in [
        (0, 100.0 - 90.0 / 169.0, (9.0 - 81.0 / 169.0_f64).sqrt()),
        (1, 50.0 - 160.0 / 169.0, (16.0 - 256.0 / 169.0_f64).sqrt()),
        (
            4,
            70.0 + 1440.0 / 169.0,
            (144.0 - 20736.0 / 169.0_f64).sqrt(),
        ),
    ] {
        close(
            num(&values[i]["adjusted"]),
            adjusted,
            eps,
            &format!("row {i}"),
        );
        close(
            num(&values[i]["adjusted_sd"]),
            sd,
            eps,
            &format!("σ̂ of row {i}"),
        );
    }
    for i in [2, 3] {
        assert_eq!(values[i]["free"], false);
        close(
            num(&values[i]["adjusted"]),
            num(&values[i]["original"]),
            0.0,
            "fixed",
        );
    }
    let chi2 = 100.0 / 169.0_f64;
    close(num(&rec["chi2"]), chi2, eps, "χ²");
    assert_eq!(rec["dof"], 1);
    let p = statrs::function::erf::erfc((chi2 / 2.0).sqrt());
    close(num(&rec["p_value"]), p, 1e-6, "p-value");
    assert_eq!(rec["passed"], true);
    let adjusted = reply.body["adjusted_rows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    close(
        num(&adjusted[0]["value"]),
        100.0 - 90.0 / 169.0,
        eps,
        "adjusted row",
    );

    // at α = 0.5 the same residual fails the test and the rows to look at are named
    let strict = app
        .post(
            "/api/v1/territories/21/afme/reconcile?year=2015",
            &json!({"alpha": 0.5}),
        )
        .await;
    assert_eq!(strict.status, 200, "{}", strict.text);
    assert_eq!(strict.body["reconciliation"]["passed"], false);
    assert!(
        strict.body["reconciliation"]["suspects"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "{}",
        strict.text
    );

    // an extra constraint on fixed rows only, violated: 422 that says so, not a 500
    let fixed = app
        .post(
            "/api/v1/territories/21/afme/reconcile?year=2015",
            &json!({"constraints": [{"name": "exp equals dpo", "total": 2, "parts": [3]}]}),
        )
        .await;
    assert_eq!(fixed.status, 422, "{}", fixed.text);
    assert!(fixed.content_type.starts_with("application/problem+json"));
    let message = fixed.body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("without uncertainty"), "{message}");
    assert_field_error(&fixed, "constraints[0]");
    // bad options name their field
    assert_field_error(
        &app.post(
            "/api/v1/territories/21/afme/reconcile",
            &json!({"constraints": [{"name": "x", "total": 9, "parts": [0]}]}),
        )
        .await,
        "constraints[0].total",
    );
    assert_field_error(
        &app.post(
            "/api/v1/territories/21/afme/reconcile",
            &json!({"alpha": 2}),
        )
        .await,
        "alpha",
    );
}
