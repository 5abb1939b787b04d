//! The DAV address space, read from and written into request paths.

use uuid::Uuid;

use super::HOME;

/// A calendar: a project, or the inbox (`None`).
pub type Cal = Option<Uuid>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Root,
    Principal,
    Home,
    Collection(Cal),
    Object(Cal, String),
}

/// Longest resource name a client may choose, in octets.
pub const MAX_NAME: usize = 255;

pub fn parse(path: &str) -> Option<Target> {
    let rest = path.strip_prefix("/dav")?;
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [] => Some(Target::Root),
        ["principal"] => Some(Target::Principal),
        ["calendars"] => Some(Target::Home),
        ["calendars", cal] => Some(Target::Collection(calendar(cal)?)),
        ["calendars", cal, name] => {
            let cal = calendar(cal)?;
            let name = decode(name)?;
            let fits = !name.is_empty() && name.len() <= MAX_NAME && name != "." && name != "..";
            fits.then_some(Target::Object(cal, name))
        }
        _ => None,
    }
}

/// `inbox` or a project id.
fn calendar(raw: &str) -> Option<Cal> {
    match raw {
        "inbox" => Some(None),
        id => id.parse::<Uuid>().ok().map(Some),
    }
}

pub fn collection_href(cal: Cal) -> String {
    match cal {
        None => format!("{HOME}inbox/"),
        Some(id) => format!("{HOME}{id}/"),
    }
}

pub fn object_href(cal: Cal, name: &str) -> String {
    format!("{}{}", collection_href(cal), encode(name))
}

/// The resource name an href (absolute URL or path) names in `cal`, if it is one of its members.
pub fn member_name(href: &str, cal: Cal) -> Option<String> {
    let path = match href.find("://") {
        Some(scheme) => &href[scheme + 3..][href[scheme + 3..].find('/')?..],
        None => href,
    };
    match parse(path)? {
        Target::Object(in_cal, name) if in_cal == cal => Some(name),
        _ => None,
    }
}

/// Percent-decoding of one path segment; `None` for a bad escape or non-UTF-8.
fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encoding for a path segment: everything but RFC 3986's unreserved characters and a
/// few sub-delimiters clients leave as they are.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' | b'+' | b'=' => {
                out.push(byte as char);
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_targets() {
        assert_eq!(parse("/dav/"), Some(Target::Root));
        assert_eq!(parse("/dav/principal/"), Some(Target::Principal));
        assert_eq!(parse("/dav/calendars/inbox/"), Some(Target::Collection(None)));
        assert_eq!(parse("/dav/calendars/inbox/a%20b.ics"), Some(Target::Object(None, "a b.ics".into())));
        assert_eq!(parse("/dav/calendars/nope/"), None);
        assert_eq!(parse("/dav/calendars/inbox/a/b"), None);
        assert_eq!(parse("/dav/calendars/inbox/%zz"), None);
    }

    #[test]
    fn hrefs_round_trip_through_encoding() {
        let href = object_href(None, "ü x@y.ics");
        assert_eq!(member_name(&href, None).as_deref(), Some("ü x@y.ics"));
        assert_eq!(member_name(&format!("https://h.example{href}"), None).as_deref(), Some("ü x@y.ics"));
        assert_eq!(member_name(&href, Some(Uuid::nil())), None);
    }
}
