use serde_json::Value;

use crate::helpers::{Reply, TestApp, assert_field_error, spawn_app};

fn codes(reply: &Reply) -> Vec<String> {
    reply.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["code"].as_str().map(str::to_owned))
        .collect()
}

async fn search(app: &TestApp, path: &str) -> Reply {
    let reply = app.get(path).await;
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.text);
    assert!(
        reply.content_type.starts_with("application/json"),
        "{}",
        reply.content_type
    );
    reply
}

/// Every code of a search, following `next_cursor` with pages of `limit`.
async fn walk(app: &TestApp, base: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = format!("{base}&limit={limit}");
    for _ in 0..1000 {
        let page = search(app, &path).await;
        let got = codes(&page);
        assert!(got.len() <= limit, "page larger than the limit");
        out.extend(got);
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("{base}&limit={limit}&cursor={cursor}"),
            None => return out,
        }
    }
    panic!("pagination of {base} does not end");
}

#[actix_web::test]
async fn ewc_search_by_code_prefix_in_code_order() {
    let app = spawn_app().await;
    let expected: Vec<String> = app
        .app
        .reference
        .ewc
        .all()
        .iter()
        .map(|c| c.code.clone())
        .filter(|c| c.starts_with("1001"))
        .collect();
    assert!(
        expected.len() > 20,
        "the 10 01 sub-chapter has some twenty codes"
    );

    for q in ["10%2001", "1001", "10+01", "%2010%2001%20"] {
        let reply = search(&app, &format!("/api/v1/codes/ewc?q={q}&limit=500")).await;
        let got = codes(&reply);
        assert_eq!(got, expected, "q={q}");
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(got, sorted, "code order");
        assert_eq!(reply.body["next_cursor"], Value::Null);
    }

    let exact = search(&app, "/api/v1/codes/ewc?q=100102").await;
    assert_eq!(codes(&exact), vec!["100102"]);
    let item = &exact.body["items"][0];
    assert_eq!(item["display"], "10 01 02");
    assert_eq!(item["hazardous"], false);
    assert_eq!(item["chapter"], "10");
    assert_eq!(item["subchapter"], "1001");
    assert_eq!(item["label_en"], "Coal fly ash");
    assert_eq!(item["label_fr"], "cendres volantes de charbon");

    let spaced = search(&app, "/api/v1/codes/ewc?q=10%2001%2002").await;
    assert_eq!(codes(&spaced), vec!["100102"]);
    let starred = search(&app, "/api/v1/codes/ewc?q=19%2001%2013*").await;
    assert_eq!(codes(&starred), vec!["190113"]);
    assert_eq!(starred.body["items"][0]["hazardous"], true);
    assert_eq!(starred.body["items"][0]["display"], "19 01 13*");

    let none = search(&app, "/api/v1/codes/ewc?q=999").await;
    assert!(codes(&none).is_empty());
    assert_eq!(none.body["next_cursor"], Value::Null);

    // Without a query: the whole list, in code order.
    let all = walk(&app, "/api/v1/codes/ewc?", 500).await;
    assert_eq!(all.len(), app.app.reference.ewc.len());
    assert!(all.len() > 800, "the List of Waste has over 800 entries");
    assert_eq!(all.first().map(String::as_str), Some("010101"));
}

#[actix_web::test]
async fn ewc_search_by_words_in_french_and_english() {
    let app = spawn_app().await;
    for q in [
        "sciure",
        "SCIURE",
        "Sciure",
        "sawdust",
        "SAWDUST",
        "Sawdust%20shavings",
        "sciure%20de%20bois",
    ] {
        let reply = search(&app, &format!("/api/v1/codes/ewc?q={q}&limit=500")).await;
        assert!(
            codes(&reply).contains(&"030105".to_owned()),
            "q={q} finds 03 01 05: {:?}",
            codes(&reply)
        );
    }
    // A whole-word hit on the code's own label ranks before a word of its chapter only.
    let ash = search(&app, "/api/v1/codes/ewc?q=cendres%20volantes&limit=500").await;
    let got = codes(&ash);
    assert!(got.contains(&"100102".to_owned()));
    assert!(got.contains(&"190113".to_owned()));
    for c in &got {
        let label = &app
            .app
            .reference
            .ewc
            .get(c)
            .expect("listed codes exist")
            .label_fr;
        assert!(label.to_lowercase().contains("cendres"), "{c}: {label}");
    }

    // Accents and case ignored; every word must match: « déchets agriculture » is chapter 02.
    let chapter_02: Vec<String> = app
        .app
        .reference
        .ewc
        .all()
        .iter()
        .filter(|c| c.chapter == "02")
        .map(|c| c.code.clone())
        .collect();
    let mut reference_sets = Vec::new();
    for q in [
        "dechets%20agriculture",
        "D%C3%A9chets%20AGRICULTURE",
        "DECHETS%20agricult%C3%BCre",
        "waste%20agriculture",
    ] {
        let mut got = codes(&search(&app, &format!("/api/v1/codes/ewc?q={q}&limit=500")).await);
        assert!(!got.is_empty(), "q={q}");
        assert!(got.iter().all(|c| c.starts_with("02")), "q={q}: {got:?}");
        got.sort();
        reference_sets.push(got);
    }
    assert_eq!(
        reference_sets[0], chapter_02,
        "every chapter 02 code and nothing else"
    );
    assert_eq!(reference_sets[1], chapter_02);
    assert_eq!(reference_sets[2], chapter_02);
    // Manure: the French word reaches 02 01 06 first.
    let manure = search(&app, "/api/v1/codes/ewc?q=fumier").await;
    assert_eq!(codes(&manure).first().map(String::as_str), Some("020106"));
    let manure_en = search(&app, "/api/v1/codes/ewc?q=MANURE").await;
    assert_eq!(
        codes(&manure_en).first().map(String::as_str),
        Some("020106")
    );
    // Nothing matches every word.
    let nothing = search(&app, "/api/v1/codes/ewc?q=sciure%20plutonium").await;
    assert!(codes(&nothing).is_empty());
}

#[actix_web::test]
async fn ewc_search_paginates_without_overlap() {
    let app = spawn_app().await;
    let whole = codes(&search(&app, "/api/v1/codes/ewc?q=10&limit=500").await);
    assert!(whole.len() > 50, "chapter 10 is long");
    let paged = walk(&app, "/api/v1/codes/ewc?q=10", 5).await;
    assert_eq!(
        paged, whole,
        "pages of five add up to the whole list, in order"
    );
    let mut unique = paged.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), paged.len(), "no code on two pages");

    let first = search(&app, "/api/v1/codes/ewc?q=dechets&limit=5").await;
    assert_eq!(codes(&first).len(), 5);
    let cursor = first.body["next_cursor"]
        .as_str()
        .expect("more than five")
        .to_owned();
    let second = search(
        &app,
        &format!("/api/v1/codes/ewc?q=dechets&limit=5&cursor={cursor}"),
    )
    .await;
    assert_eq!(codes(&second).len(), 5);
    assert!(codes(&second).iter().all(|c| !codes(&first).contains(c)));
    // A long ranked list: pages of 50 and of 500 give the same sequence.
    let small_pages = walk(&app, "/api/v1/codes/ewc?q=dechets", 50).await;
    let large_pages = walk(&app, "/api/v1/codes/ewc?q=dechets", 500).await;
    assert!(large_pages.len() > 500, "« déchets » is in most labels");
    assert_eq!(small_pages, large_pages);

    for path in [
        "/api/v1/codes/ewc?limit=0",
        "/api/v1/codes/ewc?q=10&limit=501",
        "/api/v1/codes/ewc?limit=-1",
        "/api/v1/codes/ewc?limit=x",
    ] {
        assert_field_error(&app.get(path).await, "limit");
    }
    for path in [
        "/api/v1/codes/ewc?cursor=zz",
        "/api/v1/codes/ewc?cursor=616263",
    ] {
        assert_field_error(&app.get(path).await, "cursor");
    }
}

#[actix_web::test]
async fn one_ewc_code_by_any_spelling() {
    let app = spawn_app().await;
    for spelling in ["10%2001%2002", "100102", "10%2001%2002*"] {
        let reply = app.get(&format!("/api/v1/codes/ewc/{spelling}")).await;
        assert_eq!(reply.status, 200, "{spelling}: {}", reply.text);
        assert_eq!(reply.body["code"], "100102");
        assert_eq!(reply.body["display"], "10 01 02");
        assert_eq!(reply.body["hazardous"], false);
        assert_eq!(reply.body["label_fr"], "cendres volantes de charbon");
    }
    let hazardous = app.get("/api/v1/codes/ewc/19%2001%2013").await;
    assert_eq!(hazardous.status, 200);
    assert_eq!(hazardous.body["hazardous"], true);
    assert_eq!(hazardous.body["entry_type"], "mirror");
    for unknown in ["99%2099%2099", "1001", "abc"] {
        let reply = app.get(&format!("/api/v1/codes/ewc/{unknown}")).await;
        assert_eq!(reply.status, 404, "{unknown}: {}", reply.text);
        assert!(
            reply.content_type.starts_with("application/problem+json"),
            "{}",
            reply.content_type
        );
        assert_eq!(reply.body["status"], 404);
    }
}

#[actix_web::test]
async fn naf_search_by_code_and_words() {
    let app = spawn_app().await;
    let by_code = search(&app, "/api/v1/codes/naf?q=23.51").await;
    assert_eq!(
        codes(&by_code),
        vec!["23.51", "23.51Z"],
        "shorter codes first"
    );
    assert_eq!(by_code.body["items"][0]["level"], "class");
    assert_eq!(by_code.body["items"][1]["level"], "subclass");
    assert_eq!(by_code.body["items"][1]["parent"], "23.51");
    let compact = search(&app, "/api/v1/codes/naf?q=2351").await;
    assert_eq!(codes(&compact), vec!["23.51", "23.51Z"]);
    let group = codes(&search(&app, "/api/v1/codes/naf?q=23.5&limit=500").await);
    assert_eq!(group.first().map(String::as_str), Some("23.5"));
    assert!(group.contains(&"23.51Z".to_owned()) && group.contains(&"23.52Z".to_owned()));
    let lengths: Vec<usize> = group.iter().map(String::len).collect();
    let mut sorted = lengths.clone();
    sorted.sort();
    assert_eq!(
        lengths, sorted,
        "higher levels before lower ones: {group:?}"
    );
    let division = codes(&search(&app, "/api/v1/codes/naf?q=23&limit=500").await);
    assert_eq!(division.first().map(String::as_str), Some("23"));
    assert!(division.iter().all(|c| c.starts_with("23")));

    for q in [
        "ciment",
        "CIMENT",
        "cement",
        "Cement",
        "fabrication%20ciment",
    ] {
        let got = codes(&search(&app, &format!("/api/v1/codes/naf?q={q}&limit=500")).await);
        assert!(got.contains(&"23.51Z".to_owned()), "q={q}: {got:?}");
    }
    let sawmill = codes(&search(&app, "/api/v1/codes/naf?q=sciage&limit=500").await);
    assert!(sawmill.contains(&"16.10A".to_owned()), "{sawmill:?}");
    let laiterie = codes(&search(&app, "/api/v1/codes/naf?q=fromage&limit=500").await);
    assert!(laiterie.contains(&"10.51C".to_owned()), "{laiterie:?}");

    let paged = walk(&app, "/api/v1/codes/naf?q=fabrication", 7).await;
    let whole = codes(&search(&app, "/api/v1/codes/naf?q=fabrication&limit=500").await);
    assert_eq!(paged, whole);

    assert_field_error(&app.get("/api/v1/codes/naf?q=23&limit=0").await, "limit");
    assert_field_error(&app.get("/api/v1/codes/naf?limit=1000").await, "limit");
    assert_field_error(&app.get("/api/v1/codes/naf?cursor=nothex").await, "cursor");
}

#[actix_web::test]
async fn one_naf_code() {
    let app = spawn_app().await;
    for spelling in ["23.51Z", "23.51z"] {
        let reply = app.get(&format!("/api/v1/codes/naf/{spelling}")).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.body["code"], "23.51Z");
        assert_eq!(reply.body["label_fr"], "Fabrication de ciment");
        assert_eq!(reply.body["label_en"], "Manufacture of cement");
        assert_eq!(reply.body["level"], "subclass");
        assert_eq!(reply.body["section"], "C");
    }
    let section = app.get("/api/v1/codes/naf/C").await;
    assert_eq!(section.status, 200, "{}", section.text);
    assert_eq!(section.body["level"], "section");
    let division = app.get("/api/v1/codes/naf/23").await;
    assert_eq!(division.body["level"], "division");
    assert_eq!(division.body["parent"], "C");
    for unknown in ["99.99Z", "23.51Y", "x"] {
        let reply = app.get(&format!("/api/v1/codes/naf/{unknown}")).await;
        assert_eq!(reply.status, 404, "{unknown}: {}", reply.text);
        assert!(reply.content_type.starts_with("application/problem+json"));
    }
}
