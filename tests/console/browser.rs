//! The console in a real browser: headless Chromium driven through chromedriver (fantoccini).
//!
//! Ignored by a plain `cargo test` (it needs chromedriver); `.ci/run` installs Debian's `chromium`
//! and `chromium-driver`, starts chromedriver and runs it with `--ignored` on SQLite and PostgreSQL:
//! it fails, never passes silently, when no browser answers.
//!
//! `CHROMEDRIVER_URL` (default `http://127.0.0.1:9515`) names the driver; with
//! `CONSOLE_SCREENSHOTS=DIR` each page is also saved as `DIR/NAME.png` (docs/console/).

use std::collections::HashSet;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use symbiose::auth::Role;

use crate::helpers::{TestApp, spawn_app};

/// chromedriver's log of the browser console (`POST /session/{id}/se/log`).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

struct Browser {
    client: Client,
    base: String,
    shots: Option<std::path::PathBuf>,
}

impl Browser {
    async fn open(base: &str) -> Browser {
        let driver =
            std::env::var("CHROMEDRIVER_URL").unwrap_or_else(|_| "http://127.0.0.1:9515".into());
        let mut options = json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,800", "--lang=fr-FR"]
        });
        for binary in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
            if std::path::Path::new(binary).exists() {
                options["binary"] = json!(binary);
                break;
            }
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        let client = ClientBuilder::new(
            hyper_util::client::legacy::connect::HttpConnector::new(),
        )
        .capabilities(caps)
        .connect(&driver)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no WebDriver at {driver} ({e}): install chromium and chromium-driver and start \
                 `chromedriver --port=9515` (.ci/run does)"
            )
        });
        let shots: Option<std::path::PathBuf> =
            std::env::var_os("CONSOLE_SCREENSHOTS").map(Into::into);
        if shots.is_some() {
            // Documentation screenshots show more of each page than the 1280×800 test window.
            client
                .set_window_size(1280, 1100)
                .await
                .expect("window size");
        }
        Browser {
            client,
            base: base.to_owned(),
            shots,
        }
    }

    async fn go(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    async fn source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!("no `{css}` on {:?}: {e}", self.client.current_url().await),
        }
    }

    /// The errors the page's console logged since the last call (JavaScript errors, CSP
    /// violations, failed loads).
    async fn console_errors(&self) -> Vec<String> {
        let log = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("chromedriver gives the browser log");
        log.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Opens `path`, checks that it rendered (`h1`, `lang`) without console errors, and saves a
    /// screenshot when asked to.
    async fn visit(&self, path: &str, shot: &str) -> String {
        self.go(path).await;
        self.find("main h1").await;
        let errors = self.console_errors().await;
        assert!(errors.is_empty(), "{path}: console errors {errors:?}");
        let source = self.source().await;
        assert!(source.contains("<html lang=\"fr\""), "{path}: lang missing");
        self.shoot(shot).await;
        source
    }

    async fn shoot(&self, name: &str) {
        if let Some(dir) = &self.shots {
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::create_dir_all(dir).expect("screenshot dir");
            std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
        }
    }

    async fn sign_in(&self, key: &str) {
        self.go("/console/login").await;
        let field = self.find("input[name=key]").await;
        field.send_keys(key).await.expect("type the key");
        self.find("form button[type=submit]")
            .await
            .click()
            .await
            .expect("submit");
        // Only signed-in pages have the sign-out form.
        self.find("header form[action=\"/console/logout\"]").await;
        let url = self.client.current_url().await.expect("url");
        assert!(
            !url.path().starts_with("/console/login"),
            "still on the sign-in page: {url}"
        );
    }

    async fn sign_out(&self) {
        self.find("header form[action=\"/console/logout\"] button")
            .await
            .click()
            .await
            .expect("sign out");
        self.find("input[name=key]").await;
    }
}

/// The names of the actors that did not consent (as the admin reads them), long and distinct
/// enough to be searched for in a page without matching another actor's name.
async fn hidden_names(app: &TestApp) -> Vec<String> {
    let mut all: Vec<(String, bool)> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/actors?limit=500&cursor={c}"),
            None => "/api/v1/actors?limit=500".into(),
        };
        let page = app.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.text);
        for a in page.body["items"].as_array().cloned().unwrap_or_default() {
            all.push((
                a["name"].as_str().unwrap_or_default().to_owned(),
                a["share_with_partners"].as_bool().unwrap_or(false),
            ));
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let shown: Vec<&str> = all.iter().filter(|a| a.1).map(|a| a.0.as_str()).collect();
    let names: Vec<String> = all
        .iter()
        .filter(|a| !a.1 && a.0.chars().count() >= 8)
        .filter(|a| !shown.iter().any(|s| s.contains(a.0.as_str())))
        .map(|a| a.0.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    assert!(names.len() > 20, "the demo has non-consenting actors");
    names
}

fn html_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[actix_web::test]
#[ignore = "needs chromedriver and chromium: .ci/run runs it with --ignored"]
async fn a_facilitator_and_a_partner_use_the_console_in_a_browser() {
    let app = spawn_app().await;
    symbiose::cli::load_demo(&app.app).expect("demo loads");
    let facilitator = app.key("Animatrice EIT", Role::Facilitator, &[]);
    let partner = app.key("Portail partenaire", Role::Partner, &[]);
    let browser = Browser::open(&app.address).await;

    // The console log is read: an error logged by a page is seen (so its absence means something).
    browser.go("/console/login").await;
    browser
        .client
        .execute("console.error('probe-error')", vec![])
        .await
        .expect("script runs");
    let probe = browser.console_errors().await;
    assert!(
        probe.iter().any(|m| m.contains("probe-error")),
        "browser log not read: {probe:?}"
    );
    browser.shoot("login").await;

    // Sign in as a facilitator; every page renders without a console error.
    browser.sign_in(&facilitator).await;
    browser.visit("/console?q=bourgogne", "territories").await;
    let home = browser
        .visit("/console/territories/27-BOURGOGNE", "home")
        .await;
    assert!(home.contains("class=\"sankey\""), "the Sankey is drawn");
    assert!(home.contains("DMC"));
    browser.visit("/console/territories/21", "home-21").await;
    let map = browser.visit("/console/territories/21/map", "map").await;
    assert!(map.contains("class=\"map\"") && map.contains("<circle"));
    browser
        .visit("/console/synergies?territory=21", "synergies")
        .await;
    browser
        .visit("/console/territories/21/actors", "actors")
        .await;
    // NAF search as you type.
    browser
        .find("#naf")
        .await
        .send_keys("sciage")
        .await
        .expect("type an activity");
    browser
        .client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#naf-list option[value='16.10A']"))
        .await
        .expect("NAF suggestions while typing");
    browser.visit("/console/import", "import").await;

    // Move the board's first detected synergy to "proposed", then read it back through the API.
    browser
        .visit("/console/pipeline?territory=21", "pipeline")
        .await;
    let card = browser
        .find("section[data-status=detected] article[data-synergy]")
        .await;
    let id = card
        .attr("data-synergy")
        .await
        .expect("attribute")
        .expect("synergy id");
    card.find(Locator::Css("input[name=comment]"))
        .await
        .expect("comment field")
        .send_keys("appel du 12/03")
        .await
        .expect("type");
    card.find(Locator::Css("button[value=proposed]"))
        .await
        .expect("move button")
        .click()
        .await
        .expect("click");
    browser.find("p.ok[role=status]").await;
    assert!(browser.console_errors().await.is_empty());
    let moved = app.get(&format!("/api/v1/synergies/{id}")).await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(moved.body["status"], "proposed");
    let history = app.get(&format!("/api/v1/synergies/{id}/history")).await;
    assert_eq!(history.body["items"][0]["comment"], "appel du 12/03");
    assert_eq!(history.body["items"][0]["changed_by"], "Animatrice EIT");
    browser
        .visit(&format!("/console/synergies/{id}"), "synergy")
        .await;

    // Declare an offer on an actor's page (code search as you type), then see its matches.
    let actors = app.get("/api/v1/actors?territory=21&limit=1").await;
    let actor = actors.body["items"][0]["id"]
        .as_str()
        .expect("an actor in 21")
        .to_owned();
    browser
        .visit(&format!("/console/actors/{actor}"), "actor")
        .await;
    browser
        .find("#label")
        .await
        .send_keys("Sciures de hêtre (test)")
        .await
        .expect("label");
    let ewc = browser.find("#ewc_code").await;
    ewc.send_keys("sciure").await.expect("type a word");
    browser
        .client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#ewc-list option"))
        .await
        .expect("code suggestions while typing");
    ewc.clear().await.expect("clear");
    ewc.send_keys("03 01 05").await.expect("code");
    browser
        .find("#quantity")
        .await
        .send_keys("40")
        .await
        .expect("quantity");
    browser
        .find("#period option[value=month]")
        .await
        .click()
        .await
        .expect("period");
    browser
        .find("form.declare button[type=submit]")
        .await
        .click()
        .await
        .expect("declare");
    browser.find("p.ok[role=status]").await;
    assert!(browser.console_errors().await.is_empty());
    let url = browser.client.current_url().await.expect("url");
    let created = url
        .fragment()
        .unwrap_or_default()
        .trim_start_matches("resource-")
        .to_owned();
    assert!(!created.is_empty(), "{url}");
    let section = browser.find(&format!("#resource-{created}")).await;
    let matches = section
        .find_all(Locator::Css("ol.matches li"))
        .await
        .expect("matches");
    assert!(!matches.is_empty(), "the new offer has matches");
    browser.shoot("actor-declared").await;
    let stored = app.get(&format!("/api/v1/resources/{created}")).await;
    assert_eq!(stored.status, 200);
    assert_eq!(stored.body["label"], "Sciures de hêtre (test)");

    // A partner: no non-consenting actor's name anywhere.
    browser.sign_out().await;
    browser.sign_in(&partner).await;
    let names = hidden_names(&app).await;
    let mut pages: Vec<(String, String)> = Vec::new();
    for (path, shot) in [
        ("/console/territories/27-BOURGOGNE", "partner-home"),
        ("/console/territories/21", "partner-home-21"),
        ("/console/territories/21/map", "partner-map"),
        ("/console/synergies?territory=21", "partner-synergies"),
        (
            "/console/synergies?territory=27-BOURGOGNE",
            "partner-synergies-bourgogne",
        ),
        ("/console/pipeline?territory=21", "partner-pipeline"),
        ("/console/territories/21/actors", "partner-actors"),
        (&*format!("/console/synergies/{id}"), "partner-synergy"),
    ] {
        pages.push((path.to_owned(), browser.visit(path, shot).await));
    }
    let mut leaks = Vec::new();
    for (path, source) in &pages {
        for name in &names {
            if source.contains(name.as_str()) || source.contains(&html_escaped(name)) {
                leaks.push(format!("{path}: {name}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "hidden actors shown to a partner: {leaks:?}"
    );
    assert!(
        pages.iter().any(|(_, s)| s.contains("anonyme")),
        "anonymised actors are labelled"
    );
    browser.client.close().await.expect("close the browser");
}
