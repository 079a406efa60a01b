//! AFME-aware ranking: a territory's account changes the order of otherwise equal synergies.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const HEADER: &str = "territory,year,flow,family,partner,value,unit,uncertainty,source,note";

/// An offer of `ewc` by one actor and a need accepting it by another, both at the same place.
async fn pair(app: &TestApp, name: &str, ewc: &str) -> String {
    let site = json!({"naf_code": "38.32Z", "commune_insee": "21231", "lat": 47.30, "lng": 5.10});
    let mut provider = site.clone();
    provider["name"] = json!(format!("{name} (fournisseur)"));
    let mut receiver = site;
    receiver["name"] = json!(format!("{name} (receveur)"));
    let provider = app.create_actor(provider).await;
    let receiver = app.create_actor(receiver).await;
    let quantity = json!({"value": 100, "unit": "t", "period": "year"});
    let offer = app
        .create_resource(
            &provider,
            json!({"kind": "offer", "category": "material", "label": name, "ewc_code": ewc, "quantity": quantity}),
        )
        .await;
    app.create_resource(
        &receiver,
        json!({"kind": "need", "category": "material", "label": name, "accepted_ewc": [ewc], "quantity": quantity}),
    )
    .await;
    offer["id"].as_str().unwrap_or_default().to_owned()
}

/// Score of the declared synergy of an offer in the territory's ranking, and its rank.
fn find(items: &[Value], offer: &str) -> (usize, f64) {
    items
        .iter()
        .enumerate()
        .find(|(_, s)| s["offer_id"] == offer && s["latent"] == false && s["fit_level"] == "code")
        .map(|(i, s)| (i, s["score"].as_f64().unwrap_or_default()))
        .unwrap_or_else(|| panic!("no declared synergy for offer {offer}"))
}

/// Score of the offer's declared synergy among its own matches (`query` appended to the path).
async fn matched_score(app: &TestApp, offer: &str, query: &str) -> f64 {
    let reply = app
        .get(&format!(
            "/api/v1/resources/{offer}/matches?latent=false{query}"
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let items = reply.body["items"].as_array().cloned().unwrap_or_default();
    find(&items, offer).1
}

#[actix_web::test]
async fn import_dependence_in_construction_materials_puts_that_synergy_first() {
    let app = spawn_app().await;
    // Bottom ash (10 01 01) is a construction material; sawdust (03 01 05) is biomass.
    let ash = pair(&app, "Mâchefers", "10 01 01").await;
    let sawdust = pair(&app, "Sciures", "03 01 05").await;

    let before = app
        .get("/api/v1/synergies?territory=21&kind=substitution&limit=500")
        .await;
    assert_eq!(before.status, 200, "{}", before.text);
    let items = before.body["items"].as_array().cloned().unwrap_or_default();
    let (_, ash_before) = find(&items, &ash);
    let (_, sawdust_before) = find(&items, &sawdust);
    assert!(
        (ash_before - sawdust_before).abs() < 1e-9,
        "otherwise equal: {ash_before} vs {sawdust_before}"
    );

    // Département 21 imports 90 % of its construction materials and 10 % of its biomass.
    let account = [
        "21,2015,DE,construction_materials,,100,t,,,",
        "21,2015,IMP,construction_materials,,900,t,,,",
        "21,2015,DE,agricultural_food,,900,t,,,",
        "21,2015,IMP,agricultural_food,,100,t,,,",
        "21,2015,EXP,agricultural_food,,200,t,,,",
    ];
    let csv = format!("{HEADER}\n{}\n", account.join("\n"));
    let imported = app
        .post_csv("/api/v1/territories/21/afme/import", csv)
        .await;
    assert_eq!(imported.status, 201, "{}", imported.text);

    let after = app
        .get("/api/v1/synergies?territory=21&kind=substitution&limit=500")
        .await;
    let items = after.body["items"].as_array().cloned().unwrap_or_default();
    let (ash_rank, ash_after) = find(&items, &ash);
    let (sawdust_rank, sawdust_after) = find(&items, &sawdust);
    assert!(
        ash_after > sawdust_after + 1e-6,
        "construction first: {ash_after} vs {sawdust_after}"
    );
    assert!(ash_rank < sawdust_rank);
    let priority = |offer: &str| {
        items
            .iter()
            .find(|s| s["offer_id"] == offer && s["fit_level"] == "code")
            .and_then(|s| s["components"]["territorial_priority"].as_f64())
            .unwrap_or_default()
    };
    assert!(
        priority(&ash) > 0.5 && priority(&sawdust) < 0.5,
        "{} / {}",
        priority(&ash),
        priority(&sawdust)
    );

    // Another territory without an account keeps the neutral priority.
    let neutral = app
        .get("/api/v1/synergies?territory=R27&kind=substitution&limit=500")
        .await;
    let items = neutral.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let (_, ash_neutral) = find(&items, &ash);
    assert!((ash_neutral - ash_before).abs() < 1e-9);

    // An offer's own matches carry the priority of the territory they are asked for, as its list.
    assert!(
        (matched_score(&app, &ash, "").await - ash_before).abs() < 1e-9,
        "neutral without a territory"
    );
    assert!(
        (matched_score(&app, &ash, "&territory=21").await - ash_after).abs() < 1e-9,
        "as in the list of 21"
    );
}
