//! Status transitions allowed and refused, reasons, history, bad bodies, concurrent changes.

use super::*;

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
