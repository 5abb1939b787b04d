//! CalDAV, as a calendar client sees it: discovery, sign-in, each row of the VTODO ↔ task
//! mapping checked against the REST API, kept lines, ETags, reports, calendars as projects,
//! recurring to-dos, and the change feed.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser};

const INBOX: &str = "/dav/calendars/inbox/";

/// A calendar client's sign-in: the account's email and an API token.
#[derive(Clone)]
struct Auth {
    email: String,
    token: String,
}

const ALL_SCOPES: [&str; 4] = ["tasks:read", "tasks:write", "projects:read", "projects:write"];

async fn api_token(app: &TestApp, user: &TestUser, scopes: &[&str]) -> String {
    let body = json!({"name": "calendar", "scopes": scopes});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/tokens", Some(&body)).await;
    assert_eq!(response.status(), 201, "minting a token");
    let body: Value = response.json().await.unwrap();
    body["token"].as_str().expect("token").to_owned()
}

/// An app, a user, and their calendar sign-in with every task and project scope.
async fn setup() -> (TestApp, TestUser, Auth) {
    let app = TestApp::spawn().await;
    let user = app.new_user().await;
    let token = api_token(&app, &user, &ALL_SCOPES).await;
    let auth = Auth { email: user.email.clone(), token };
    (app, user, auth)
}

fn raw_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// `method path` with Basic credentials (when given), headers and a body.
async fn dav(
    app: &TestApp,
    auth: Option<&Auth>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> reqwest::Response {
    let mut request = raw_client().request(Method::from_bytes(method.as_bytes()).unwrap(), app.url(path));
    if let Some(auth) = auth {
        request = request.basic_auth(&auth.email, Some(&auth.token));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(body.to_owned()).send().await.expect("request sent")
}

/// A PROPFIND: its status and body.
async fn propfind(app: &TestApp, auth: &Auth, path: &str, depth: &str, body: &str) -> (u16, String) {
    let headers = [("Depth", depth), ("Content-Type", "application/xml")];
    let response = dav(app, Some(auth), "PROPFIND", path, &headers, body).await;
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn report(app: &TestApp, auth: &Auth, path: &str, body: &str) -> (u16, String) {
    let headers = [("Depth", "1"), ("Content-Type", "application/xml")];
    let response = dav(app, Some(auth), "REPORT", path, &headers, body).await;
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn props(names: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cs="http://calendarserver.org/ns/" xmlns:a="http://apple.com/ns/ical/" xmlns:x="urn:x-test"><d:prop>{names}</d:prop></d:propfind>"#
    )
}

async fn put_ics(
    app: &TestApp,
    auth: &Auth,
    path: &str,
    ics: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut all = vec![("Content-Type", "text/calendar; charset=utf-8")];
    all.extend_from_slice(headers);
    dav(app, Some(auth), "PUT", path, &all, ics).await
}

/// PUTs a new resource and asserts it was created.
async fn put_new(app: &TestApp, auth: &Auth, path: &str, ics: &str) {
    let response = put_ics(app, auth, path, ics, &[]).await;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(status, 201, "PUT {path}: {body}");
}

/// GET of a resource: its body (unfolded lines) and ETag.
async fn get_ics(app: &TestApp, auth: &Auth, path: &str) -> (Vec<String>, String) {
    let response = dav(app, Some(auth), "GET", path, &[], "").await;
    assert_eq!(response.status(), 200, "GET {path}");
    let etag = response.headers().get("etag").expect("an ETag").to_str().unwrap().to_owned();
    (unfold(&response.text().await.unwrap()), etag)
}

fn unfold(text: &str) -> Vec<String> {
    // XML parsers turn CRLF into LF, so calendar-data arrives with bare line feeds.
    let text = text.replace("\r\n", "\n");
    text.replace("\n ", "").replace("\n\t", "").split('\n').map(str::to_owned).collect()
}

/// A VCALENDAR holding one VTODO with this UID and these lines.
fn vtodo(uid: &str, lines: &[&str]) -> String {
    let mut out = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//todo tests//caldav//EN".to_owned(),
        "BEGIN:VTODO".to_owned(),
        format!("UID:{uid}"),
        "DTSTAMP:20270101T000000Z".to_owned(),
    ];
    out.extend(lines.iter().map(|l| (*l).to_owned()));
    out.extend(["END:VTODO".to_owned(), "END:VCALENDAR".to_owned()]);
    out.join("\r\n") + "\r\n"
}

/// Every task of the user through REST, completed ones included.
async fn tasks(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let response = app.get_as(&user.token, "/api/v1/tasks?limit=100").await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

async fn titled(app: &TestApp, user: &TestUser, title: &str) -> Vec<Value> {
    tasks(app, user).await.into_iter().filter(|t| t["title"] == title).collect()
}

/// The one task with this title.
async fn by_title(app: &TestApp, user: &TestUser, title: &str) -> Value {
    let found = titled(app, user, title).await;
    assert_eq!(found.len(), 1, "one task titled {title}: {found:?}");
    found[0].clone()
}

/// PUTs a VTODO into the inbox and reads the task it made through REST.
async fn put_and_read(app: &TestApp, user: &TestUser, auth: &Auth, title: &str, lines: &[&str]) -> Value {
    let uid = Uuid::new_v4().to_string();
    let mut all = vec![format!("SUMMARY:{title}")];
    all.extend(lines.iter().map(|l| (*l).to_owned()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    put_new(app, auth, &format!("{INBOX}{uid}.ics"), &vtodo(&uid, &all)).await;
    by_title(app, user, title).await
}

/// Creates a task through REST and GETs it as CalDAV serves it.
async fn rest_then_ics(app: &TestApp, user: &TestUser, auth: &Auth, body: Value) -> (Value, Vec<String>) {
    let task = app.create_task(user, body).await;
    let (lines, _) = get_ics(app, auth, &format!("{INBOX}{}.ics", task["id"].as_str().unwrap())).await;
    (task, lines)
}

fn has(lines: &[String], line: &str) -> bool {
    lines.iter().any(|l| l == line)
}

fn instant(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value.as_str().unwrap_or_else(|| panic!("an instant: {value}")).parse().unwrap()
}

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    text.parse().unwrap()
}

/// One `<d:response>` of a multistatus.
#[derive(Debug, Default)]
struct Resp {
    href: String,
    status: Option<String>,
    /// Properties under 200, by local name: their content, elements written `<name attr=v>`.
    found: BTreeMap<String, String>,
    /// Properties under 404, by local name.
    missing: Vec<String>,
}

fn render(node: roxmltree::Node<'_, '_>) -> String {
    let mut out = String::new();
    for d in node.descendants().skip(1) {
        if d.is_element() {
            out.push('<');
            out.push_str(d.tag_name().name());
            for a in d.attributes() {
                out.push_str(&format!(" {}={}", a.name(), a.value()));
            }
            out.push('>');
        } else if let Some(text) = d.text() {
            out.push_str(text);
        }
    }
    out
}

fn text(node: roxmltree::Node<'_, '_>) -> String {
    node.descendants()
        .filter_map(|n| n.is_text().then(|| n.text()).flatten())
        .collect::<String>()
        .trim()
        .to_owned()
}

fn elements<'a, 'i>(n: roxmltree::Node<'a, 'i>) -> Vec<roxmltree::Node<'a, 'i>> {
    n.children().filter(roxmltree::Node::is_element).collect()
}

fn parse_multistatus(xml: &str) -> Vec<Resp> {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    let mut out = Vec::new();
    for r in doc.descendants().filter(|n| n.has_tag_name(("DAV:", "response"))) {
        let mut resp = Resp::default();
        for c in elements(r) {
            match c.tag_name().name() {
                "href" => resp.href = text(c),
                "status" => resp.status = Some(text(c)),
                "propstat" => {
                    let status = elements(c)
                        .into_iter()
                        .find(|n| n.has_tag_name(("DAV:", "status")))
                        .map(text)
                        .unwrap_or_default();
                    let prop = elements(c).into_iter().find(|n| n.has_tag_name(("DAV:", "prop")));
                    for p in prop.map(elements).unwrap_or_default() {
                        let name = p.tag_name().name().to_owned();
                        if status.contains(" 200 ") {
                            resp.found.insert(name, render(p));
                        } else if status.contains(" 404 ") {
                            resp.missing.push(name);
                        }
                    }
                }
                _ => {}
            }
        }
        out.push(resp);
    }
    out
}

fn find<'a>(responses: &'a [Resp], href: &str) -> &'a Resp {
    responses
        .iter()
        .find(|r| r.href == href)
        .unwrap_or_else(|| panic!("no response for {href}: {responses:?}"))
}

/// The multistatus-level sync token of a sync-collection answer.
fn report_token(xml: &str) -> String {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let token = doc.root_element().children().find(|n| n.has_tag_name(("DAV:", "sync-token")));
    text(token.expect("a sync-token"))
}

async fn collection_prop(app: &TestApp, auth: &Auth, path: &str, prop: &str) -> String {
    let (status, body) = propfind(app, auth, path, "0", &props(&format!("<{prop}/>"))).await;
    assert_eq!(status, 207, "{body}");
    let local = prop.split(':').nth(1).unwrap();
    find(&parse_multistatus(&body), path)
        .found
        .get(local)
        .cloned()
        .unwrap_or_else(|| panic!("{prop}: {body}"))
}

async fn create_project(app: &TestApp, user: &TestUser, name: &str) -> String {
    let body = json!({"name": name});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/projects", Some(&body)).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

// ---- 1. Discovery ----

#[tokio::test]
async fn the_well_known_address_redirects_to_the_dav_root() {
    let app = TestApp::spawn().await;
    for method in ["GET", "PROPFIND"] {
        let response = dav(&app, None, method, "/.well-known/caldav", &[], "").await;
        assert_eq!(response.status(), 301, "{method}");
        assert_eq!(response.headers()["location"], "/dav/", "{method}");
    }
}

#[tokio::test]
async fn the_root_names_the_principal_and_the_principal_names_the_home() {
    let (app, _, auth) = setup().await;
    let (status, body) = propfind(&app, &auth, "/dav/", "0", &props("<d:current-user-principal/>")).await;
    assert_eq!(status, 207, "{body}");
    let responses = parse_multistatus(&body);
    let principal = &find(&responses, "/dav/").found["current-user-principal"];
    assert!(principal.contains("/dav/principal/"), "{body}");

    let (status, body) =
        propfind(&app, &auth, "/dav/principal/", "0", &props("<c:calendar-home-set/>")).await;
    assert_eq!(status, 207, "{body}");
    let responses = parse_multistatus(&body);
    let home = &find(&responses, "/dav/principal/").found["calendar-home-set"];
    assert!(home.contains("/dav/calendars/"), "{body}");
}

#[tokio::test]
async fn the_home_lists_the_inbox_and_each_project_as_task_calendars() {
    let (app, user, auth) = setup().await;
    let project = create_project(&app, &user, "Garden").await;
    let wanted =
        "<d:displayname/><d:resourcetype/><c:supported-calendar-component-set/><cs:getctag/><d:sync-token/>";
    let (status, body) = propfind(&app, &auth, "/dav/calendars/", "1", &props(wanted)).await;
    assert_eq!(status, 207, "{body}");
    let responses = parse_multistatus(&body);
    for (href, name) in [(INBOX.to_owned(), "Inbox"), (format!("/dav/calendars/{project}/"), "Garden")] {
        let calendar = find(&responses, &href);
        assert_eq!(calendar.found["displayname"], name, "{body}");
        assert!(calendar.found["resourcetype"].contains("<calendar>"), "{body}");
        assert!(calendar.found["supported-calendar-component-set"].contains("name=VTODO"), "{body}");
        assert!(!calendar.found["getctag"].is_empty(), "{body}");
        assert!(!calendar.found["sync-token"].is_empty(), "{body}");
    }
}

#[tokio::test]
async fn an_unknown_property_is_listed_under_404_beside_the_known_ones() {
    let (app, _, auth) = setup().await;
    let (status, body) =
        propfind(&app, &auth, INBOX, "0", &props("<d:displayname/><x:favourite-colour/>")).await;
    assert_eq!(status, 207, "{body}");
    let responses = parse_multistatus(&body);
    let inbox = find(&responses, INBOX);
    assert_eq!(inbox.found["displayname"], "Inbox");
    assert_eq!(inbox.missing, vec!["favourite-colour".to_owned()], "{body}");
}

#[tokio::test]
async fn depth_infinity_is_refused_as_propfind_finite_depth() {
    let (app, _, auth) = setup().await;
    let (status, body) =
        propfind(&app, &auth, "/dav/calendars/", "infinity", &props("<d:displayname/>")).await;
    assert_eq!(status, 403);
    assert!(body.contains("propfind-finite-depth"), "{body}");
}

// ---- 2. Sign-in ----

#[tokio::test]
async fn no_credentials_get_a_basic_challenge() {
    let app = TestApp::spawn().await;
    let response = dav(&app, None, "PROPFIND", "/dav/", &[("Depth", "0")], "").await;
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
}

#[tokio::test]
async fn a_wrong_token_or_another_accounts_token_is_refused() {
    let (app, _, auth) = setup().await;
    let other = app.new_user().await;
    let others_token = api_token(&app, &other, &ALL_SCOPES).await;
    let mut wrong = auth.token.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'a' { 'b' } else { 'a' });
    for (what, token) in [("a wrong token", wrong), ("another account's token", others_token)] {
        let attempt = Auth { email: auth.email.clone(), token };
        let response = dav(&app, Some(&attempt), "PROPFIND", "/dav/", &[("Depth", "0")], "").await;
        assert_eq!(response.status(), 401, "{what}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Basic realm="), "{what}: {challenge}");
    }
}

#[tokio::test]
async fn a_read_only_token_can_look_but_not_write() {
    let (app, user, _) = setup().await;
    let auth = Auth { email: user.email.clone(), token: api_token(&app, &user, &["tasks:read"]).await };
    let (status, body) = propfind(&app, &auth, INBOX, "1", &props("<d:getetag/>")).await;
    assert_eq!(status, 207, "{body}");
    let response = put_ics(&app, &auth, &format!("{INBOX}a.ics"), &vtodo("a", &["SUMMARY:No"]), &[]).await;
    assert_eq!(response.status(), 403);
    assert!(tasks(&app, &user).await.is_empty());
}

// ---- 3. The mapping, one row at a time ----

#[tokio::test]
async fn summary_is_the_title() {
    let (app, user, auth) = setup().await;
    put_and_read(&app, &user, &auth, "Pay rent", &[]).await;
    let (_, lines) = rest_then_ics(&app, &user, &auth, json!({"title": "Buy milk, eggs; bread"})).await;
    assert!(has(&lines, "SUMMARY:Buy milk\\, eggs\\; bread"), "{lines:?}");
}

#[tokio::test]
async fn description_is_the_description() {
    let (app, user, auth) = setup().await;
    let task = put_and_read(&app, &user, &auth, "Notes", &["DESCRIPTION:first line\\nsecond\\, line"]).await;
    assert_eq!(task["description"], "first line\nsecond, line");
    let (_, lines) =
        rest_then_ics(&app, &user, &auth, json!({"title": "Other", "description": "a\nb"})).await;
    assert!(has(&lines, "DESCRIPTION:a\\nb"), "{lines:?}");
}

#[tokio::test]
async fn due_with_a_tzid_is_the_due_time_and_the_time_zone() {
    let (app, user, auth) = setup().await;
    let task = put_and_read(&app, &user, &auth, "Call", &["DUE;TZID=Europe/Paris:20270501T090000"]).await;
    assert_eq!(instant(&task["due_at"]), at("2027-05-01T07:00:00Z"), "{task}");
    assert_eq!(task["timezone"], "Europe/Paris");
    let body = json!({"title": "Meet", "due_at": "2027-05-01T07:00:00Z", "timezone": "Europe/Paris"});
    let (_, lines) = rest_then_ics(&app, &user, &auth, body).await;
    assert!(has(&lines, "DUE;TZID=Europe/Paris:20270501T090000"), "{lines:?}");
}

#[tokio::test]
async fn status_completed_is_completed_and_is_written_back_with_percent_and_time() {
    let (app, user, auth) = setup().await;
    let task = put_and_read(&app, &user, &auth, "Done", &["STATUS:COMPLETED"]).await;
    assert_eq!(task["completed"], true);
    let open = put_and_read(&app, &user, &auth, "Open", &["STATUS:NEEDS-ACTION"]).await;
    assert_eq!(open["completed"], false);

    let task = app.create_task(&user, json!({"title": "Finish"})).await;
    let id = task["id"].as_str().unwrap();
    let path = format!("/api/v1/tasks/{id}");
    let response = app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"completed": true}))).await;
    assert_eq!(response.status(), 200);
    let (lines, _) = get_ics(&app, &auth, &format!("{INBOX}{id}.ics")).await;
    assert!(has(&lines, "STATUS:COMPLETED"), "{lines:?}");
    assert!(has(&lines, "PERCENT-COMPLETE:100"), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("COMPLETED:")), "{lines:?}");
}

#[tokio::test]
async fn priority_groups_as_rfc_5545_says() {
    let (app, user, auth) = setup().await;
    for (sent, level) in [(1, "high"), (4, "high"), (5, "medium"), (0, "medium"), (6, "low"), (9, "low")] {
        let task =
            put_and_read(&app, &user, &auth, &format!("P{sent}"), &[&format!("PRIORITY:{sent}")]).await;
        assert_eq!(task["priority"], level, "PRIORITY:{sent}");
    }
    for (level, written) in [("high", "PRIORITY:1"), ("medium", "PRIORITY:5"), ("low", "PRIORITY:9")] {
        let (_, lines) = rest_then_ics(&app, &user, &auth, json!({"title": level, "priority": level})).await;
        assert!(has(&lines, written), "{level}: {lines:?}");
    }
}

#[tokio::test]
async fn categories_are_the_tags() {
    let (app, user, auth) = setup().await;
    let task =
        put_and_read(&app, &user, &auth, "Tagged", &["CATEGORIES:work,home", "CATEGORIES:urgent"]).await;
    let mut tags: Vec<&str> = task["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    tags.sort_unstable();
    assert_eq!(tags, ["home", "urgent", "work"]);
    let (_, lines) =
        rest_then_ics(&app, &user, &auth, json!({"title": "T", "tags": ["alpha", "beta"]})).await;
    let categories = lines.iter().find(|l| l.starts_with("CATEGORIES:")).expect("a CATEGORIES line");
    let mut written: Vec<&str> = categories["CATEGORIES:".len()..].split(',').collect();
    written.sort_unstable();
    assert_eq!(written, ["alpha", "beta"], "{lines:?}");
}

#[tokio::test]
async fn rrule_is_the_recurrence_rule() {
    let (app, user, auth) = setup().await;
    let lines = ["DUE:20270503T090000Z", "RRULE:FREQ=WEEKLY;BYDAY=MO"];
    let task = put_and_read(&app, &user, &auth, "Weekly", &lines).await;
    assert_eq!(task["recurrence_rule"], "FREQ=WEEKLY;BYDAY=MO", "{task}");
    let body = json!({"title": "Daily", "due_at": "2027-05-01T09:00:00Z", "recurrence_rule": "FREQ=DAILY"});
    let (_, lines) = rest_then_ics(&app, &user, &auth, body).await;
    assert!(has(&lines, "RRULE:FREQ=DAILY"), "{lines:?}");
}

#[tokio::test]
async fn the_first_alarm_is_the_reminder_relative_or_absolute() {
    let (app, user, auth) = setup().await;
    let relative = [
        "DUE:20270501T090000Z",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "DESCRIPTION:x",
        "TRIGGER;RELATED=END:-PT15M",
        "END:VALARM",
    ];
    let task = put_and_read(&app, &user, &auth, "Relative", &relative).await;
    assert_eq!(instant(&task["reminder_at"]), at("2027-05-01T08:45:00Z"), "{task}");
    let absolute = [
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "DESCRIPTION:x",
        "TRIGGER;VALUE=DATE-TIME:20270430T080000Z",
        "END:VALARM",
    ];
    let task = put_and_read(&app, &user, &auth, "Absolute", &absolute).await;
    assert_eq!(instant(&task["reminder_at"]), at("2027-04-30T08:00:00Z"), "{task}");

    let body = json!({"title": "R", "due_at": "2027-05-01T09:00:00Z", "reminder_at": "2027-05-01T08:45:00Z"});
    let (_, lines) = rest_then_ics(&app, &user, &auth, body).await;
    assert!(has(&lines, "BEGIN:VALARM"), "{lines:?}");
    assert!(has(&lines, "TRIGGER;RELATED=END:-PT15M"), "{lines:?}");
}

#[tokio::test]
async fn related_to_parent_is_the_parent() {
    let (app, user, auth) = setup().await;
    put_new(&app, &auth, &format!("{INBOX}parent.ics"), &vtodo("parent-uid", &["SUMMARY:Parent"])).await;
    let child = vtodo("child-uid", &["SUMMARY:Child", "RELATED-TO;RELTYPE=PARENT:parent-uid"]);
    put_new(&app, &auth, &format!("{INBOX}child.ics"), &child).await;
    let parent = by_title(&app, &user, "Parent").await;
    let child = by_title(&app, &user, "Child").await;
    assert_eq!(child["parent_id"], parent["id"], "{child}");

    let parent = app.create_task(&user, json!({"title": "REST parent"})).await;
    let sub = app.create_task(&user, json!({"title": "REST child", "parent_id": parent["id"]})).await;
    let (parent_lines, _) =
        get_ics(&app, &auth, &format!("{INBOX}{}.ics", parent["id"].as_str().unwrap())).await;
    let uid = parent_lines.iter().find_map(|l| l.strip_prefix("UID:")).expect("a UID").to_owned();
    let (lines, _) = get_ics(&app, &auth, &format!("{INBOX}{}.ics", sub["id"].as_str().unwrap())).await;
    assert!(has(&lines, &format!("RELATED-TO;RELTYPE=PARENT:{uid}")), "{lines:?}");
}

// ---- 4. Lines the service does not model ----

#[tokio::test]
async fn unknown_properties_are_kept_and_a_change_to_them_alone_moves_the_etag_and_sync_token() {
    let (app, _, auth) = setup().await;
    let kept = [
        "X-FOO:bar",
        "URL:https://example.com/task/1",
        "GEO:48.85;2.35",
        "DTSTART:20270501T080000Z",
        "ATTACH:https://example.com/plan.pdf",
    ];
    let alarms = [
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "DESCRIPTION:first",
        "TRIGGER;RELATED=END:-PT15M",
        "END:VALARM",
        "BEGIN:VALARM",
        "ACTION:AUDIO",
        "TRIGGER;RELATED=END:-PT1H",
        "END:VALARM",
    ];
    let sent = |foo: &str| {
        let mut lines =
            vec!["SUMMARY:Kept".to_owned(), "DUE:20270501T090000Z".to_owned(), format!("X-FOO:{foo}")];
        lines.extend(kept[1..].iter().map(|l| (*l).to_owned()));
        lines.extend(alarms.iter().map(|l| (*l).to_owned()));
        vtodo("kept-uid", &lines.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let path = format!("{INBOX}kept.ics");
    put_new(&app, &auth, &path, &sent("bar")).await;
    let (lines, etag) = get_ics(&app, &auth, &path).await;
    for line in kept {
        assert!(has(&lines, line), "{line} kept: {lines:?}");
    }
    let audio = lines.iter().position(|l| l == "ACTION:AUDIO").expect("the second alarm");
    assert_eq!(lines[audio - 1], "BEGIN:VALARM", "{lines:?}");
    assert_eq!(lines[audio + 1], "TRIGGER;RELATED=END:-PT1H", "{lines:?}");
    assert_eq!(lines[audio + 2], "END:VALARM", "{lines:?}");
    let token = collection_prop(&app, &auth, INBOX, "d:sync-token").await;

    let response = put_ics(&app, &auth, &path, &sent("baz"), &[("If-Match", &etag)]).await;
    assert_eq!(response.status(), 204);
    let (lines, new_etag) = get_ics(&app, &auth, &path).await;
    assert!(has(&lines, "X-FOO:baz"), "{lines:?}");
    assert_ne!(new_etag, etag, "the ETag moves");
    assert_ne!(collection_prop(&app, &auth, INBOX, "d:sync-token").await, token, "the sync token moves");
}

// ---- 5. ETags and refusals ----

#[tokio::test]
async fn a_stale_if_match_is_412_and_changes_nothing() {
    let (app, user, auth) = setup().await;
    let path = format!("{INBOX}e.ics");
    put_new(&app, &auth, &path, &vtodo("e-uid", &["SUMMARY:Before"])).await;
    let (_, etag) = get_ics(&app, &auth, &path).await;
    let response =
        put_ics(&app, &auth, &path, &vtodo("e-uid", &["SUMMARY:After"]), &[("If-Match", "\"stale\"")]).await;
    assert_eq!(response.status(), 412);
    let (lines, same) = get_ics(&app, &auth, &path).await;
    assert_eq!(same, etag);
    assert!(has(&lines, "SUMMARY:Before"), "{lines:?}");
    assert_eq!(by_title(&app, &user, "Before").await["version"], 1);
}

#[tokio::test]
async fn if_none_match_star_on_an_existing_name_is_412() {
    let (app, user, auth) = setup().await;
    let path = format!("{INBOX}n.ics");
    put_new(&app, &auth, &path, &vtodo("n-uid", &["SUMMARY:First"])).await;
    let response =
        put_ics(&app, &auth, &path, &vtodo("n-uid", &["SUMMARY:Second"]), &[("If-None-Match", "*")]).await;
    assert_eq!(response.status(), 412);
    by_title(&app, &user, "First").await;
}

#[tokio::test]
async fn delete_with_if_match_puts_the_task_in_the_trash() {
    let (app, user, auth) = setup().await;
    let path = format!("{INBOX}d.ics");
    put_new(&app, &auth, &path, &vtodo("d-uid", &["SUMMARY:Doomed"])).await;
    let id = by_title(&app, &user, "Doomed").await["id"].as_str().unwrap().to_owned();
    let (_, etag) = get_ics(&app, &auth, &path).await;
    let response = dav(&app, Some(&auth), "DELETE", &path, &[("If-Match", &etag)], "").await;
    assert_eq!(response.status(), 204);
    assert_eq!(app.get_as(&user.token, &format!("/api/v1/tasks/{id}")).await.status(), 404);
    let trash: Value = app.get_as(&user.token, "/api/v1/tasks/trash").await.json().await.unwrap();
    assert!(trash["items"].as_array().unwrap().iter().any(|t| t["id"] == id.as_str()), "{trash}");
    assert_eq!(dav(&app, Some(&auth), "GET", &path, &[], "").await.status(), 404);
}

#[tokio::test]
async fn invalid_icalendar_is_refused_as_valid_calendar_data_never_a_server_error() {
    let (app, user, auth) = setup().await;
    let bodies = [
        "hello".to_owned(),
        "BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:x\r\nSUMMARY:x\r\n".to_owned(),
        vtodo("bad-due", &["SUMMARY:x", "DUE:tomorrow"]),
        vtodo("bad-priority", &["SUMMARY:x", "PRIORITY:12"]),
    ];
    for (i, body) in bodies.iter().enumerate() {
        let response = put_ics(&app, &auth, &format!("{INBOX}bad-{i}.ics"), body, &[]).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, 403, "{body:?}: {text}");
        assert!(text.contains("valid-calendar-data"), "{body:?}: {text}");
    }
    assert!(tasks(&app, &user).await.is_empty());
}

#[tokio::test]
async fn an_event_is_refused_as_an_unsupported_component() {
    let (app, _, auth) = setup().await;
    let event = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:ev\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:20270101T100000Z\r\nSUMMARY:Party\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let response = put_ics(&app, &auth, &format!("{INBOX}ev.ics"), event, &[]).await;
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("supported-calendar-component"));
}

#[tokio::test]
async fn the_same_uid_at_a_second_name_is_a_uid_conflict() {
    let (app, user, auth) = setup().await;
    put_new(&app, &auth, &format!("{INBOX}one.ics"), &vtodo("dup-uid", &["SUMMARY:One"])).await;
    let response =
        put_ics(&app, &auth, &format!("{INBOX}two.ics"), &vtodo("dup-uid", &["SUMMARY:Two"]), &[]).await;
    assert_eq!(response.status(), 409);
    let body = response.text().await.unwrap();
    assert!(body.contains("no-uid-conflict") && body.contains(&format!("{INBOX}one.ics")), "{body}");
    assert_eq!(tasks(&app, &user).await.len(), 1);
}

// ---- 6. Reports ----

#[tokio::test]
async fn multiget_returns_the_named_resources_and_404_for_an_unknown_one() {
    let (app, _, auth) = setup().await;
    put_new(&app, &auth, &format!("{INBOX}a.ics"), &vtodo("a-uid", &["SUMMARY:A"])).await;
    put_new(&app, &auth, &format!("{INBOX}b.ics"), &vtodo("b-uid", &["SUMMARY:B"])).await;
    let body = format!(
        r#"<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/><c:calendar-data/></d:prop><d:href>{INBOX}a.ics</d:href><d:href>{INBOX}b.ics</d:href><d:href>{INBOX}missing.ics</d:href></c:calendar-multiget>"#
    );
    let (status, xml) = report(&app, &auth, INBOX, &body).await;
    assert_eq!(status, 207, "{xml}");
    let responses = parse_multistatus(&xml);
    assert_eq!(responses.len(), 3, "{xml}");
    for (name, summary) in [("a.ics", "SUMMARY:A"), ("b.ics", "SUMMARY:B")] {
        let found = find(&responses, &format!("{INBOX}{name}"));
        assert!(unfold(&found.found["calendar-data"]).iter().any(|l| l == summary), "{xml}");
        assert!(!found.found["getetag"].is_empty());
    }
    let missing = find(&responses, &format!("{INBOX}missing.ics"));
    assert!(missing.status.as_deref().is_some_and(|s| s.contains("404")), "{xml}");
}

fn query(filter: &str) -> String {
    format!(
        r#"<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VTODO">{filter}</c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"#
    )
}

fn hrefs(xml: &str) -> Vec<String> {
    let mut out: Vec<String> = parse_multistatus(xml).into_iter().map(|r| r.href).collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_time_range_query_returns_only_the_tasks_due_in_it() {
    let (app, _, auth) = setup().await;
    for (name, due) in
        [("march", "20270310T090000Z"), ("april", "20270410T090000Z"), ("may", "20270510T090000Z")]
    {
        let ics = vtodo(name, &[&format!("SUMMARY:{name}"), &format!("DUE:{due}")]);
        put_new(&app, &auth, &format!("{INBOX}{name}.ics"), &ics).await;
    }
    let body = query(r#"<c:time-range start="20270401T000000Z" end="20270501T000000Z"/>"#);
    let (status, xml) = report(&app, &auth, INBOX, &body).await;
    assert_eq!(status, 207, "{xml}");
    assert_eq!(hrefs(&xml), [format!("{INBOX}april.ics")], "{xml}");
}

#[tokio::test]
async fn completed_is_not_defined_returns_only_open_tasks() {
    let (app, _, auth) = setup().await;
    put_new(&app, &auth, &format!("{INBOX}open.ics"), &vtodo("open", &["SUMMARY:Open"])).await;
    let done = vtodo("done", &["SUMMARY:Done", "STATUS:COMPLETED", "COMPLETED:20270101T100000Z"]);
    put_new(&app, &auth, &format!("{INBOX}done.ics"), &done).await;
    let body = query(r#"<c:prop-filter name="COMPLETED"><c:is-not-defined/></c:prop-filter>"#);
    let (status, xml) = report(&app, &auth, INBOX, &body).await;
    assert_eq!(status, 207, "{xml}");
    assert_eq!(hrefs(&xml), [format!("{INBOX}open.ics")], "{xml}");
}

fn sync_body(token: &str) -> String {
    format!(
        r#"<d:sync-collection xmlns:d="DAV:"><d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"#
    )
}

#[tokio::test]
async fn sync_collection_names_exactly_what_changed_since_a_token() {
    let (app, user, auth) = setup().await;
    let mut ids = Vec::new();
    for title in ["Keep", "Update", "Delete"] {
        ids.push(app.create_task(&user, json!({"title": title})).await["id"].as_str().unwrap().to_owned());
    }
    let (status, xml) = report(&app, &auth, INBOX, &sync_body("")).await;
    assert_eq!(status, 207, "{xml}");
    let expected: Vec<String> = {
        let mut all: Vec<String> = ids.iter().map(|id| format!("{INBOX}{id}.ics")).collect();
        all.sort();
        all
    };
    assert_eq!(hrefs(&xml), expected, "the first report lists everything: {xml}");
    let token = report_token(&xml);

    let created = app.create_task(&user, json!({"title": "New"})).await["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/tasks/{}", ids[1]);
    let response = app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"title": "Updated"}))).await;
    assert_eq!(response.status(), 200);
    let response = app.send_as(&user.token, Method::DELETE, &format!("/api/v1/tasks/{}", ids[2]), None).await;
    assert_eq!(response.status(), 204);

    let (status, xml) = report(&app, &auth, INBOX, &sync_body(&token)).await;
    assert_eq!(status, 207, "{xml}");
    let responses = parse_multistatus(&xml);
    let mut named: Vec<String> = responses.iter().map(|r| r.href.clone()).collect();
    named.sort();
    let mut wanted = vec![
        format!("{INBOX}{created}.ics"),
        format!("{INBOX}{}.ics", ids[1]),
        format!("{INBOX}{}.ics", ids[2]),
    ];
    wanted.sort();
    assert_eq!(named, wanted, "{xml}");
    let deleted = find(&responses, &format!("{INBOX}{}.ics", ids[2]));
    assert!(deleted.status.as_deref().is_some_and(|s| s.contains("404")), "{xml}");
    for id in [&created, &ids[1]] {
        assert!(find(&responses, &format!("{INBOX}{id}.ics")).found.contains_key("getetag"), "{xml}");
    }
    assert_ne!(report_token(&xml), token);

    let (status, xml) = report(&app, &auth, INBOX, &sync_body("urn:garbage")).await;
    assert_eq!(status, 403);
    assert!(xml.contains("valid-sync-token"), "{xml}");
}

// ---- 7. Calendars are projects ----

fn mkcalendar(name: &str, color: &str, components: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:a="http://apple.com/ns/ical/"><d:set><d:prop><d:displayname>{name}</d:displayname><a:calendar-color>{color}</a:calendar-color><c:supported-calendar-component-set>{components}</c:supported-calendar-component-set></d:prop></d:set></c:mkcalendar>"#
    )
}

#[tokio::test]
async fn mkcalendar_makes_a_project_and_delete_deletes_it() {
    let (app, user, auth) = setup().await;
    let id = Uuid::new_v4();
    let path = format!("/dav/calendars/{id}/");
    let body = mkcalendar("Garden", "#FF8800FF", r#"<c:comp name="VTODO"/>"#);
    let response = dav(&app, Some(&auth), "MKCALENDAR", &path, &[], &body).await;
    assert_eq!(response.status(), 201);
    let response = app.get_as(&user.token, &format!("/api/v1/projects/{id}")).await;
    assert_eq!(response.status(), 200);
    let project: Value = response.json().await.unwrap();
    assert_eq!(project["name"], "Garden");
    assert_eq!(project["color"], "#ff8800");

    let response = dav(&app, Some(&auth), "DELETE", &path, &[], "").await;
    assert_eq!(response.status(), 204);
    assert_eq!(app.get_as(&user.token, &format!("/api/v1/projects/{id}")).await.status(), 404);
}

#[tokio::test]
async fn mkcalendar_for_events_only_is_refused() {
    let (app, user, auth) = setup().await;
    let id = Uuid::new_v4();
    let body = mkcalendar("Events", "#112233", r#"<c:comp name="VEVENT"/>"#);
    let response = dav(&app, Some(&auth), "MKCALENDAR", &format!("/dav/calendars/{id}/"), &[], &body).await;
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("supported-calendar-component"));
    assert_eq!(app.get_as(&user.token, &format!("/api/v1/projects/{id}")).await.status(), 404);
}

// ---- 8. Recurring to-dos ----

const SERIES: &str = "/dav/calendars/inbox/water.ics";

fn water(lines: &[&str]) -> String {
    let mut all = vec!["SUMMARY:Water plants", "RRULE:FREQ=DAILY"];
    all.extend_from_slice(lines);
    vtodo("water-uid", &all)
}

/// Puts the series, due 2027-06-01 09:00 UTC daily.
async fn start_series(app: &TestApp, auth: &Auth) {
    put_new(app, auth, SERIES, &water(&["DUE:20270601T090000Z"])).await;
}

/// The series' end state: the first occurrence completed, exactly one open one due a day later,
/// and the resource serving that open one.
async fn assert_advanced(app: &TestApp, user: &TestUser, auth: &Auth) {
    let mut series = titled(app, user, "Water plants").await;
    series.sort_by_key(|t| instant(&t["due_at"]));
    assert_eq!(series.len(), 2, "one completed and one open occurrence: {series:#?}");
    assert_eq!(series[0]["completed"], true, "{series:#?}");
    assert_eq!(instant(&series[0]["due_at"]), at("2027-06-01T09:00:00Z"));
    assert_eq!(series[1]["completed"], false, "{series:#?}");
    assert_eq!(instant(&series[1]["due_at"]), at("2027-06-02T09:00:00Z"));
    let (lines, _) = get_ics(app, auth, SERIES).await;
    assert!(has(&lines, "STATUS:NEEDS-ACTION"), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("DUE") && l.ends_with("20270602T090000Z")), "{lines:?}");
}

#[tokio::test]
async fn a_recurring_todo_sent_back_completed_makes_the_next_occurrence_at_once() {
    let (app, user, auth) = setup().await;
    start_series(&app, &auth).await;
    let completed = water(&["DUE:20270601T090000Z", "STATUS:COMPLETED", "COMPLETED:20270601T100000Z"]);
    let response = put_ics(&app, &auth, SERIES, &completed, &[]).await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_advanced(&app, &user, &auth).await;
}

#[tokio::test]
async fn a_recurring_todo_sent_back_open_with_due_moved_on_completes_the_occurrence() {
    let (app, user, auth) = setup().await;
    start_series(&app, &auth).await;
    let response = put_ics(&app, &auth, SERIES, &water(&["DUE:20270602T090000Z"]), &[]).await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_advanced(&app, &user, &auth).await;
}

#[tokio::test]
async fn a_completed_copy_then_the_original_advanced_is_one_occurrence_not_two() {
    let (app, user, auth) = setup().await;
    start_series(&app, &auth).await;
    let copy = vtodo(
        "water-copy-uid",
        &["SUMMARY:Water plants", "DUE:20270601T090000Z", "STATUS:COMPLETED", "COMPLETED:20270601T100000Z"],
    );
    put_new(&app, &auth, "/dav/calendars/inbox/water-copy.ics", &copy).await;
    let response = put_ics(&app, &auth, SERIES, &water(&["DUE:20270602T090000Z"]), &[]).await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_advanced(&app, &user, &auth).await;
}

// ---- 9. The change feed ----

#[tokio::test]
async fn a_caldav_write_is_in_the_change_feed_and_bumps_the_version() {
    let (app, user, auth) = setup().await;
    let path = format!("{INBOX}feed.ics");
    put_new(&app, &auth, &path, &vtodo("feed-uid", &["SUMMARY:Feed"])).await;
    let task = by_title(&app, &user, "Feed").await;
    let id = task["id"].as_str().unwrap().to_owned();
    assert_eq!(task["version"], 1);
    let page: Value = app.get_as(&user.token, "/api/v1/changes?since=0").await.json().await.unwrap();
    assert!(page["changes"].as_array().unwrap().iter().any(|c| c["id"] == id.as_str()), "{page}");
    let since = page["next_since"].as_i64().unwrap();

    let (_, etag) = get_ics(&app, &auth, &path).await;
    let response =
        put_ics(&app, &auth, &path, &vtodo("feed-uid", &["SUMMARY:Fed"]), &[("If-Match", &etag)]).await;
    assert_eq!(response.status(), 204);
    let task = by_title(&app, &user, "Fed").await;
    assert_eq!(task["version"], 2, "{task}");
    let page: Value =
        app.get_as(&user.token, &format!("/api/v1/changes?since={since}")).await.json().await.unwrap();
    let changes = page["changes"].as_array().unwrap();
    assert!(changes.iter().any(|c| c["id"] == id.as_str()), "{page}");
}

// ---- 10. Sync pages, sync noise, and refusals a client can act on ----

fn sync_body_limited(token: &str, n: usize) -> String {
    format!(
        r#"<d:sync-collection xmlns:d="DAV:"><d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level><d:limit><d:nresults>{n}</d:nresults></d:limit><d:prop><d:getetag/></d:prop></d:sync-collection>"#
    )
}

/// Follows sync tokens from `token` as a client does, `n` results a report, until a report is
/// not truncated: every response seen, and the last token.
async fn sync_all(app: &TestApp, auth: &Auth, path: &str, token: &str, n: usize) -> (Vec<Resp>, String) {
    let mut token = token.to_owned();
    let mut seen = Vec::new();
    for _ in 0..50 {
        let (status, xml) = report(app, auth, path, &sync_body_limited(&token, n)).await;
        assert_eq!(status, 207, "{xml}");
        token = report_token(&xml);
        let mut truncated = false;
        for r in parse_multistatus(&xml) {
            if r.href == path {
                assert!(r.status.as_deref().is_some_and(|s| s.contains("507")), "{xml}");
                truncated = true;
            } else {
                seen.push(r);
            }
        }
        if !truncated {
            return (seen, token);
        }
    }
    panic!("the sync never ended");
}

#[tokio::test]
async fn a_client_following_short_sync_pages_sees_every_task_past_a_completed_occurrence() {
    let (app, user, auth) = setup().await;
    let a = app.create_task(&user, json!({"title": "A"})).await["id"].as_str().unwrap().to_owned();
    let (_, after_a) = sync_all(&app, &auth, INBOX, "", 1000).await;
    // The completed occurrence is hidden behind the series' resource, taking a row of a page.
    start_series(&app, &auth).await;
    let completed = water(&["DUE:20270601T090000Z", "STATUS:COMPLETED", "COMPLETED:20270601T100000Z"]);
    assert!(put_ics(&app, &auth, SERIES, &completed, &[]).await.status().is_success());
    let mut later = Vec::new();
    for title in ["B", "C", "D"] {
        later.push(app.create_task(&user, json!({"title": title})).await["id"].as_str().unwrap().to_owned());
    }
    let everything: Vec<String> = {
        let mut all: Vec<String> =
            [&a].into_iter().chain(&later).map(|id| format!("{INBOX}{id}.ics")).collect();
        all.push(SERIES.to_owned());
        all.sort();
        all
    };
    for (start, expected) in [("", everything.clone()), (after_a.as_str(), everything.clone())] {
        let expected: Vec<String> = match start {
            "" => expected,
            _ => expected.into_iter().filter(|h| *h != format!("{INBOX}{a}.ics")).collect(),
        };
        let (seen, _) = sync_all(&app, &auth, INBOX, start, 2).await;
        let mut hrefs: Vec<String> = seen.iter().map(|r| r.href.clone()).collect();
        hrefs.sort();
        hrefs.dedup();
        assert_eq!(hrefs, expected, "from {start:?}: {seen:?}");
    }
}

#[tokio::test]
async fn a_collections_sync_names_its_own_tasks_and_those_that_left_it_only() {
    let (app, user, auth) = setup().await;
    let project = create_project(&app, &user, "Work").await;
    let work = format!("/dav/calendars/{project}/");
    let id = |v: Value| v["id"].as_str().unwrap().to_owned();
    let kept = id(app.create_task(&user, json!({"title": "Kept"})).await);
    let leaving = id(app.create_task(&user, json!({"title": "Leaving"})).await);
    let trashed = id(app.create_task(&user, json!({"title": "Trashed"})).await);
    let elsewhere = id(app.create_task(&user, json!({"title": "Elsewhere", "project_id": project})).await);
    let gone_elsewhere =
        id(app.create_task(&user, json!({"title": "Gone elsewhere", "project_id": project})).await);
    for del in [&trashed, &gone_elsewhere] {
        let response = app.send_as(&user.token, Method::DELETE, &format!("/api/v1/tasks/{del}"), None).await;
        assert_eq!(response.status(), 204);
    }

    // A first sync lists the members, nothing from other lists and nothing deleted.
    let (seen, token) = sync_all(&app, &auth, INBOX, "", 1000).await;
    let mut hrefs: Vec<String> = seen.iter().map(|r| r.href.clone()).collect();
    hrefs.sort();
    let mut expected = vec![format!("{INBOX}{kept}.ics"), format!("{INBOX}{leaving}.ics")];
    expected.sort();
    assert_eq!(hrefs, expected, "{seen:?}");
    let (_, work_token) = sync_all(&app, &auth, &work, "", 1000).await;

    // Then: one task moves out, one is made elsewhere, one elsewhere changes, one is made here.
    let path = format!("/api/v1/tasks/{leaving}");
    let response =
        app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"project_id": project}))).await;
    assert_eq!(response.status(), 200);
    app.create_task(&user, json!({"title": "New elsewhere", "project_id": project})).await;
    let path = format!("/api/v1/tasks/{elsewhere}");
    let response = app.send_as(&user.token, Method::PATCH, &path, Some(&json!({"title": "Renamed"}))).await;
    assert_eq!(response.status(), 200);
    let new_here = id(app.create_task(&user, json!({"title": "New here"})).await);

    let (seen, _) = sync_all(&app, &auth, INBOX, &token, 1000).await;
    let mut hrefs: Vec<String> = seen.iter().map(|r| r.href.clone()).collect();
    hrefs.sort();
    let mut expected = vec![format!("{INBOX}{leaving}.ics"), format!("{INBOX}{new_here}.ics")];
    expected.sort();
    assert_eq!(hrefs, expected, "{seen:?}");
    let left = find(&seen, &format!("{INBOX}{leaving}.ics"));
    assert!(left.status.as_deref().is_some_and(|s| s.contains("404")), "{seen:?}");

    // The list it moved to lists it as a member.
    let (seen, _) = sync_all(&app, &auth, &work, &work_token, 1000).await;
    let arrived = find(&seen, &format!("{work}{leaving}.ics"));
    assert!(arrived.found.contains_key("getetag"), "{seen:?}");
}

#[tokio::test]
async fn the_same_name_in_a_second_calendar_is_a_conflict_not_a_server_error() {
    let (app, user, auth) = setup().await;
    let project = create_project(&app, &user, "Work").await;
    put_new(&app, &auth, &format!("{INBOX}same.ics"), &vtodo("first-uid", &["SUMMARY:First"])).await;
    let path = format!("/dav/calendars/{project}/same.ics");
    let response = put_ics(&app, &auth, &path, &vtodo("second-uid", &["SUMMARY:Second"]), &[]).await;
    assert_eq!(response.status(), 409);
    assert!(response.text().await.unwrap().contains("resource-must-be-null"));
    assert_eq!(tasks(&app, &user).await.len(), 1);
}

#[tokio::test]
async fn a_uid_over_255_bytes_is_refused_as_an_invalid_object() {
    let (app, user, auth) = setup().await;
    let uid = "u".repeat(256);
    let response =
        put_ics(&app, &auth, &format!("{INBOX}long.ics"), &vtodo(&uid, &["SUMMARY:Long"]), &[]).await;
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("valid-calendar-object-resource"));
    assert!(tasks(&app, &user).await.is_empty());
}

#[tokio::test]
async fn if_match_star_on_a_missing_resource_is_412() {
    let (app, user, auth) = setup().await;
    let path = format!("{INBOX}absent.ics");
    let response =
        put_ics(&app, &auth, &path, &vtodo("absent", &["SUMMARY:Absent"]), &[("If-Match", "*")]).await;
    assert_eq!(response.status(), 412);
    assert!(tasks(&app, &user).await.is_empty());
    put_new(&app, &auth, &path, &vtodo("absent", &["SUMMARY:Present"])).await;
    let response =
        put_ics(&app, &auth, &path, &vtodo("absent", &["SUMMARY:Again"]), &[("If-Match", "*")]).await;
    assert_eq!(response.status(), 204);
    by_title(&app, &user, "Again").await;
}

#[tokio::test]
async fn an_address_over_the_failed_login_limit_is_refused_before_its_credentials_are_checked() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.enabled = true;
        s.rate_limit.auth_per_ip_per_minute = 5;
    })
    .await;
    let user = app.new_user().await;
    let good = Auth { email: user.email.clone(), token: api_token(&app, &user, &ALL_SCOPES).await };
    let bad = Auth { email: user.email.clone(), token: format!("{}x", good.token) };
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = dav(&app, Some(&bad), "PROPFIND", "/dav/", &[("Depth", "0")], "").await;
        statuses.push(response.status().as_u16());
    }
    assert!(statuses.contains(&401) && statuses.ends_with(&[429, 429]), "{statuses:?}");
    // Right credentials from that address wait too: otherwise guessing goes on.
    let response = dav(&app, Some(&good), "PROPFIND", "/dav/", &[("Depth", "0")], "").await;
    assert_eq!(response.status(), 429);
}

// ---- 11. Built behaviour, checked as a client sees it ----

#[tokio::test]
async fn a_bearer_api_token_signs_in_too() {
    let (app, _, auth) = setup().await;
    let response = raw_client()
        .request(Method::from_bytes(b"PROPFIND").unwrap(), app.url("/dav/"))
        .bearer_auth(&auth.token)
        .header("Depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 207);
}

#[tokio::test]
async fn an_extended_mkcol_for_a_calendar_makes_a_project() {
    let (app, user, auth) = setup().await;
    let id = Uuid::new_v4();
    let body = r#"<?xml version="1.0"?><d:mkcol xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop><d:resourcetype><d:collection/><c:calendar/></d:resourcetype><d:displayname>Errands</d:displayname></d:prop></d:set></d:mkcol>"#;
    let response = dav(&app, Some(&auth), "MKCOL", &format!("/dav/calendars/{id}/"), &[], body).await;
    assert_eq!(response.status(), 201);
    let project: Value =
        app.get_as(&user.token, &format!("/api/v1/projects/{id}")).await.json().await.unwrap();
    assert_eq!(project["name"], "Errands");
}

#[tokio::test]
async fn get_with_the_current_etag_in_if_none_match_is_304() {
    let (app, _, auth) = setup().await;
    let path = format!("{INBOX}cached.ics");
    put_new(&app, &auth, &path, &vtodo("cached", &["SUMMARY:Cached"])).await;
    let (_, etag) = get_ics(&app, &auth, &path).await;
    let response = dav(&app, Some(&auth), "GET", &path, &[("If-None-Match", &etag)], "").await;
    assert_eq!(response.status(), 304);
}

#[tokio::test]
async fn delete_with_a_stale_if_match_is_412_and_keeps_the_task() {
    let (app, user, auth) = setup().await;
    let path = format!("{INBOX}kept-on-delete.ics");
    put_new(&app, &auth, &path, &vtodo("kod", &["SUMMARY:Stays"])).await;
    let response = dav(&app, Some(&auth), "DELETE", &path, &[("If-Match", "\"stale\"")], "").await;
    assert_eq!(response.status(), 412);
    by_title(&app, &user, "Stays").await;
}

#[tokio::test]
async fn propfind_shows_the_calendar_color_and_the_privileges() {
    let (app, user, auth) = setup().await;
    let body = json!({"name": "Coloured", "color": "#ff8800"});
    let response = app.send_as(&user.token, Method::POST, "/api/v1/projects", Some(&body)).await;
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let path = format!("/dav/calendars/{id}/");
    let color = collection_prop(&app, &auth, &path, "a:calendar-color").await;
    assert!(color.to_ascii_lowercase().starts_with("#ff8800"), "{color}");
    let privileges = collection_prop(&app, &auth, &path, "d:current-user-privilege-set").await;
    assert!(privileges.contains("<read>") && privileges.contains("<write"), "{privileges}");
}

#[tokio::test]
async fn depth_1_lists_each_task_with_its_etag() {
    let (app, _, auth) = setup().await;
    put_new(&app, &auth, &format!("{INBOX}one.ics"), &vtodo("one", &["SUMMARY:One"])).await;
    put_new(&app, &auth, &format!("{INBOX}two.ics"), &vtodo("two", &["SUMMARY:Two"])).await;
    let (status, body) = propfind(&app, &auth, INBOX, "1", &props("<d:getetag/>")).await;
    assert_eq!(status, 207, "{body}");
    let responses = parse_multistatus(&body);
    for name in ["one.ics", "two.ics"] {
        let path = format!("{INBOX}{name}");
        let (_, etag) = get_ics(&app, &auth, &path).await;
        assert_eq!(find(&responses, &path).found["getetag"], etag, "{body}");
    }
}

#[tokio::test]
async fn a_task_due_in_a_zone_is_served_with_its_vtimezone() {
    let (app, user, auth) = setup().await;
    let body = json!({"title": "Zoned", "due_at": "2027-05-01T07:00:00Z", "timezone": "Europe/Paris"});
    let (_, lines) = rest_then_ics(&app, &user, &auth, body).await;
    assert!(has(&lines, "BEGIN:VTIMEZONE") && has(&lines, "TZID:Europe/Paris"), "{lines:?}");
}

#[tokio::test]
async fn a_sync_token_older_than_the_kept_deletions_is_refused_as_valid_sync_token() {
    let (app, user, auth) = setup().await;
    let doomed = app.create_task(&user, json!({"title": "Doomed"})).await;
    let (_, token) = sync_all(&app, &auth, INBOX, "", 1000).await;
    let path = format!("/api/v1/tasks/{}", doomed["id"].as_str().unwrap());
    assert_eq!(app.send_as(&user.token, Method::DELETE, &path, None).await.status(), 204);
    app.age_trash().await;
    app.purge(None).await;
    sqlx::query("UPDATE task_tombstones SET deleted_at = deleted_at - interval '31 days'")
        .execute(&app.pool)
        .await
        .unwrap();
    todo::db::changes::prune_tombstones(&app.pool, 30.0 * 86_400.0).await.unwrap();
    let (status, xml) = report(&app, &auth, INBOX, &sync_body(&token)).await;
    assert_eq!(status, 403, "{xml}");
    assert!(xml.contains("valid-sync-token"), "{xml}");
}

#[tokio::test]
async fn an_object_as_large_as_max_resource_size_says_gets_through() {
    let (app, user, auth) = setup().await;
    let advertised = collection_prop(&app, &auth, INBOX, "c:max-resource-size").await;
    let advertised: usize = advertised.parse().unwrap();
    // Kept lines, well past the API's 64 KiB body bound and within what is advertised.
    let line = format!("X-NOTE:{}", "n".repeat(70));
    let lines: Vec<&str> =
        std::iter::once("SUMMARY:Large").chain(std::iter::repeat_n(line.as_str(), 1500)).collect();
    let body = vtodo("large", &lines);
    assert!(body.len() > 100 * 1024 && body.len() < advertised, "{}", body.len());
    put_new(&app, &auth, &format!("{INBOX}large.ics"), &body).await;
    by_title(&app, &user, "Large").await;
}

#[tokio::test]
async fn status_progress_and_priority_come_back_as_the_client_sent_them() {
    let (app, user, auth) = setup().await;
    let path = format!("{INBOX}fidelity.ics");
    let sent = ["SUMMARY:Fidelity", "STATUS:IN-PROCESS", "PERCENT-COMPLETE:40", "PRIORITY:3"];
    put_new(&app, &auth, &path, &vtodo("fidelity", &sent)).await;
    let (lines, _) = get_ics(&app, &auth, &path).await;
    for line in &sent[1..] {
        assert!(has(&lines, line), "{line}: {lines:?}");
    }
    let task = by_title(&app, &user, "Fidelity").await;
    assert_eq!((task["completed"].as_bool(), task["priority"].as_str()), (Some(false), Some("high")));

    let cancelled = vtodo("no-priority", &["SUMMARY:Cancelled", "STATUS:CANCELLED"]);
    put_new(&app, &auth, &format!("{INBOX}cancelled.ics"), &cancelled).await;
    let (lines, _) = get_ics(&app, &auth, &format!("{INBOX}cancelled.ics")).await;
    assert!(has(&lines, "STATUS:CANCELLED"), "{lines:?}");
    assert!(!lines.iter().any(|l| l.starts_with("PRIORITY")), "none was sent: {lines:?}");

    // Once the task says something else, the server's form is written.
    let id = task["id"].as_str().unwrap();
    let patch = json!({"completed": true, "priority": "low"});
    let response =
        app.send_as(&user.token, Method::PATCH, &format!("/api/v1/tasks/{id}"), Some(&patch)).await;
    assert_eq!(response.status(), 200);
    let (lines, _) = get_ics(&app, &auth, &path).await;
    for line in ["STATUS:COMPLETED", "PERCENT-COMPLETE:100", "PRIORITY:9"] {
        assert!(has(&lines, line), "{line}: {lines:?}");
    }
    assert!(!has(&lines, "STATUS:IN-PROCESS") && !has(&lines, "PERCENT-COMPLETE:40"), "{lines:?}");
}

#[tokio::test]
async fn a_long_multiget_is_streamed_and_answers_every_href() {
    let (app, _, auth) = setup().await;
    put_new(&app, &auth, &format!("{INBOX}first.ics"), &vtodo("first", &["SUMMARY:First"])).await;
    put_new(&app, &auth, &format!("{INBOX}last.ics"), &vtodo("last", &["SUMMARY:Last"])).await;
    let mut hrefs: Vec<String> =
        (0..118).map(|i| format!("<d:href>{INBOX}missing-{i}.ics</d:href>")).collect();
    hrefs.insert(0, format!("<d:href>{INBOX}first.ics</d:href>"));
    hrefs.push(format!("<d:href>{INBOX}last.ics</d:href>"));
    let body = format!(
        r#"<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/><c:calendar-data/></d:prop>{}</c:calendar-multiget>"#,
        hrefs.concat()
    );
    let headers = [("Depth", "1"), ("Content-Type", "application/xml")];
    let response = dav(&app, Some(&auth), "REPORT", INBOX, &headers, &body).await;
    assert_eq!(response.status(), 207);
    assert_eq!(response.content_length(), None, "streamed, so no length up front");
    let xml = response.text().await.unwrap();
    let responses = parse_multistatus(&xml);
    assert_eq!(responses.len(), 120, "{xml}");
    for name in ["first.ics", "last.ics"] {
        assert!(find(&responses, &format!("{INBOX}{name}")).found.contains_key("calendar-data"), "{xml}");
    }
}

#[tokio::test]
async fn the_mapped_alarm_comes_back_whole_while_the_reminder_is_unchanged() {
    let (app, user, auth) = setup().await;
    let path = format!("{INBOX}alarm.ics");
    let alarm = [
        "BEGIN:VALARM",
        "UID:alarm-1",
        "X-WR-ALARMUID:alarm-1",
        "ACTION:DISPLAY",
        "DESCRIPTION:Ring me",
        "TRIGGER;RELATED=END:-PT15M",
        "END:VALARM",
    ];
    let mut lines = vec!["SUMMARY:Alarmed", "DUE:20270501T090000Z"];
    lines.extend(alarm);
    put_new(&app, &auth, &path, &vtodo("alarmed", &lines)).await;
    let (got, _) = get_ics(&app, &auth, &path).await;
    let start = got.iter().position(|l| l == "BEGIN:VALARM").expect("an alarm");
    assert_eq!(&got[start..start + alarm.len()], alarm, "{got:?}");
    let task = by_title(&app, &user, "Alarmed").await;
    assert_eq!(instant(&task["reminder_at"]), at("2027-05-01T08:45:00Z"));

    let id = task["id"].as_str().unwrap();
    let patch = json!({"reminder_at": "2027-05-01T08:00:00Z"});
    let response =
        app.send_as(&user.token, Method::PATCH, &format!("/api/v1/tasks/{id}"), Some(&patch)).await;
    assert_eq!(response.status(), 200);
    let (got, _) = get_ics(&app, &auth, &path).await;
    assert!(has(&got, "TRIGGER;RELATED=END:-PT1H") && !has(&got, "X-WR-ALARMUID:alarm-1"), "{got:?}");
}
