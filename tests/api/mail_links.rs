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

/// Every `href` of a received message's HTML part, with the entities the templates escape
/// decoded as a mail client would.
pub fn hrefs_in(mail: &Received) -> Vec<String> {
    let parsed = MessageParser::default().parse(&mail.data).expect("a parseable message");
    let html = parsed.body_html(0).expect("an HTML part").into_owned();
    // An attribute's value is quoted; `href=&quot;` is escaped text, shown and not followed.
    html.split("href=")
        .skip(1)
        .filter_map(|rest| {
            let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
            let value = rest[1..].split(quote).next().expect("a closing quote");
            let value = [
                ("&#x2f;", "/"),
                ("&#x3d;", "="),
                ("&quot;", "\""),
                ("&#x27;", "'"),
                ("&lt;", "<"),
                ("&gt;", ">"),
            ]
            .iter()
            .fold(value.to_owned(), |v, (entity, c)| v.replace(entity, c))
            .replace("&amp;", "&");
            Some(value)
        })
        .collect()
}

/// Asserts that the HTML part links somewhere, and only under the app's `public_url`.
pub fn assert_links_only_to_public_url(app: &TestApp, mail: &Received) {
    let origin = app.settings.public_url().expect("a public URL").join("/");
    let hrefs = hrefs_in(mail);
    assert!(!hrefs.is_empty(), "the HTML part has links");
    let elsewhere: Vec<&String> = hrefs.iter().filter(|h| !h.starts_with(&origin)).collect();
    assert!(elsewhere.is_empty(), "links outside {origin}: {elsewhere:?}");
}
