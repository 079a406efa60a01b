//! Builds after a few writes carry the previous build's candidates and match again only the offers
//! the writes reach (`matching::engine::incremental`): what a facilitator or a portal reads must be
//! what a full detection gives.

use serde_json::{Value, json};

use super::{DIJON, all_items, boiler_need, near, resource, sawdust, site, tonnes};
use crate::helpers::{TestApp, spawn_with};

/// Every synergy and pooling group as listed: id, kind, score (to 1e-12), and the parties.
async fn listed(app: &TestApp) -> Vec<String> {
    let mut out: Vec<String> = all_items(app, "/api/v1/synergies")
        .await
        .iter()
        .map(|s| {
            format!(
                "{} {} {:.12} {} {}",
                s["id"].as_str().unwrap_or_default(),
                s["kind"].as_str().unwrap_or_default(),
                s["score"].as_f64().unwrap_or(f64::NAN),
                s["offer_id"],
                s["need_id"],
            )
        })
        .collect();
    out.sort();
    out
}

/// What the build that answered the last read matched again. The current build, not a fresh one: the
/// change follower may see the write's counter after that build read it and ask for one more build,
/// which would have nothing to match again.
fn offers_matched_again(app: &TestApp) -> Option<usize> {
    app.app
        .detection
        .latest(&app.app.pool)
        .expect("a build")
        .0
        .rematched
}

/// How many changed rows the build that answered the last read took from the change feed (`None`:
/// it read every row).
fn changes_read(app: &TestApp) -> Option<usize> {
    app.app
        .detection
        .latest(&app.app.pool)
        .expect("a build")
        .0
        .changes_read
}

fn pallets(t: f64) -> Value {
    json!({"kind": "need", "category": "material", "class": "material/biomass/wood",
           "label": "Palettes", "quantity": tonnes(t)})
}

#[actix_web::test]
async fn builds_after_writes_list_what_a_full_detection_lists() {
    // Every read sees every write: each write below is followed by a build.
    let app = spawn_with(|s| s.matching.max_staleness_ms = 0).await;
    let mut sites = Vec::new();
    for i in 0..12 {
        let at = near(&app, DIJON, f64::from(i % 4) * 6.0, f64::from(i / 4) * 5.0);
        let naf = ["16.10A", "35.30Z", "16.24Z", "38.21Z"][i as usize % 4];
        sites.push(site(&app, &format!("Site {i}"), naf, DIJON, at).await);
    }
    let mut needs = Vec::new();
    for (i, s) in sites.iter().enumerate() {
        if i % 2 == 0 {
            resource(&app, s, sawdust(100.0 + i as f64 * 30.0)).await;
        } else {
            needs.push(resource(&app, s, boiler_need(tonnes(200.0 + i as f64 * 10.0))).await);
        }
        resource(&app, s, pallets(50.0 + i as f64)).await;
    }
    let first = listed(&app).await;
    assert!(first.len() > 20, "{} synergies and groups", first.len());

    // A need more, a quantity changed, a need removed, an actor moved: after each, a build that
    // carried the others' candidates.
    let extra = site(
        &app,
        "Chaufferie",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 9.0, 4.0),
    )
    .await;
    resource(&app, &extra, boiler_need(tonnes(900.0))).await;
    let _ = listed(&app).await;
    assert!(offers_matched_again(&app).is_some(), "a carried build");
    // The actor and its need, read from the change feed (a write the follower saw in between
    // may have been read by a build of its own).
    assert!(
        matches!(changes_read(&app), Some(1..=2)),
        "{:?}",
        changes_read(&app)
    );
    let reply = app
        .patch(
            &format!("/api/v1/resources/{}", needs[0]),
            &json!({"quantity": tonnes(5.0)}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let _ = listed(&app).await;
    assert!(offers_matched_again(&app).is_some(), "a carried build");
    let reply = app.delete(&format!("/api/v1/resources/{}", needs[1])).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    let _ = listed(&app).await;
    let (lat, lng) = near(&app, DIJON, -15.0, -10.0);
    let reply = app
        .patch(
            &format!("/api/v1/actors/{}", sites[3].id),
            &json!({"lat": lat, "lng": lng}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let carried = listed(&app).await;
    let rematched = offers_matched_again(&app).expect("a carried build");
    assert!(rematched > 0, "the moved actor's offers are matched again");
    assert_eq!(
        changes_read(&app),
        Some(1),
        "only the moved actor's row is read again"
    );
    assert_ne!(carried, first, "the writes changed the synergies");

    // The same data detected in full lists the same synergies, scores and groups. First let the
    // change follower see the last write and bring the build up to date: otherwise the one more
    // build it may ask for (nothing to match again) can land after the full detection.
    actix_web::rt::time::sleep(std::time::Duration::from_millis(500)).await;
    app.app.detection.fresh(&app.app.pool).expect("a build");
    let reply = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(offers_matched_again(&app), None, "a full detection");
    assert_eq!(changes_read(&app), None, "a full detection reads every row");
    assert_eq!(listed(&app).await, carried);
}

/// A deleted actor takes its resources with it (the database's cascade, recorded in the change
/// feed like any write): the build that reads the feed lists what a build reading every row lists.
/// Once the feed is pruned past a build, the next one reads every row.
#[actix_web::test]
async fn builds_from_the_change_feed_see_cascades_and_fall_back_once_it_is_pruned() {
    let app = spawn_with(|s| s.matching.max_staleness_ms = 0).await;
    let (mut sites, mut owned) = (Vec::new(), Vec::new());
    for i in 0..6 {
        let at = near(&app, DIJON, f64::from(i) * 4.0, 3.0);
        let naf = ["16.10A", "35.30Z"][i as usize % 2];
        let site = site(&app, &format!("Site {i}"), naf, DIJON, at).await;
        let mut ids = Vec::new();
        if i % 2 == 0 {
            ids.push(resource(&app, &site, sawdust(120.0)).await);
            ids.push(resource(&app, &site, pallets(40.0)).await);
        } else {
            ids.push(resource(&app, &site, boiler_need(tonnes(300.0))).await);
        }
        sites.push(site);
        owned.push(ids);
    }
    let names_gone = |list: &[String]| {
        list.iter()
            .filter(|s| owned[2].iter().any(|id| s.contains(id.as_str())))
            .count()
    };
    let before = listed(&app).await;
    assert!(names_gone(&before) > 0, "the site to delete has synergies");
    let reply = app.delete(&format!("/api/v1/actors/{}", sites[2].id)).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    let after = listed(&app).await;
    // The actor and its two resources.
    assert_eq!(changes_read(&app), Some(3));
    assert_eq!(names_gone(&after), 0, "{after:#?}");

    // What a build reading every row lists.
    actix_web::rt::time::sleep(std::time::Duration::from_millis(500)).await;
    app.app.detection.fresh(&app.app.pool).expect("a build");
    let reply = app.post("/api/v1/synergies/detect", &json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(changes_read(&app), None);
    assert_eq!(listed(&app).await, after);

    // Pruned as if far more had been written since: the next build cannot trust the feed.
    let mut conn = app.app.pool.get().expect("a connection");
    let latest = symbiose::db::changes::versions(&mut conn)
        .expect("versions")
        .data;
    let pruned =
        symbiose::db::changes::prune(&mut conn, latest + 2 * symbiose::db::changes::FEED_KEPT + 1)
            .expect("prune");
    assert!(pruned > 0, "the feed held this test's writes");
    drop(conn);
    resource(&app, &sites[0], sawdust(80.0)).await;
    let _ = listed(&app).await;
    assert_eq!(
        changes_read(&app),
        None,
        "the feed no longer covers the last build"
    );
}

/// A bulk import is not recorded row by row in the change feed: the build after it reads every row
/// (and lists what a full detection lists), and the feed records the writes after it again.
#[actix_web::test]
async fn after_an_import_a_build_reads_every_row_then_the_feed_again() {
    let app = spawn_with(|s| s.matching.max_staleness_ms = 0).await;
    let boiler = site(
        &app,
        "Chaufferie",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 2.0, 1.0),
    )
    .await;
    resource(&app, &boiler, boiler_need(tonnes(500.0))).await;
    let _ = listed(&app).await;
    let csv = "actor_ref,actor_name,siret,naf_code,commune_insee,kind,category,label,ewc_code,quantity,unit,period\n\
               saw,Scierie,,16.10A,21231,offer,material,Sciures,03 01 05,40,t,month\n\
               mill,Menuiserie,,16.23Z,21231,offer,material,Copeaux,03 01 05,10,t,month\n";
    let reply = app.post_csv("/api/v1/import", csv.to_owned()).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let imported = listed(&app).await;
    assert_eq!(
        changes_read(&app),
        None,
        "the import's rows are read with every row"
    );
    assert!(
        imported.len() >= 2,
        "the two offers reach the boiler: {imported:#?}"
    );

    resource(&app, &boiler, pallets(30.0)).await;
    let _ = listed(&app).await;
    assert_eq!(
        changes_read(&app),
        Some(1),
        "a write after the import is in the feed"
    );
}

/// A `data` counter behind the last build's (the database replaced by a restored backup, its feed
/// with it): the next build reads every row rather than trust a feed that says nothing changed.
#[actix_web::test]
async fn a_counter_gone_back_makes_the_next_build_read_every_row() {
    use diesel::RunQueryDsl;
    let app = spawn_with(|s| s.matching.max_staleness_ms = 0).await;
    let mill = site(
        &app,
        "Scierie",
        "16.10A",
        DIJON,
        near(&app, DIJON, 1.0, 1.0),
    )
    .await;
    resource(&app, &mill, sawdust(200.0)).await;
    let boiler = site(
        &app,
        "Chaufferie",
        "35.30Z",
        DIJON,
        near(&app, DIJON, 3.0, 1.0),
    )
    .await;
    let _ = listed(&app).await;
    {
        let mut conn = app.app.pool.get().expect("a connection");
        for statement in [
            "UPDATE change_versions SET version = 0 WHERE kind = 'data'",
            "DELETE FROM data_changes",
            "UPDATE data_changes_state SET pruned_through = 0",
        ] {
            diesel::sql_query(statement)
                .execute(&mut *conn)
                .expect(statement);
        }
    }
    let need = resource(&app, &boiler, boiler_need(tonnes(300.0))).await;
    let after = listed(&app).await;
    assert_eq!(changes_read(&app), None, "every row read");
    assert!(
        after.iter().any(|s| s.contains(&need)),
        "the need written after the counter went back is matched: {after:#?}"
    );
}
