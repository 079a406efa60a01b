//! Reads under a staleness limit: the old build, then the new one; actor lists see new resources.

use super::*;

#[actix_web::test]
async fn with_a_staleness_limit_a_read_gets_the_previous_build_and_the_new_one_follows_in_the_background()
 {
    let app = crate::helpers::spawn_with(|s| s.matching.max_staleness_ms = 600_000).await;
    let sawmill = site(
        &app,
        "Scierie",
        "16.10A",
        DIJON,
        near(&app, DIJON, 0.0, 0.0),
    )
    .await;
    let boiler = site(
        &app,
        "Chaufferie bois",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 3.0, 0.0),
    )
    .await;
    resource(&app, &sawmill, sawdust(500.0)).await;
    let first_need = resource(&app, &boiler, boiler_need(tonnes(300.0))).await;
    let path = format!("/api/v1/actors/{}/synergies?latent=false", boiler.id);
    let need_ids = |items: &[Value]| -> HashSet<String> {
        items
            .iter()
            .filter_map(|s| s["need_id"].as_str().map(str::to_owned))
            .collect()
    };
    // The server's start built the empty detection; a run asked for builds at once, whatever the
    // staleness limit allows.
    let run = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(run.status, 200, "{}", run.text);
    assert_eq!(
        run.body["summary"]["inserted"],
        run.body["substitution"].as_u64().unwrap_or(0) + run.body["pooling"].as_u64().unwrap_or(0),
        "everything is new against the start's empty build: {}",
        run.text
    );
    assert_eq!(
        need_ids(&all_items(&app, &path).await),
        HashSet::from([first_need.clone()])
    );

    let second = site(
        &app,
        "Chaufferie bois 2",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 0.0, 3.0),
    )
    .await;
    let second_need = resource(&app, &second, boiler_need(tonnes(200.0))).await;
    // A territory's list may read a recent build (an actor's own list may not: it waits for a
    // build with the actor's resources as stored).
    let territory_path = "/api/v1/synergies?territory=21&latent=false";
    // The previous build is recent: this read answers from it at once (no synergy of the new
    // need yet) and starts the rebuild in the background…
    assert_eq!(
        need_ids(&all_items(&app, territory_path).await),
        HashSet::from([first_need.clone()])
    );
    // …which then serves later reads, with no further write to trigger it.
    let mut seen = HashSet::new();
    for _ in 0..100 {
        seen = need_ids(&all_items(&app, territory_path).await);
        if seen.contains(&second_need) {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, HashSet::from([first_need.clone(), second_need]));

    // A resource's matches never contradict its 201: a need created now has its matches at once,
    // even with a recent build that does not know it yet.
    let third = site(
        &app,
        "Chaufferie bois 3",
        "35.30Z",
        DIJON,
        near(&app, DIJON, -3.0, 0.0),
    )
    .await;
    let third_need = resource(&app, &third, boiler_need(tonnes(100.0))).await;
    let reply = app
        .get(&format!("/api/v1/resources/{third_need}/matches"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(!items(&reply).is_empty(), "{}", reply.text);
    // Matched at once against the recent build, as the full build then matches it: same synergy
    // ids, scores, names and labels.
    let seen = |reply: &Reply| -> Vec<(String, String, String, String)> {
        items(reply)
            .iter()
            .map(|s| {
                (
                    str_of(s, "id").to_owned(),
                    format!("{:.9}", num(s, "score")),
                    str_of(s, "receiver_name").to_owned(),
                    str_of(s, "need_label").to_owned(),
                )
            })
            .collect()
    };
    let run = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(run.status, 200, "{}", run.text);
    let rebuilt = app
        .get(&format!("/api/v1/resources/{third_need}/matches"))
        .await;
    assert_eq!(seen(&reply), seen(&rebuilt));
    assert_eq!(seen(&reply)[0].2, "Chaufferie bois 3");
}

#[actix_web::test]
async fn an_actors_list_sees_a_resource_created_a_moment_ago_whatever_the_staleness_limit() {
    let app = crate::helpers::spawn_with(|s| s.matching.max_staleness_ms = 600_000).await;
    let boiler = site(
        &app,
        "Chaufferie bois",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 3.0, 0.0),
    )
    .await;
    resource(&app, &boiler, boiler_need(tonnes(300.0))).await;
    // A build from before the sawmill: within the staleness limit, lists may read it.
    ok(&app, "/api/v1/synergies?limit=1").await;
    let sawmill = site(
        &app,
        "Scierie",
        "16.10A",
        DIJON,
        near(&app, DIJON, 0.0, 0.0),
    )
    .await;
    let offer = resource(&app, &sawmill, sawdust(500.0)).await;
    let list = items(&ok(&app, &format!("/api/v1/actors/{}/synergies", sawmill.id)).await);
    assert!(
        list.iter().any(|s| s["offer_id"] == offer.as_str()),
        "the sawmill's own list misses its new offer: {list:#?}"
    );
}
