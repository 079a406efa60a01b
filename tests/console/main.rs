//! The facilitator console (`/console`), black-box: HTTP tests of sessions, CSRF, scopes,
//! anonymisation, forms and page weights (`cargo test --test console`), and the browser test
//! (`browser.rs`, headless Chromium through chromedriver; `.ci/run` runs it with `--ignored`).

#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

mod browser;
mod http;
mod support;
