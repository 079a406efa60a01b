//! AFME impact of implemented and proposed synergies; lifecycle routes in the OpenAPI document.

use super::*;

// -------------------------------------------------------------------------------------------------
// AFME impact

fn change(report: &Value, indicator: &str) -> (f64, f64, f64, Option<f64>) {
    let c = &report[indicator];
    (
        num(c, "before"),
        num(c, "delta"),
        num(c, "after"),
        c["percent"].as_f64(),
    )
}

fn assert_change(report: &Value, indicator: &str, before: f64, delta: f64, percent: f64) {
    let (b, d, a, p) = change(report, indicator);
    approx(b, before, &format!("{indicator} before"));
    approx(d, delta, &format!("{indicator} delta"));
    approx(a, before + delta, &format!("{indicator} after"));
    approx(p.unwrap_or(f64::NAN), percent, &format!("{indicator} %"));
}

#[actix_web::test]
async fn impact_of_implemented_and_proposed_synergies_on_the_account() {
    let app = spawn_app().await;
    let t = territory(&app).await;
    let [s1, s2, s3, _s4] = &t.ids;
    walk(&app, s1, &["proposed", "in_study", "implemented"]).await;
    let realised = patch(
        &app,
        s1,
        json!({"realised": {"quantity": 400.0, "diverted_t": 300.0}}),
    )
    .await;
    assert_eq!(realised.status, 200, "{}", realised.text);
    walk(&app, s2, &["proposed"]).await;
    walk(&app, s3, &["proposed", "in_study"]).await;

    assert_eq!(
        app.get("/api/v1/territories/21/afme/impact").await.status,
        404,
        "no account yet"
    );
    // 2015: agricultural products 75 % imported; 2014: 25 %.
    let account = "territory,year,flow,family,partner,value,unit,uncertainty,source,note\n\
                   21,2015,DE,agricultural_food,,1000,t,,hand-made,\n\
                   21,2015,IMP,agricultural_food,rest_of_france,3000,t,,hand-made,\n\
                   21,2015,DE,construction_materials,,5000,t,,hand-made,\n\
                   21,2015,IMP,construction_materials,abroad,1000,t,,hand-made,\n\
                   21,2015,EXP,all,rest_of_france,2000,t,,hand-made,\n\
                   21,2015,DPO_LANDFILL,all,,4000,t,,hand-made,\n\
                   21,2014,DE,agricultural_food,,3000,t,,hand-made,\n\
                   21,2014,IMP,agricultural_food,rest_of_france,1000,t,,hand-made,\n\
                   21,2014,EXP,all,rest_of_france,500,t,,hand-made,\n\
                   21,2014,DPO_LANDFILL,all,,1500,t,,hand-made,\n";
    let imported = app
        .post_csv("/api/v1/territories/21/afme/import", account.to_owned())
        .await;
    assert_eq!(imported.status, 201, "{}", imported.text);

    // Latest year (2015): IMP = 3000 + 1000 = 4000; DE = 6000; EXP = 2000; DMC = 8000; landfill 4000.
    let reply = ok(&app, "/api/v1/territories/21/afme/impact").await;
    let body = &reply.body;
    assert_eq!(body["year"], 2015);
    assert_eq!(body["years"], json!([2014, 2015]));
    // implemented: s1, realised 400 t exchanged (substituting an import), 300 t diverted
    let implemented = &body["implemented"];
    assert_eq!(implemented["synergies"], 1);
    assert_change(implemented, "imp", 4000.0, -400.0, -10.0);
    assert_change(implemented, "dpo_landfill", 4000.0, -300.0, -7.5);
    assert_change(implemented, "dmc", 8000.0, -400.0, -5.0);
    // proposed: s2 (500 t, 250 t diverted) and s3 (200 t, 100 t diverted), detected estimates
    let proposed = &body["proposed"];
    assert_eq!(proposed["synergies"], 2);
    let diverted = WOOD_DIVERTED_SHARE * (t.quantities[1] + t.quantities[2]);
    approx(diverted, 350.0, "hand-computed diversion");
    assert_change(proposed, "imp", 4000.0, -700.0, -17.5);
    assert_change(proposed, "dpo_landfill", 4000.0, -350.0, -8.75);
    assert_change(proposed, "dmc", 8000.0, -700.0, -8.75);
    let lines = body["synergies"].as_array().cloned().unwrap_or_default();
    let counted: BTreeSet<&str> = lines.iter().map(|l| str_of(l, "id")).collect();
    assert_eq!(
        counted,
        BTreeSet::from([s1.as_str(), s2.as_str(), s3.as_str()]),
        "s4 (detected) is not counted"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["substitutes_import"] == true && l["family"] == "agricultural_food")
    );
    let rule = str_of(body, "substitution_rule");
    assert!(
        rule.contains("import dependence") && rule.contains("0.5"),
        "{rule}"
    );

    // 2014: 25 % imported, no import substituted; landfill 1500; DMC = 3000 + 1000 − 500 = 3500.
    let older = ok(&app, "/api/v1/territories/21/afme/impact?year=2014")
        .await
        .body;
    assert_eq!(older["year"], 2014);
    assert_change(&older["implemented"], "imp", 1000.0, 0.0, 0.0);
    assert_change(&older["implemented"], "dpo_landfill", 1500.0, -300.0, -20.0);
    assert_change(&older["implemented"], "dmc", 3500.0, 0.0, 0.0);
    assert_change(
        &older["proposed"],
        "dpo_landfill",
        1500.0,
        -350.0,
        -350.0 / 1500.0 * 100.0,
    );

    let missing = app
        .get("/api/v1/territories/21/afme/impact?year=2013")
        .await;
    assert_eq!(missing.status, 404, "{}", missing.text);
    assert!(missing.content_type.starts_with("application/problem+json"));
    assert!(
        str_of(&missing.body, "detail").contains("2014, 2015"),
        "{}",
        missing.text
    );
    assert_field_error(
        &app.get("/api/v1/territories/21/afme/impact?year=3000")
            .await,
        "year",
    );
    assert_field_error(
        &app.get("/api/v1/territories/21/afme/impact?year=soon")
            .await,
        "year",
    );
    assert_eq!(
        app.get("/api/v1/territories/71/afme/impact").await.status,
        404,
        "no account for 71"
    );
    assert_eq!(
        app.get("/api/v1/territories/XX-NOWHERE/afme/impact")
            .await
            .status,
        404
    );
}

#[actix_web::test]
async fn the_lifecycle_routes_are_documented() {
    let app = spawn_app().await;
    let doc = ok(&app, "/api/v1/openapi.json").await.body;
    for (path, method) in [
        ("/api/v1/synergies/{id}", "patch"),
        ("/api/v1/synergies/{id}/history", "get"),
        ("/api/v1/synergies/{id}/notes", "get"),
        ("/api/v1/synergies/{id}/notes", "post"),
        ("/api/v1/territories/{code}/kpis", "get"),
        ("/api/v1/territories/{code}/afme/impact", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} documented"
        );
    }
}
