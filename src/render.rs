//! Templates compiled into the binary and rendered with minijinja: emails and the pages behind
//! links in them. One place decides escaping, by file type: every value in an `.html` template
//! is HTML-escaped, a `.txt` template shows it as typed.

use minijinja::{AutoEscape, Environment};

/// An environment holding `templates` (name, source), escaping by each name's extension.
pub fn environment(
    templates: &[(&'static str, &'static str)],
) -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| match name.ends_with(".html") {
        true => AutoEscape::Html,
        false => AutoEscape::None,
    });
    for (name, source) in templates {
        env.add_template(name, source)?;
    }
    Ok(env)
}
