//! Synergy lifecycle through the API: every transition allowed and refused, reasons, history,
//! notes, realised values, re-detection keeping statuses, KPIs (JSON and CSV) and the AFME impact
//! of implemented and proposed synergies, on tiny hand-built territories around Dijon (21).
//!
//! Expected numbers are computed by hand: sawdust (03 01 05, class `material/biomass/wood`, AFME
//! family `agricultural_food`) has a diverted share of 0.5 in `knowledge/impact_factors.csv`.

use std::collections::{BTreeSet, HashMap};

use chrono::{Datelike, NaiveDateTime};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Reply, TestApp, assert_field_error, spawn_app};

const DIJON: &str = "21231";
/// Brest: far from anything in Côte-d'Or.
const BREST: &str = "29019";
const KM_PER_DEGREE: f64 = 111.2;
/// `material/biomass/wood` in knowledge/impact_factors.csv.
const WOOD_DIVERTED_SHARE: f64 = 0.5;
const STATUSES: [&str; 6] = [
    "detected",
    "proposed",
    "in_study",
    "implemented",
    "rejected",
    "abandoned",
];

// -------------------------------------------------------------------------------------------------
// fixtures

fn near(app: &TestApp, commune: &str, east_km: f64, north_km: f64) -> (f64, f64) {
    let c = app
        .app
        .reference
        .geo
        .commune(commune)
        .expect("known commune");
    (
        c.lat + north_km / KM_PER_DEGREE,
        c.lng + east_km / (KM_PER_DEGREE * c.lat.to_radians().cos()),
    )
}

async fn actor(
    app: &TestApp,
    name: &str,
    naf: &str,
    commune: &str,
    (lat, lng): (f64, f64),
) -> String {
    app.create_actor(
        json!({"name": name, "naf_code": naf, "commune_insee": commune, "lat": lat, "lng": lng}),
    )
    .await
}

fn tonnes(value: f64) -> Value {
    json!({"value": value, "unit": "t", "period": "year"})
}

/// Sawdust of a sawmill (03 01 05).
fn sawdust(t_per_year: f64) -> Value {
    json!({"kind": "offer", "category": "material", "label": "Sciure de résineux", "ewc_code": "03 01 05",
           "quantity": tonnes(t_per_year)})
}

/// A wood-biomass boiler's need, accepting sawdust.
fn boiler_need(t_per_year: f64) -> Value {
    json!({"kind": "need", "category": "material", "class": "material/biomass/wood",
           "label": "Combustible bois pour chaudière", "accepted_ewc": ["03 01 05"], "quantity": tonnes(t_per_year)})
}

async fn resource(app: &TestApp, owner: &str, body: Value) -> String {
    app.create_resource(owner, body).await["id"]
        .as_str()
        .expect("resource id")
        .to_owned()
}

/// A sawmill at `east_km` east of `commune` offering `offer_t` of sawdust; returns the offer id.
async fn sawmill(app: &TestApp, name: &str, commune: &str, east_km: f64, offer_t: f64) -> String {
    let a = actor(
        app,
        name,
        "16.10A",
        commune,
        near(app, commune, east_km, 0.0),
    )
    .await;
    resource(app, &a, sawdust(offer_t)).await
}

/// A boiler house at `east_km` east of `commune` needing `need_t` of wood; returns the need id.
async fn boiler(app: &TestApp, name: &str, commune: &str, east_km: f64, need_t: f64) -> String {
    let b = actor(
        app,
        name,
        "35.30Z",
        commune,
        near(app, commune, east_km, 1.0),
    )
    .await;
    resource(app, &b, boiler_need(need_t)).await
}

async fn ok(app: &TestApp, path: &str) -> Reply {
    let reply = app.get(path).await;
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.text);
    reply
}

/// The substitution synergies of territory 21: (offer id, need id) → synergy.
async fn synergies_21(app: &TestApp) -> HashMap<(String, String), Value> {
    let reply = ok(
        app,
        "/api/v1/synergies?territory=21&kind=substitution&limit=500",
    )
    .await;
    reply.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            (
                (
                    str_of(&s, "offer_id").to_owned(),
                    str_of(&s, "need_id").to_owned(),
                ),
                s,
            )
        })
        .collect()
}

async fn synergy_of(app: &TestApp, offer: &str, need: &str) -> Value {
    let all = synergies_21(app).await;
    all.get(&(offer.to_owned(), need.to_owned()))
        .cloned()
        .unwrap_or_else(|| panic!("no synergy {offer} → {need} in {:#?}", all.keys()))
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or_default()
}

fn num(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("`{field}` is not a number in {v}"))
}

fn approx(got: f64, expected: f64, what: &str) {
    assert!(
        (got - expected).abs() < 1e-9,
        "{what}: expected {expected}, got {got}"
    );
}

fn path(id: &str) -> String {
    format!("/api/v1/synergies/{id}")
}

async fn patch_as(app: &TestApp, user: Option<&str>, id: &str, body: Value) -> Reply {
    let mut request = app.client.patch(app.url(&path(id))).json(&body);
    if let Some(user) = user {
        request = request.header("X-Symbiose-User", user);
    }
    app.send(request).await
}

async fn patch(app: &TestApp, id: &str, body: Value) -> Reply {
    patch_as(app, None, id, body).await
}

/// Moves a synergy along `statuses`, asserting each step succeeds.
async fn walk(app: &TestApp, id: &str, statuses: &[&str]) {
    for status in statuses {
        let body = match *status {
            "rejected" | "abandoned" => json!({"status": status, "reason": "test"}),
            _ => json!({"status": status}),
        };
        let reply = patch(app, id, body).await;
        assert_eq!(reply.status, 200, "→ {status}: {}", reply.text);
        assert_eq!(reply.body["status"], *status);
    }
}

/// The legal path from `detected` to a status.
fn path_to(status: &str) -> Vec<&'static str> {
    match status {
        "detected" => vec![],
        "proposed" => vec!["proposed"],
        "in_study" => vec!["proposed", "in_study"],
        "implemented" => vec!["proposed", "in_study", "implemented"],
        "rejected" => vec!["rejected"],
        "abandoned" => vec!["proposed", "abandoned"],
        other => panic!("unknown status {other}"),
    }
}

fn allowed_from(status: &str) -> Vec<&'static str> {
    match status {
        "detected" => vec!["proposed", "rejected", "abandoned"],
        "proposed" => vec!["in_study", "rejected", "abandoned"],
        "in_study" => vec!["implemented", "rejected", "abandoned"],
        _ => vec![],
    }
}

async fn history(app: &TestApp, id: &str) -> Vec<Value> {
    ok(app, &format!("{}/history", path(id))).await.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn notes(app: &TestApp, id: &str) -> Vec<Value> {
    ok(app, &format!("{}/notes", path(id))).await.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn time(v: &Value, field: &str) -> NaiveDateTime {
    let text = str_of(v, field);
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.naive_utc())
        .unwrap_or_else(|e| panic!("`{field}` = {text:?} is not an RFC 3339 timestamp: {e}"))
}

fn utc_now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// The base territory: sawmill A (500 t/year of sawdust) and boiler house B 3 km away in Dijon.
/// Returns (offer id, need id, synergy id).
async fn one_synergy(app: &TestApp) -> (String, String, String) {
    let offer = sawmill(app, "Scierie A", DIJON, 0.0, 500.0).await;
    let need = boiler(app, "Chaufferie B", DIJON, 3.0, 800.0).await;
    let all = synergies_21(app).await;
    assert_eq!(all.len(), 1, "exactly one synergy: {all:#?}");
    let s = synergy_of(app, &offer, &need).await;
    assert_eq!(s["status"], "detected");
    (offer, need, str_of(&s, "id").to_owned())
}

// -------------------------------------------------------------------------------------------------
// transitions

#[actix_web::test]
async fn every_transition_is_allowed_or_refused_naming_the_allowed_ones() {
    let app = spawn_app().await;
    // 4 sawmills × 4 boilers nearby: 16 distinct synergies to spend (one per legal change, one per
    // starting status for the refused ones, which change nothing).
    for i in 0..4 {
        sawmill(&app, &format!("Scierie {i}"), DIJON, f64::from(i), 100.0).await;
        boiler(
            &app,
            &format!("Chaufferie {i}"),
            DIJON,
            f64::from(i),
            1000.0,
        )
        .await;
    }
    let all = synergies_21(&app).await;
    assert_eq!(all.len(), 16);
    let mut fresh: Vec<String> = all.values().map(|s| str_of(s, "id").to_owned()).collect();
    fresh.sort();

    let mut legal = 0;
    for from in STATUSES {
        let allowed = allowed_from(from);
        let probe = fresh.pop().expect("enough synergies");
        walk(&app, &probe, &path_to(from)).await;
        for to in STATUSES {
            let id = if allowed.contains(&to) {
                let id = fresh.pop().expect("enough synergies");
                walk(&app, &id, &path_to(from)).await;
                id
            } else {
                probe.clone()
            };
            let before = history(&app, &id).await;
            let reply = patch(
                &app,
                &id,
                json!({"status": to, "reason": "the receiver changed supplier"}),
            )
            .await;
            if allowed.contains(&to) {
                legal += 1;
                assert_eq!(reply.status, 200, "{from} → {to}: {}", reply.text);
                assert_eq!(reply.body["status"], to);
                let next: Vec<&str> = reply.body["allowed_next"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                assert_eq!(next, allowed_from(to), "allowed_next after {to}");
                let after = history(&app, &id).await;
                assert_eq!(after.len(), before.len() + 1);
                let last = after.last().expect("an entry");
                assert_eq!((str_of(last, "from"), str_of(last, "to")), (from, to));
                // the synergy lists show the new status at once
                assert_eq!(ok(&app, &path(&id)).await.body["status"], to);
            } else {
                assert_eq!(
                    reply.status, 409,
                    "{from} → {to} must be refused: {}",
                    reply.text
                );
                assert!(
                    reply.content_type.starts_with("application/problem+json"),
                    "{}",
                    reply.content_type
                );
                assert_eq!(reply.body["status"], 409);
                assert_eq!(
                    (str_of(&reply.body, "from"), str_of(&reply.body, "to")),
                    (from, to)
                );
                let named: Vec<&str> = reply.body["allowed"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                assert_eq!(named, allowed, "{from} → {to}: the allowed statuses");
                let detail = str_of(&reply.body, "detail");
                for a in &allowed {
                    assert!(detail.contains(a), "{from} → {to}: `{a}` named in {detail}");
                }
                if allowed.is_empty() {
                    assert!(detail.contains("final"), "{detail}");
                }
                // nothing changed
                assert_eq!(history(&app, &id).await.len(), before.len());
                assert_eq!(ok(&app, &path(&id)).await.body["status"], from);
            }
        }
    }
    assert_eq!(legal, 9, "3 open statuses × 3 next statuses");
}

#[actix_web::test]
async fn rejecting_and_abandoning_need_a_reason_which_is_kept() {
    let app = spawn_app().await;
    let a = sawmill(&app, "Scierie A", DIJON, 0.0, 100.0).await;
    let b = sawmill(&app, "Scierie B", DIJON, 1.0, 100.0).await;
    let n = boiler(&app, "Chaufferie", DIJON, 2.0, 500.0).await;
    let s1 = str_of(&synergy_of(&app, &a, &n).await, "id").to_owned();
    let s2 = str_of(&synergy_of(&app, &b, &n).await, "id").to_owned();
    walk(&app, &s2, &["proposed", "in_study"]).await;

    for (id, to) in [(&s1, "rejected"), (&s2, "abandoned")] {
        for body in [
            json!({"status": to}),
            json!({"status": to, "reason": ""}),
            json!({"status": to, "reason": "  \n "}),
        ] {
            let reply = patch(&app, id, body).await;
            assert_field_error(&reply, "reason");
        }
        let too_long = "x".repeat(2_001);
        assert_field_error(
            &patch(&app, id, json!({"status": to, "reason": too_long})).await,
            "reason",
        );
        assert_ne!(
            ok(&app, &path(id)).await.body["status"],
            to,
            "nothing changed"
        );
    }
    let rejected = patch(
        &app,
        &s1,
        json!({"status": "rejected", "reason": " too wet for the boiler "}),
    )
    .await;
    assert_eq!(rejected.status, 200, "{}", rejected.text);
    assert_eq!(rejected.body["status_reason"], "too wet for the boiler");
    let abandoned = patch(
        &app,
        &s2,
        json!({"status": "abandoned", "reason": "the boiler closed", "comment": "after the tests"}),
    )
    .await;
    assert_eq!(abandoned.status, 200, "{}", abandoned.text);
    assert_eq!(abandoned.body["status_reason"], "the boiler closed");
    let last = history(&app, &s2).await.pop().expect("an entry");
    assert_eq!(last["reason"], "the boiler closed");
    assert_eq!(last["comment"], "after the tests");
    assert_eq!(
        (str_of(&last, "from"), str_of(&last, "to")),
        ("in_study", "abandoned")
    );
    // A reason without a status change, or a comment, is refused: they go with a change.
    let app2 = &app;
    let (o, nd) = (
        sawmill(app2, "Scierie C", DIJON, 0.5, 100.0).await,
        n.clone(),
    );
    let s3 = str_of(&synergy_of(app2, &o, &nd).await, "id").to_owned();
    assert_field_error(
        &patch(app2, &s3, json!({"reason": "why not"})).await,
        "reason",
    );
    assert_field_error(
        &patch(app2, &s3, json!({"comment": "hello"})).await,
        "comment",
    );
}

#[actix_web::test]
async fn history_records_who_when_from_to_and_comment_in_order() {
    let app = spawn_app().await;
    let (_, _, id) = one_synergy(&app).await;
    assert!(history(&app, &id).await.is_empty());

    let t0 = utc_now();
    let first = patch_as(
        &app,
        Some("Mme Hélène Martin (CCI 21)"),
        &id,
        json!({"status": "proposed", "comment": "sent to both"}),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let t1 = utc_now();
    let changed = time(&first.body, "status_changed_at");
    assert!(
        t0 - chrono::Duration::seconds(1) <= changed
            && changed <= t1 + chrono::Duration::seconds(1)
    );
    let second = patch(&app, &id, json!({"status": "in_study"})).await;
    assert_eq!(second.status, 200, "{}", second.text);
    let third = patch_as(
        &app,
        Some("  j.dupont  "),
        &id,
        json!({"status": "implemented", "comment": "contract signed"}),
    )
    .await;
    assert_eq!(third.status, 200, "{}", third.text);

    let entries = history(&app, &id).await;
    let got: Vec<(&str, &str, &str, Option<&str>)> = entries
        .iter()
        .map(|e| {
            (
                str_of(e, "changed_by"),
                str_of(e, "from"),
                str_of(e, "to"),
                e["comment"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "Mme Hélène Martin (CCI 21) via test admin",
                "detected",
                "proposed",
                Some("sent to both")
            ),
            ("test admin", "proposed", "in_study", None),
            (
                "j.dupont via test admin",
                "in_study",
                "implemented",
                Some("contract signed")
            ),
        ]
    );
    let times: Vec<NaiveDateTime> = entries.iter().map(|e| time(e, "changed_at")).collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {times:?}"
    );
    assert_eq!(
        times[0], changed,
        "the synergy's status_changed_at is the history's time"
    );
    assert_eq!(times[2], time(&third.body, "status_changed_at"));
    assert!(
        t0 - chrono::Duration::seconds(1) <= times[0]
            && times[2] <= utc_now() + chrono::Duration::seconds(1)
    );

    // The author header is checked.
    let long = "x".repeat(201);
    let refused = patch_as(&app, Some(&long), &id, json!({"note": "hello"})).await;
    assert_field_error(&refused, "X-Symbiose-User");
    // Unknown synergies.
    for missing in [Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        for reply in [
            app.get(&format!("{}/history", path(&missing))).await,
            app.get(&format!("{}/notes", path(&missing))).await,
            patch(&app, &missing, json!({"status": "proposed"})).await,
            app.post(&format!("{}/notes", path(&missing)), &json!({"text": "hi"}))
                .await,
        ] {
            assert_eq!(reply.status, 404, "{missing}: {}", reply.text);
            assert!(reply.content_type.starts_with("application/problem+json"));
        }
    }
}

#[actix_web::test]
async fn bad_patch_bodies_name_their_field() {
    let app = spawn_app().await;
    let (_, _, id) = one_synergy(&app).await;
    let cases = [
        (json!({}), "body"),
        (json!({"status": "done"}), "status"),
        (json!({"colour": "red"}), "colour"),
        (json!({"realised": {"tonnes": 3}}), "realised.tonnes"),
        (json!({"realised": {}}), "realised"),
        (
            json!({"realised": {"quantity": "lots"}}),
            "realised.quantity",
        ),
        (json!({"note": ""}), "note"),
    ];
    for (body, field) in cases {
        assert_field_error(&patch(&app, &id, body).await, field);
    }
    let wrong_type = app
        .send(
            app.client
                .patch(app.url(&path(&id)))
                .header("content-type", "text/plain")
                .body("{}"),
        )
        .await;
    assert_eq!(wrong_type.status, 415);
    assert!(
        wrong_type
            .content_type
            .starts_with("application/problem+json")
    );
    assert!(history(&app, &id).await.is_empty() && notes(&app, &id).await.is_empty());
    // GET on the same path is still the detection's view.
    assert_eq!(ok(&app, &path(&id)).await.body["kind"], "substitution");
}

#[actix_web::test]
async fn concurrent_changes_from_the_same_status_cannot_both_pass() {
    let app = spawn_app().await;
    let (_, _, id) = one_synergy(&app).await;
    // Eight facilitators propose it at once: one wins, the others find it already proposed.
    let (app, id) = (&app, id.as_str());
    let requests = (0..8).map(|i| {
        let user = format!("facilitator {i}");
        async move { patch_as(app, Some(&user), id, json!({"status": "proposed"})).await }
    });
    let replies = futures_util::future::join_all(requests).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    let unexpected: Vec<&str> = replies
        .iter()
        .filter(|r| r.status != 200 && r.status != 409)
        .map(|r| r.text.as_str())
        .collect();
    assert!(unexpected.is_empty(), "{statuses:?}: {unexpected:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "{statuses:?}"
    );
    let entries = history(app, id).await;
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(
        (str_of(&entries[0], "from"), str_of(&entries[0], "to")),
        ("detected", "proposed")
    );
    // Then one rejects while another abandons: both final, so only one of them passes.
    let (rejected, abandoned) = futures_util::future::join(
        patch(app, id, json!({"status": "rejected", "reason": "too far"})),
        patch(app, id, json!({"status": "abandoned", "reason": "closed"})),
    )
    .await;
    let mut pair = [rejected.status, abandoned.status];
    pair.sort_unstable();
    assert_eq!(pair, [200, 409], "{} / {}", rejected.text, abandoned.text);
    assert_eq!(history(app, id).await.len(), 2);
}

// -------------------------------------------------------------------------------------------------
// notes and realised values

#[actix_web::test]
async fn notes_are_listed_oldest_first_with_their_author() {
    let app = spawn_app().await;
    let (_, _, id) = one_synergy(&app).await;
    let first = patch_as(
        &app,
        Some("animatrice"),
        &id,
        json!({"note": "called the sawmill"}),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["status"], "detected", "a note changes no status");
    let posted = app
        .send(
            app.client
                .post(app.url(&format!("{}/notes", path(&id))))
                .header("X-Symbiose-User", "animateur")
                .json(&json!({"text": "moisture 30 %"})),
        )
        .await;
    assert_eq!(posted.status, 201, "{}", posted.text);
    let with_status = patch(
        &app,
        &id,
        json!({"status": "proposed", "comment": "meeting on Monday", "note": "both interested"}),
    )
    .await;
    assert_eq!(with_status.status, 200, "{}", with_status.text);
    let listed = notes(&app, &id).await;
    let got: Vec<(&str, &str)> = listed
        .iter()
        .map(|n| (str_of(n, "author"), str_of(n, "text")))
        .collect();
    assert_eq!(
        got,
        vec![
            ("animatrice via test admin", "called the sawmill"),
            ("animateur via test admin", "moisture 30 %"),
            ("test admin", "both interested")
        ]
    );
    let times: Vec<NaiveDateTime> = listed.iter().map(|n| time(n, "created_at")).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(
        history(&app, &id).await.len(),
        1,
        "notes are not status changes"
    );
    assert_field_error(
        &app.post(&format!("{}/notes", path(&id)), &json!({"text": "   "}))
            .await,
        "text",
    );
    assert_field_error(
        &app.post(&format!("{}/notes", path(&id)), &json!({})).await,
        "text",
    );
}

#[actix_web::test]
async fn realised_values_only_once_implemented() {
    let app = spawn_app().await;
    let (_, _, id) = one_synergy(&app).await;
    let realised =
        json!({"realised": {"quantity": 400.0, "diverted_t": 300.0, "co2e_avoided_t": 50.0}});
    for status in ["detected", "proposed", "in_study"] {
        if status != "detected" {
            walk(&app, &id, &[status]).await;
        }
        let refused = patch(&app, &id, realised.clone()).await;
        assert_eq!(refused.status, 409, "{status}: {}", refused.text);
        assert!(refused.content_type.starts_with("application/problem+json"));
        assert!(
            str_of(&refused.body, "detail").contains("implemented"),
            "{}",
            refused.text
        );
    }
    // Negative values: every bad field named, nothing stored (the status change neither).
    let negative = patch(
        &app,
        &id,
        json!({"status": "implemented", "realised": {"quantity": -1.0, "diverted_t": -2.0, "co2e_avoided_t": -0.5}}),
    )
    .await;
    for field in [
        "realised.quantity",
        "realised.diverted_t",
        "realised.co2e_avoided_t",
    ] {
        assert_field_error(&negative, field);
    }
    assert_eq!(ok(&app, &path(&id)).await.body["status"], "in_study");
    // Implemented and realised in one request.
    let done = patch(
        &app,
        &id,
        json!({"status": "implemented", "realised": {"quantity": 400.0, "diverted_t": 300.0}, "comment": "first delivery"}),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["status"], "implemented");
    assert_eq!(
        done.body["realised"],
        json!({"quantity": 400.0, "diverted_t": 300.0, "co2e_avoided_t": null})
    );
    // Later: one value added, the others kept.
    let more = patch(&app, &id, json!({"realised": {"co2e_avoided_t": 50.0}})).await;
    assert_eq!(more.status, 200, "{}", more.text);
    assert_eq!(
        more.body["realised"],
        json!({"quantity": 400.0, "diverted_t": 300.0, "co2e_avoided_t": 50.0})
    );
    assert_eq!(
        history(&app, &id).await.len(),
        3,
        "realised values are not status changes"
    );
    // The stored view: parties, detail, detection fields.
    let body = &more.body;
    assert_eq!(body["kind"], "substitution");
    assert_eq!(body["family"], "agricultural_food");
    assert_eq!(body["class"], "material/biomass/wood");
    let roles: Vec<(&str, &str)> = body["parties"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (str_of(p, "role"), str_of(p, "name")))
        .collect();
    assert_eq!(
        roles,
        vec![("provider", "Scierie A"), ("receiver", "Chaufferie B")]
    );
    assert_eq!(body["detail"]["id"], id.as_str());
    approx(
        num(&body["detail"]["impact"], "quantity_per_year"),
        500.0,
        "detected quantity",
    );
    assert!(body["allowed_next"].as_array().is_some_and(Vec::is_empty));
}

#[actix_web::test]
async fn re_detection_never_overwrites_a_status() {
    let app = spawn_app().await;
    let (offer, _, id) = one_synergy(&app).await;
    walk(&app, &id, &["proposed", "in_study"]).await;
    let run = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(run.status, 200, "{}", run.text);
    assert_eq!(ok(&app, &path(&id)).await.body["status"], "in_study");

    // Editing the offer re-detects: same synergy (same offer and need), new quantity, same status.
    let edited = app
        .patch(
            &format!("/api/v1/resources/{offer}"),
            &json!({"quantity": tonnes(600.0)}),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    let got = ok(&app, &path(&id)).await.body;
    assert_eq!(got["status"], "in_study");
    approx(num(&got, "quantity"), 600.0, "re-detected quantity");
    let listed = synergies_21(&app).await;
    assert_eq!(listed.len(), 1);
    assert!(
        listed
            .values()
            .all(|s| s["status"] == "in_study" && s["id"] == id.as_str())
    );
    let again = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(again.status, 200);
    let stored = patch(&app, &id, json!({"note": "still studying"})).await;
    assert_eq!(stored.status, 200, "{}", stored.text);
    assert_eq!(stored.body["status"], "in_study");
    approx(num(&stored.body, "quantity"), 600.0, "stored quantity");
    assert_eq!(
        history(&app, &id).await.len(),
        2,
        "re-detection writes no history"
    );
}

// -------------------------------------------------------------------------------------------------
// KPIs

/// Four synergies in 21 from two sawmills (500 t and 200 t) and two boilers (800 t each), plus
/// one in Brest (outside 21). Returns the offers, needs and synergy ids
/// [s1 = O1→N1, s2 = O1→N2, s3 = O2→N1, s4 = O2→N2] and the Brest synergy.
struct Territory {
    offers: [String; 2],
    /// The boiler houses (actors) of N1 and N2.
    receivers: [String; 2],
    ids: [String; 4],
    quantities: [f64; 4],
    brest: String,
}

async fn territory(app: &TestApp) -> Territory {
    let o1 = sawmill(app, "Scierie 1", DIJON, 0.0, 500.0).await;
    let o2 = sawmill(app, "Scierie 2", DIJON, 1.0, 200.0).await;
    let n1 = boiler(app, "Chaufferie 1", DIJON, 2.0, 800.0).await;
    let n2 = boiler(app, "Chaufferie 2", DIJON, 3.0, 800.0).await;
    let mut ids = Vec::new();
    let mut quantities = Vec::new();
    let mut receivers = Vec::new();
    for (o, n) in [(&o1, &n1), (&o1, &n2), (&o2, &n1), (&o2, &n2)] {
        let s = synergy_of(app, o, n).await;
        receivers.push(str_of(&s, "receiver_actor_id").to_owned());
        let q = num(&s, "quantity");
        // each synergy's estimate: the factor's diverted share of the quantity
        approx(
            num(&s["impact"], "diverted_tonnes"),
            WOOD_DIVERTED_SHARE * q,
            "diverted estimate",
        );
        ids.push(str_of(&s, "id").to_owned());
        quantities.push(q);
    }
    assert_eq!(
        quantities,
        vec![500.0, 500.0, 200.0, 200.0],
        "min(offer, need)"
    );
    assert_eq!(synergies_21(app).await.len(), 4);
    let bo = sawmill(app, "Scierie de Brest", BREST, 0.0, 900.0).await;
    let bn = boiler(app, "Chaufferie de Brest", BREST, 2.0, 900.0).await;
    let all = ok(app, "/api/v1/synergies?limit=500").await.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let brest = all
        .iter()
        .find(|s| s["offer_id"] == bo.as_str() && s["need_id"] == bn.as_str())
        .map(|s| str_of(s, "id").to_owned())
        .expect("the Brest synergy");
    Territory {
        offers: [o1, o2],
        receivers: [receivers[0].clone(), receivers[1].clone()],
        ids: ids.try_into().expect("four ids"),
        quantities: quantities.try_into().expect("four quantities"),
        brest,
    }
}

async fn kpis(app: &TestApp) -> Value {
    ok(app, "/api/v1/territories/21/kpis").await.body
}

fn funnel(block: &Value) -> Vec<(String, u64, Option<f64>)> {
    block["funnel"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                str_of(s, "stage").to_owned(),
                s["reached"].as_u64().unwrap_or(u64::MAX),
                s["rate"].as_f64(),
            )
        })
        .collect()
}

fn assert_funnel(block: &Value, reached: [u64; 4], total: u64) {
    let got = funnel(block);
    let stages: Vec<&str> = got.iter().map(|(s, _, _)| s.as_str()).collect();
    assert_eq!(
        stages,
        vec!["detected", "proposed", "in_study", "implemented"]
    );
    for (i, (stage, n, rate)) in got.iter().enumerate() {
        assert_eq!(*n, reached[i], "{stage} reached");
        approx(
            rate.unwrap_or(f64::NAN),
            reached[i] as f64 / total as f64,
            &format!("{stage} rate"),
        );
    }
}

#[actix_web::test]
async fn kpis_count_statuses_the_funnel_and_realised_tonnes() {
    let app = spawn_app().await;
    let t = territory(&app).await;
    let [s1, s2, s3, _s4] = &t.ids;

    // Nothing acted on yet: four detected synergies.
    let k = kpis(&app).await;
    assert_eq!(k["territory"]["code"], "21");
    assert_eq!(k["totals"]["synergies"], 4);
    assert_eq!(k["totals"]["counts"]["detected"], 4);
    assert_funnel(&k["totals"], [4, 0, 0, 0], 4);

    walk(&app, s1, &["proposed", "in_study", "implemented"]).await;
    let realised = patch(
        &app,
        s1,
        json!({"realised": {"quantity": 400.0, "diverted_t": 300.0, "co2e_avoided_t": 50.0}}),
    )
    .await;
    assert_eq!(realised.status, 200, "{}", realised.text);
    walk(&app, s2, &["proposed", "rejected"]).await;
    walk(&app, s3, &["proposed", "in_study"]).await;
    walk(&app, &t.brest, &["proposed", "in_study", "implemented"]).await;

    let k = kpis(&app).await;
    let totals = &k["totals"];
    assert_eq!(
        totals["synergies"], 4,
        "the Brest synergy has no party in 21"
    );
    assert_eq!(
        totals["counts"],
        json!({"detected": 1, "proposed": 0, "in_study": 1, "implemented": 1, "rejected": 1, "abandoned": 0})
    );
    // reached: detected 4; proposed s1, s2, s3; in_study s1, s3; implemented s1
    assert_funnel(totals, [4, 3, 2, 1], 4);
    let implemented = &totals["implemented"];
    assert_eq!(implemented["synergies"], 1);
    assert_eq!(implemented["with_realised_values"], 1);
    approx(
        num(implemented, "tonnes_exchanged_t"),
        400.0,
        "realised quantity",
    );
    approx(
        num(implemented, "tonnes_diverted_t"),
        300.0,
        "realised diversion",
    );
    approx(num(implemented, "co2e_avoided_t"), 50.0, "realised CO2e");
    approx(
        num(implemented, "imports_avoided_t"),
        0.0,
        "no account: no import avoided",
    );
    // under way: s3 (in study), detected estimates: 200 t, half diverted
    let progress = &totals["in_progress"];
    assert_eq!(progress["synergies"], 1);
    approx(num(progress, "tonnes_exchanged_t"), 200.0, "s3 quantity");
    approx(
        num(progress, "tonnes_diverted_t"),
        WOOD_DIVERTED_SHARE * t.quantities[2],
        "s3 estimate",
    );
    // by family and by year: one family, one year
    let families = k["by_family"].as_array().cloned().unwrap_or_default();
    assert_eq!(families.len(), 1, "{families:#?}");
    assert_eq!(families[0]["family"], "agricultural_food");
    assert_eq!(families[0]["synergies"], 4);
    approx(
        num(&families[0]["implemented"], "tonnes_diverted_t"),
        300.0,
        "family diversion",
    );
    let years = k["by_year"].as_array().cloned().unwrap_or_default();
    assert_eq!(years.len(), 1, "{years:#?}");
    assert_eq!(years[0]["year"], i64::from(utc_now().year()));
    assert_funnel(&years[0], [4, 3, 2, 1], 4);

    // Imports avoided once the territory's account says agricultural products are mostly imported.
    let account = "territory,year,flow,family,partner,value,unit,uncertainty,source,note\n\
                   21,2015,DE,agricultural_food,,1000,t,,hand-made,\n\
                   21,2015,IMP,agricultural_food,rest_of_france,3000,t,,hand-made,\n";
    let imported = app
        .post_csv("/api/v1/territories/21/afme/import", account.to_owned())
        .await;
    assert_eq!(imported.status, 201, "{}", imported.text);
    let k = kpis(&app).await;
    assert_eq!(k["account_year"], 2015);
    approx(
        num(&k["totals"]["implemented"], "imports_avoided_t"),
        400.0,
        "import dependence 0.75 > 0.5",
    );
    approx(
        num(&k["totals"]["in_progress"], "imports_avoided_t"),
        200.0,
        "s3 would avoid its 200 t",
    );

    // s1 and s2 lose their offer: retired, but a facilitator moved them, so they still count.
    assert_eq!(
        app.delete(&format!("/api/v1/resources/{}", t.offers[0]))
            .await
            .status,
        204
    );
    let k = kpis(&app).await;
    // The four, plus Scierie 1 as a latent receiver of Scierie 2's sawdust now that it offers none.
    assert_eq!(k["totals"]["synergies"], 5);
    assert_eq!(k["totals"]["counts"]["implemented"], 1);
    approx(
        num(&k["totals"]["implemented"], "tonnes_diverted_t"),
        300.0,
        "retired implemented synergy counts",
    );
    let retired = patch(&app, s1, json!({"note": "offer withdrawn"})).await;
    assert_eq!(retired.body["active"], false, "{}", retired.text);
    // s4 (still detected) loses its receiver (the actor is deleted, so it is no latent receiver
    // either): retired and no longer counted. s2 (rejected) keeps counting through its provider.
    assert_eq!(
        app.delete(&format!("/api/v1/actors/{}", t.receivers[1]))
            .await
            .status,
        204
    );
    let k = kpis(&app).await;
    // s1, s2, s3 and the latent Scierie 2 → Scierie 1 (still detected).
    assert_eq!(k["totals"]["synergies"], 4);
    assert_eq!(k["totals"]["counts"]["detected"], 1);
    assert_funnel(&k["totals"], [4, 3, 2, 1], 4);

    // The CSV export in English: a header and one row per total, family and year, with the same
    // numbers, `,` and `.`, no BOM.
    let csv = app
        .get_lang("/api/v1/territories/21/kpis?format=csv", "en-GB,en;q=0.9")
        .await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    assert!(!csv.text.starts_with('\u{feff}'), "no BOM in English");
    let (header, rows) = kpi_csv_rows(&csv.text, b',');
    for column in [
        "dimension",
        "key",
        "label",
        "synergies",
        "implemented",
        "rejected",
        "rate_implemented",
        "implemented_tonnes_diverted_t",
        "implemented_co2e_avoided_t",
        "implemented_imports_avoided_t",
    ] {
        assert!(header.iter().any(|h| h == column), "{column} in {header:?}");
    }
    let dims: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r["dimension"].clone(), r["key"].clone()))
        .collect();
    let year = utc_now().year().to_string();
    assert_eq!(
        dims,
        BTreeSet::from([
            ("total".to_owned(), "21".to_owned()),
            ("family".to_owned(), "agricultural_food".to_owned()),
            ("year".to_owned(), year.clone()),
        ])
    );
    let family = |rows: &[HashMap<String, String>]| {
        rows.iter()
            .find(|r| r["dimension"] == "family")
            .map(|r| r["label"].clone())
            .expect("a family row")
    };
    assert_eq!(family(&rows), "Agricultural and food products");
    let total = rows
        .iter()
        .find(|r| r["dimension"] == "total")
        .expect("a total row")
        .clone();
    let cell = |name: &str| {
        total[name]
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("{name} = {:?}", total[name]))
    };
    assert_eq!(cell("synergies"), 4.0);
    assert_eq!(cell("implemented"), 1.0);
    assert_eq!(cell("rejected"), 1.0);
    // 1 / 4, written as a share rounded to 0.1 %.
    assert_eq!(total["rate_implemented"], "0.25");
    approx(
        cell("implemented_tonnes_diverted_t"),
        300.0,
        "csv diversion",
    );
    approx(cell("implemented_imports_avoided_t"), 400.0, "csv imports");
    for (name, value) in &total {
        if name.ends_with("_t") || name.starts_with("rate_") {
            let decimals = value.split('.').nth(1).map_or(0, str::len);
            let most = if name.starts_with("rate_") { 3 } else { 1 };
            assert!(decimals <= most, "{name} = {value}: rounded");
        }
    }

    // In French (the default, and on request): `;`, decimal comma, a BOM, French family labels.
    let fr = app.get("/api/v1/territories/21/kpis?format=csv").await;
    assert_eq!(fr.status, 200, "{}", fr.text);
    assert!(fr.text.starts_with('\u{feff}'), "BOM: {:?}", &fr.text[..10]);
    let explicit = app
        .get_lang("/api/v1/territories/21/kpis?format=csv", "fr-FR")
        .await;
    assert_eq!(explicit.text, fr.text);
    let (fr_header, fr_rows) = kpi_csv_rows(fr.text.trim_start_matches('\u{feff}'), b';');
    assert_eq!(fr_header, header, "same columns in both languages");
    assert_eq!(family(&fr_rows), "Produits agricoles et alimentaires");
    let fr_total = fr_rows
        .iter()
        .find(|r| r["dimension"] == "total")
        .expect("a total row");
    assert_eq!(fr_total["rate_implemented"], "0,25");
    assert_eq!(fr_total["synergies"], "4");
    for (name, value) in fr_total {
        assert!(!value.contains('.'), "{name} = {value}: decimal comma");
        let english = total[name].replace('.', ",");
        assert_eq!(value, &english, "{name}: same figure in both languages");
    }

    assert_field_error(
        &app.get("/api/v1/territories/21/kpis?format=xml").await,
        "format",
    );
    assert_eq!(
        app.get("/api/v1/territories/XX-NOWHERE/kpis").await.status,
        404
    );
    // Another territory's KPIs: only Brest's synergy.
    let finistere = ok(&app, "/api/v1/territories/29/kpis").await.body;
    assert_eq!(finistere["totals"]["synergies"], 1);
    assert_eq!(finistere["totals"]["counts"]["implemented"], 1);
}

/// The header and rows of a KPI CSV read with `delimiter`.
fn kpi_csv_rows(text: &str, delimiter: u8) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert!(
        header.len() > 20,
        "read with {:?}: {header:?}",
        delimiter as char
    );
    let rows = reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.expect("a record").iter().map(str::to_owned))
                .collect()
        })
        .collect();
    (header, rows)
}

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
