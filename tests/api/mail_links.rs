//! Reading the links out of a received email, and following them as a mail client would: what
//! the reminder and agenda tests share.

use mail_parser::MessageParser;
use smtp_sink::Received;

use crate::helpers::TestApp;

/// The links the text part lists, as (label, URL), in order.
pub fn links_in(mail: &Received) -> Vec<(String, String)> {
    let parsed = MessageParser::default().parse(&mail.data).expect("a parseable message");
    let text = parsed.body_text(0).expect("a plain-text part").into_owned();
    text.lines()
        .filter_map(|line| line.split_once(": http"))
        .map(|(label, rest)| (label.trim().to_owned(), format!("http{}", rest.trim())))
        .collect()
}

/// The first link with this label.
pub fn link(mail: &Received, label: &str) -> String {
    let links = links_in(mail);
    links
        .iter()
        .find(|(l, _)| l == label)
        .map(|(_, url)| url.clone())
        .unwrap_or_else(|| panic!("{label} in {links:?}"))
}

pub fn token_of(url: &str) -> String {
    url.split_once("token=").expect("a token parameter").1.to_owned()
}

/// The URL of the `List-Unsubscribe` header (RFC 2369's `<url>` form).
pub fn list_unsubscribe_url(mail: &Received) -> String {
    let header = mail.header("List-Unsubscribe").expect("a List-Unsubscribe header");
    header.trim().strip_prefix('<').and_then(|h| h.strip_suffix('>')).expect("<url>").to_owned()
}

/// Asserts an HTML page with this status and the strict page CSP; returns its text.
pub async fn assert_page(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status, "status of {}", response.url());
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(header("content-type").as_deref(), Some("text/html; charset=utf-8"));
    let csp = header("content-security-policy").unwrap();
    assert!(csp.starts_with("default-src 'none'") && csp.contains("form-action 'self'"), "{csp}");
    let body = response.text().await.unwrap();
    assert!(!body.contains("<script"), "no script: {body}");
    body
}

/// Presses a task page's button.
pub async fn press(app: &TestApp, token: &str) -> reqwest::Response {
    app.client.post(app.url("/email/task")).form(&[("token", token)]).send().await.unwrap()
}
