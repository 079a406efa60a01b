//! The anonymous view kept with each build: updated after a rebuild, computed once per build.

use super::*;

/// After a rebuild, the new build's anonymous view is computed at once in the background from the
/// previous build's (only the offers the change reaches are matched again): a partner's next read
/// finds it ready, and it is the view a full computation gives.
#[actix_web::test]
async fn a_rebuild_brings_the_partners_view_up_to_date_from_the_previous_one() {
    let app = spawn_with(|s| s.matching.max_staleness_ms = 0).await;
    let scene = scene(&app).await;
    let (detection, pool, reference) = (
        app.app.detection.clone(),
        app.app.pool.clone(),
        app.app.reference.clone(),
    );
    // More of the territory, so that a write reaches a part of it only.
    for i in 0..8 {
        let actor = app
            .create_actor(
                json!({"name": format!("Menuiserie {i}"), "naf_code": "16.23Z",
                "commune_insee": "21054", "share_with_partners": i % 2 == 0}),
            )
            .await;
        app.create_resource(
            &actor,
            json!({"kind": "offer", "category": "material",
            "label": "Chutes de bois", "ewc_code": "03 01 05",
            "quantity": {"value": 20 + i, "unit": "t", "period": "year"}}),
        )
        .await;
    }
    let before = detection.fresh(&pool).expect("a build");
    symbiose::auth::anonymise::anonymous_view(&before, &detection, &reference).expect("a view");
    // A write, and the rebuild a read makes.
    app.create_resource(
        &scene.secret_id,
        json!({"kind": "offer", "category": "material", "label": "Écorces",
               "ewc_code": "03 01 01", "quantity": {"value": 80, "unit": "t", "period": "year"}}),
    )
    .await;
    // The build that holds the write (or one more, if the change follower asked for it after that
    // build read the counters: a view is not made for a build about to be replaced).
    let mut made = None;
    for _ in 0..200 {
        let current = detection.fresh(&pool).expect("a build");
        if let Some(view) = current.anonymous.get().cloned() {
            made = Some((current, view));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (after, view) = made.expect("the new build's view, computed without a partner asking");
    assert!(after.version > before.version);
    assert!(view.rematched.is_some(), "computed from the previous view");
    let full = after
        .moved(
            &detection.settings,
            &detection.pooling,
            |a| {
                symbiose::auth::anonymise::known_position(
                    &reference,
                    &a.commune,
                    a.lat,
                    a.lng,
                    a.share_with_partners,
                )
            },
            None,
            1,
        )
        .expect("a full view");
    assert_eq!(full.rematched, None);
    assert_eq!(view.synergies.as_slice(), full.synergies.as_slice());
    assert_eq!(view.pooling, full.pooling);
    // A partner's read uses it: no computation of its own.
    let partner = app.key("portal", Role::Partner, &[]);
    let listed = app
        .call(
            Some(&partner),
            Method::GET,
            "/api/v1/synergies?territory=21",
            None,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(
        after
            .anonymous_computed
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // The replaced build is freed once nobody reads it, even while its view is still read (here by
    // this test): the build's memory is not held for the view's sake.
    let earlier_view = before.anonymous.get().cloned().expect("the earlier view");
    let replaced = std::sync::Arc::downgrade(&before);
    drop(before);
    for _ in 0..100 {
        if replaced.strong_count() == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(replaced.strong_count(), 0, "the replaced build is freed");
    assert!(
        !earlier_view.synergies.is_empty(),
        "its view is still readable"
    );
}

/// Partner reads that arrive together after a build share one computation of its anonymous view
/// (at national scale each is a second detection: ~12 s and ~1.7 GiB), and all read the same view.
#[actix_web::test]
async fn concurrent_partner_reads_compute_the_anonymous_view_once() {
    let app = spawn_app().await;
    scene(&app).await;
    let (detection, pool, reference) = (
        app.app.detection.clone(),
        app.app.pool.clone(),
        app.app.reference.clone(),
    );
    let built = detection.fresh(&pool).expect("a build");
    assert!(built.anonymous.get().is_none(), "nobody asked for it yet");
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (built, detection, reference) =
                (built.clone(), detection.clone(), reference.clone());
            std::thread::spawn(move || {
                symbiose::auth::anonymise::anonymous_view(&built, &detection, &reference)
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    let views: Vec<_> = readers
        .into_iter()
        .map(|r| r.join().expect("reader").expect("the anonymous view"))
        .collect();
    assert!(
        views.iter().all(|v| std::sync::Arc::ptr_eq(v, &views[0])),
        "every reader reads the one view kept with the build"
    );
    assert!(
        !std::sync::Arc::ptr_eq(&views[0], &built),
        "a non-consenting actor: the view is not the build itself"
    );
    assert_eq!(
        built
            .anonymous_computed
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}
