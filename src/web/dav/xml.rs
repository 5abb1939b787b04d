//! WebDAV XML (RFC 4918, RFC 4791, RFC 6578): reading request bodies into plain values, and
//! writing multistatus answers. Bodies are parsed with DTDs refused (no entity expansion) and a
//! node limit, after the payload limit has bounded their size.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDateTime, Utc};

pub const DAV: &str = "DAV:";
pub const CALDAV: &str = "urn:ietf:params:xml:ns:caldav";
pub const CALSERVER: &str = "http://calendarserver.org/ns/";
pub const APPLE: &str = "http://apple.com/ns/ical/";

/// Nodes one request body may hold.
const MAX_NODES: u32 = 20_000;

/// A property or element name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name {
    pub ns: String,
    pub local: String,
}

impl Name {
    pub fn new(ns: &str, local: &str) -> Self {
        Self { ns: ns.to_owned(), local: local.to_owned() }
    }

    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.ns == ns && self.local == local
    }

    fn of(node: roxmltree::Node<'_, '_>) -> Self {
        Self::new(node.tag_name().namespace().unwrap_or(""), node.tag_name().name())
    }
}

/// A body that is not the XML the method takes.
#[derive(Debug, Clone)]
pub struct BadXml(pub String);

fn parse(body: &[u8]) -> Result<roxmltree::Document<'_>, BadXml> {
    let text = std::str::from_utf8(body).map_err(|_| BadXml("the body is not UTF-8".into()))?;
    let options =
        roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: MAX_NODES, ..Default::default() };
    roxmltree::Document::parse_with_options(text, options)
        .map_err(|e| BadXml(format!("the body is not XML: {e}")))
}

fn children<'a, 'i>(node: roxmltree::Node<'a, 'i>) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    node.children().filter(roxmltree::Node::is_element)
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, ns: &str, local: &str) -> Option<roxmltree::Node<'a, 'i>> {
    children(node).find(|c| Name::of(*c).is(ns, local))
}

/// What a PROPFIND or REPORT asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    All,
    Names,
    Props(Vec<Name>),
}

fn wanted(node: roxmltree::Node<'_, '_>) -> Wanted {
    if let Some(prop) = child(node, DAV, "prop") {
        return Wanted::Props(children(prop).map(Name::of).collect());
    }
    if child(node, DAV, "propname").is_some() { Wanted::Names } else { Wanted::All }
}

/// A PROPFIND body; an empty one asks for all properties (RFC 4918 §9.1).
pub fn propfind(body: &[u8]) -> Result<Wanted, BadXml> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Wanted::All);
    }
    let doc = parse(body)?;
    let root = doc.root_element();
    if !Name::of(root).is(DAV, "propfind") {
        return Err(BadXml("a PROPFIND body is a DAV:propfind element".into()));
    }
    Ok(wanted(root))
}

/// A time range; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMatch {
    pub text: String,
    pub negate: bool,
    /// `i;octet` compares exactly; the default `i;ascii-casemap` ignores ASCII case.
    pub exact: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PropFilter {
    pub name: String,
    pub not_defined: bool,
    pub time_range: Option<TimeRange>,
    pub text_match: Option<TextMatch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompFilter {
    pub name: String,
    pub not_defined: bool,
    pub time_range: Option<TimeRange>,
    pub props: Vec<PropFilter>,
    pub comps: Vec<CompFilter>,
    /// `test="anyof"`: one of the filters inside must match rather than all.
    pub any_of: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Query {
        wanted: Wanted,
        filter: Option<CompFilter>,
    },
    Multiget {
        wanted: Wanted,
        hrefs: Vec<String>,
    },
    Sync {
        wanted: Wanted,
        token: String,
        limit: Option<usize>,
    },
    /// A report this server does not run.
    Other(Name),
}

pub fn report(body: &[u8]) -> Result<Report, BadXml> {
    let doc = parse(body)?;
    let root = doc.root_element();
    let name = Name::of(root);
    let report = if name.is(CALDAV, "calendar-query") {
        let filter = child(root, CALDAV, "filter").and_then(|f| child(f, CALDAV, "comp-filter"));
        Report::Query { wanted: wanted(root), filter: filter.map(comp_filter).transpose()? }
    } else if name.is(CALDAV, "calendar-multiget") {
        let hrefs = children(root)
            .filter(|c| Name::of(*c).is(DAV, "href"))
            .map(|c| c.text().unwrap_or("").trim().to_owned())
            .collect();
        Report::Multiget { wanted: wanted(root), hrefs }
    } else if name.is(DAV, "sync-collection") {
        let token = child(root, DAV, "sync-token").and_then(|t| t.text()).unwrap_or("").trim().to_owned();
        let limit = child(root, DAV, "limit")
            .and_then(|l| child(l, DAV, "nresults"))
            .and_then(|n| n.text())
            .and_then(|n| n.trim().parse().ok());
        Report::Sync { wanted: wanted(root), token, limit }
    } else {
        Report::Other(name)
    };
    Ok(report)
}

fn comp_filter(node: roxmltree::Node<'_, '_>) -> Result<CompFilter, BadXml> {
    let mut filter = CompFilter {
        name: node.attribute("name").unwrap_or("").to_ascii_uppercase(),
        any_of: node.attribute("test") == Some("anyof"),
        ..CompFilter::default()
    };
    for c in children(node) {
        match Name::of(c).local.as_str() {
            "is-not-defined" => filter.not_defined = true,
            "time-range" => filter.time_range = Some(time_range(c)?),
            "prop-filter" => filter.props.push(prop_filter(c)?),
            "comp-filter" => filter.comps.push(comp_filter(c)?),
            _ => {}
        }
    }
    Ok(filter)
}

fn prop_filter(node: roxmltree::Node<'_, '_>) -> Result<PropFilter, BadXml> {
    let mut filter = PropFilter {
        name: node.attribute("name").unwrap_or("").to_ascii_uppercase(),
        ..PropFilter::default()
    };
    for c in children(node) {
        match Name::of(c).local.as_str() {
            "is-not-defined" => filter.not_defined = true,
            "time-range" => filter.time_range = Some(time_range(c)?),
            "text-match" => {
                filter.text_match = Some(TextMatch {
                    text: c.text().unwrap_or("").to_owned(),
                    negate: c.attribute("negate-condition") == Some("yes"),
                    exact: c.attribute("collation") == Some("i;octet"),
                });
            }
            _ => {}
        }
    }
    Ok(filter)
}

fn time_range(node: roxmltree::Node<'_, '_>) -> Result<TimeRange, BadXml> {
    let at = |name: &str| -> Result<Option<DateTime<Utc>>, BadXml> {
        node.attribute(name)
            .map(|raw| {
                NaiveDateTime::parse_from_str(raw.trim(), "%Y%m%dT%H%M%SZ").map(|t| t.and_utc()).map_err(
                    |_| BadXml(format!("time-range {name} must be a UTC date-time such as 20270101T000000Z")),
                )
            })
            .transpose()
    };
    Ok(TimeRange { start: at("start")?, end: at("end")? })
}

/// What MKCALENDAR, an extended MKCOL or PROPPATCH sets: property names with their text (a
/// colour, a name), and, for MKCOL, the resource types asked for.
#[derive(Debug, Clone, Default)]
pub struct Setting {
    pub set: Vec<(Name, String)>,
    pub remove: Vec<Name>,
    pub resource_types: Vec<Name>,
    /// The components a new calendar is to hold, when the body names them.
    pub components: Option<Vec<String>>,
}

pub fn setting(body: &[u8]) -> Result<Setting, BadXml> {
    let mut setting = Setting::default();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(setting);
    }
    let doc = parse(body)?;
    for op in children(doc.root_element()) {
        let removing = Name::of(op).is(DAV, "remove");
        for prop in children(op).filter(|p| Name::of(*p).is(DAV, "prop")) {
            for p in children(prop) {
                let name = Name::of(p);
                if removing {
                    setting.remove.push(name);
                } else if name.is(DAV, "resourcetype") {
                    setting.resource_types = children(p).map(Name::of).collect();
                } else if name.is(CALDAV, "supported-calendar-component-set") {
                    let comps = children(p).filter_map(|c| c.attribute("name")).map(str::to_ascii_uppercase);
                    setting.components = Some(comps.collect());
                } else {
                    let text: String =
                        p.descendants().filter(|n| n.is_text()).filter_map(|n| n.text()).collect();
                    setting.set.push((name, text.trim().to_owned()));
                }
            }
        }
    }
    Ok(setting)
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // Characters XML 1.0 cannot carry at all: a task's text never holds them, but a
            // client's kept line might.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// The prefix a namespace is written with, declared once on the root element.
fn prefix(ns: &str) -> Option<&'static str> {
    match ns {
        DAV => Some("d"),
        CALDAV => Some("c"),
        CALSERVER => Some("cs"),
        APPLE => Some("a"),
        _ => None,
    }
}

/// An element with its content (already XML), in whatever namespace it has.
pub fn element(name: &Name, inner: &str) -> String {
    match prefix(&name.ns) {
        Some(p) if inner.is_empty() => format!("<{p}:{}/>", name.local),
        Some(p) => format!("<{p}:{0}>{inner}</{p}:{0}>", name.local),
        None if inner.is_empty() => format!("<x:{} xmlns:x=\"{}\"/>", name.local, escape(&name.ns)),
        None => format!("<x:{0} xmlns:x=\"{1}\">{inner}</x:{0}>", name.local, escape(&name.ns)),
    }
}

pub const ROOT_OPEN: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:multistatus xmlns:d=\"DAV:\" \
     xmlns:c=\"urn:ietf:params:xml:ns:caldav\" xmlns:cs=\"http://calendarserver.org/ns/\" \
     xmlns:a=\"http://apple.com/ns/ical/\">";

/// One `<d:response>`: the properties found, with their values, and those not found.
pub fn response(href: &str, found: &[(Name, String)], missing: &[Name]) -> String {
    let mut out = format!("<d:response><d:href>{}</d:href>", escape(href));
    if !found.is_empty() {
        out.push_str("<d:propstat><d:prop>");
        for (name, inner) in found {
            out.push_str(&element(name, inner));
        }
        out.push_str("</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>");
    }
    if !missing.is_empty() {
        out.push_str("<d:propstat><d:prop>");
        for name in missing {
            out.push_str(&element(name, ""));
        }
        out.push_str("</d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>");
    }
    out.push_str("</d:response>");
    out
}

/// A `<d:response>` carrying only a status (a deleted member, an unknown href).
pub fn status_response(href: &str, status: &str, error: Option<&str>) -> String {
    let mut out =
        format!("<d:response><d:href>{}</d:href><d:status>HTTP/1.1 {status}</d:status>", escape(href));
    if let Some(error) = error {
        let _ = write!(out, "<d:error>{error}</d:error>");
    }
    out.push_str("</d:response>");
    out
}

/// A precondition's error body (RFC 4918 §16): `<d:error><c:valid-calendar-data/></d:error>`.
pub fn error_body(condition: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error xmlns:d=\"DAV:\" \
         xmlns:c=\"urn:ietf:params:xml:ns:caldav\">{condition}</d:error>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_propfind_asks_for_all_and_a_prop_list_for_those() {
        assert_eq!(propfind(b"").unwrap(), Wanted::All);
        let body =
            br#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/">
            <d:prop><d:getetag/><cs:getctag/></d:prop></d:propfind>"#;
        assert_eq!(
            propfind(body).unwrap(),
            Wanted::Props(vec![Name::new(DAV, "getetag"), Name::new(CALSERVER, "getctag")])
        );
        assert!(propfind(b"<not-closed").is_err());
    }

    #[test]
    fn a_dtd_is_refused() {
        let body = br#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><d:propfind xmlns:d="DAV:">&a;</d:propfind>"#;
        assert!(propfind(body).is_err());
    }

    #[test]
    fn a_calendar_query_reads_its_filters() {
        let body = br#"<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
            <d:prop><d:getetag/></d:prop>
            <c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VTODO">
              <c:prop-filter name="COMPLETED"><c:is-not-defined/></c:prop-filter>
              <c:prop-filter name="STATUS"><c:text-match negate-condition="yes">CANCELLED</c:text-match></c:prop-filter>
              <c:time-range start="20270101T000000Z" end="20270201T000000Z"/>
            </c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"#;
        let Report::Query { filter: Some(cal), .. } = report(body).unwrap() else { panic!() };
        let todo = &cal.comps[0];
        assert_eq!(todo.name, "VTODO");
        assert!(todo.props[0].not_defined);
        assert!(todo.props[1].text_match.as_ref().unwrap().negate);
        assert!(todo.time_range.unwrap().start.is_some());
    }

    #[test]
    fn answers_escape_hrefs_and_text() {
        let out =
            response("/a&b", &[(Name::new(DAV, "displayname"), escape("<x>"))], &[Name::new("urn:x", "y")]);
        assert!(out.contains("/a&amp;b") && out.contains("&lt;x&gt;") && out.contains("xmlns:x=\"urn:x\""));
    }
}
