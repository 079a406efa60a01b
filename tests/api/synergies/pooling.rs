//! Pooling groups: producers of the same waste pool its collection, from three members on.

use super::*;

// ---------------------------------------------------------------------------------------------------
// 9. Pooling
// ---------------------------------------------------------------------------------------------------

/// Spherical mean of positions (the centroid the pooling groups document).
fn spherical_mean(sites: &[&Site]) -> (f64, f64) {
    let (mut x, mut y, mut z) = (0.0, 0.0, 0.0);
    for s in sites {
        let (p, l) = (s.lat.to_radians(), s.lng.to_radians());
        x += p.cos() * l.cos();
        y += p.cos() * l.sin();
        z += p.sin();
    }
    let norm = (x * x + y * y + z * z).sqrt();
    ((z / norm).asin().to_degrees(), y.atan2(x).to_degrees())
}

#[actix_web::test]
async fn pooling_groups_form_at_three_members_not_two() {
    let app = spawn_app().await;
    let one_site = site(
        &app,
        "Imprimerie",
        "18.12Z",
        DIJON,
        near(&app, DIJON, 0.0, 0.0),
    )
    .await;
    let two = site(
        &app,
        "Menuiserie",
        "16.23Z",
        DIJON,
        near(&app, DIJON, 2.0, 1.0),
    )
    .await;
    let three = site(
        &app,
        "Laiterie",
        "10.51C",
        DIJON,
        near(&app, DIJON, -1.0, 2.5),
    )
    .await;
    // Same need, 60 km away: beyond the 15 km radius.
    let remote = site(
        &app,
        "Fromagerie",
        "10.51C",
        DIJON,
        near(&app, DIJON, 60.0, 0.0),
    )
    .await;
    resource(&app, &one_site, collection_need(12.0)).await;
    resource(&app, &two, collection_need(24.0)).await;
    resource(&app, &remote, collection_need(6.0)).await;

    // Two nearby actors: a bilateral deal, no group.
    let groups = all_items(&app, "/api/v1/synergies?territory=21&kind=pooling").await;
    assert!(groups.is_empty(), "{groups:#?}");

    let third = resource(&app, &three, collection_need(52.0)).await;
    let groups = all_items(&app, "/api/v1/synergies?territory=21&kind=pooling").await;
    assert_eq!(groups.len(), 1, "{groups:#?}");
    let g = &groups[0];
    assert_eq!(g["kind"], "pooling");
    assert_eq!(g["key_kind"], "need_class");
    assert_eq!(g["key"], "service/collection");
    let members: HashSet<&str> = g["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| str_of(m, "actor_id"))
        .collect();
    assert_eq!(
        members,
        HashSet::from([one_site.id.as_str(), two.id.as_str(), three.id.as_str()])
    );
    approx(
        num(g, "total_yearly_quantity"),
        12.0 + 24.0 + 52.0,
        "total yearly volume",
    );
    assert_eq!(g["base_unit"], "unit");
    let (lat, lng) = spherical_mean(&[&one_site, &two, &three]);
    approx(num(&g["centroid"], "lat"), lat, "centroid lat");
    approx(num(&g["centroid"], "lng"), lng, "centroid lng");
    let c = Site {
        id: String::new(),
        name: String::new(),
        lat,
        lng,
    };
    let radius = [&one_site, &two, &three]
        .iter()
        .map(|s| km(s, &c))
        .fold(0.0, f64::max);
    approx(
        num(g, "radius_km"),
        radius,
        "radius = farthest member from the centroid",
    );
    assert!(radius < 5.0);
    let score = num(g, "score");
    assert!((0.0..=1.0).contains(&score));
    let id = str_of(g, "id").to_owned();
    assert_eq!(
        ok(&app, &format!("/api/v1/synergies/{id}")).await.body["key"],
        "service/collection"
    );
    // Listed for each member, not for the remote actor.
    for member in [&one_site, &two, &three] {
        let mine = items(
            &ok(
                &app,
                &format!("/api/v1/actors/{}/synergies?kind=pooling", member.id),
            )
            .await,
        );
        assert_eq!(mine.len(), 1, "{mine:#?}");
    }
    assert!(items(&ok(&app, &format!("/api/v1/actors/{}/synergies", remote.id)).await).is_empty());
    // Filters: not a substitution, never latent.
    assert!(poolings(&all_items(&app, "/api/v1/synergies?kind=substitution").await).is_empty());
    assert!(poolings(&all_items(&app, "/api/v1/synergies?latent=true").await).is_empty());

    // Back to two: the group is retired.
    assert_eq!(
        app.delete(&format!("/api/v1/resources/{third}"))
            .await
            .status,
        204
    );
    assert!(
        all_items(&app, "/api/v1/synergies?kind=pooling")
            .await
            .is_empty()
    );
    assert_eq!(
        app.get(&format!("/api/v1/synergies/{id}")).await.status,
        404
    );
}

#[actix_web::test]
async fn three_producers_of_the_same_waste_pool_its_collection() {
    let app = spawn_app().await;
    let mut sites = Vec::new();
    for (i, (east, north)) in [(0.0, 0.0), (3.0, 0.0), (0.0, 3.0)].into_iter().enumerate() {
        let s = site(
            &app,
            &format!("Atelier {i}"),
            "25.62A",
            MACON,
            near(&app, MACON, east, north),
        )
        .await;
        resource(
            &app,
            &s,
            json!({"kind": "offer", "category": "material", "label": "Emballages en carton", "ewc_code": "15 01 01",
                   "quantity": tonnes(10.0 * (i as f64 + 1.0))}),
        )
        .await;
        sites.push(s);
    }
    let groups = all_items(&app, "/api/v1/synergies?territory=71&kind=pooling").await;
    assert_eq!(groups.len(), 1, "{groups:#?}");
    assert_eq!(groups[0]["key_kind"], "offer_ewc");
    assert_eq!(groups[0]["key"], "15 01 01");
    assert_eq!(groups[0]["members"].as_array().map(Vec::len), Some(3));
    approx(
        num(&groups[0], "total_yearly_quantity"),
        60.0,
        "10 + 20 + 30 t",
    );
    assert_eq!(groups[0]["base_unit"], "t");
    assert!(
        all_items(&app, "/api/v1/synergies?territory=21&kind=pooling")
            .await
            .is_empty(),
        "not in Côte-d'Or"
    );
}
