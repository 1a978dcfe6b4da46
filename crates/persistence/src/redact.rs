//! Database URLs as they may be shown: a password in them is for the database server only.

/// `url` with the password of its user information and of any `password` (or `sslpassword`)
/// query parameter replaced by `***`; the rest as given, so an operator still sees which
/// server, user and database are meant. Anything else is returned as it is.
///
/// The user information ends at the first `@` after `://`, as the PostgreSQL client reads it
/// (a password may hold `/`, `?` or `:` unescaped, never `@`).
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let (userinfo, place) = match rest.split_once('@') {
        Some((userinfo, place)) => match userinfo.split_once(':') {
            Some((user, _password)) => (format!("{user}:***@"), place),
            None => (format!("{userinfo}@"), place),
        },
        None => (String::new(), rest),
    };
    let place = match place.split_once('?') {
        Some((path, query)) => format!("{path}?{}", redact_query(query)),
        None => place.to_owned(),
    };
    format!("{scheme}{userinfo}{place}")
}

fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().ends_with("password") => {
                format!("{key}=***")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_hidden_and_the_rest_is_kept() {
        for (url, shown) in [
            (
                "postgres://pos:hunter2@db.internal:5432/pos_gateway",
                "postgres://pos:***@db.internal:5432/pos_gateway",
            ),
            ("postgres://:hunter2@h/db", "postgres://:***@h/db"),
            // Unescaped `/`, `?` and `:` belong to the password, as the client reads it.
            (
                "postgresql://pos:hun/ter?2:x@h/db?sslmode=require",
                "postgresql://pos:***@h/db?sslmode=require",
            ),
            (
                "postgres://pos@h/db?password=hunter2&sslmode=require",
                "postgres://pos@h/db?password=***&sslmode=require",
            ),
            (
                "postgres://h/db?sslmode=verify-full&sslpassword=hunter2",
                "postgres://h/db?sslmode=verify-full&sslpassword=***",
            ),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
            assert!(!redact_url(url).contains("hunter2"));
        }
    }

    #[test]
    fn urls_without_a_password_are_unchanged() {
        for url in [
            "sqlite://pos-gateway.db",
            "sqlite:///var/lib/pos-gateway/pos.db",
            "postgres://pos@db.internal/pos_gateway",
            "postgres://db.internal/pos_gateway?application_name=a@b",
            "not a url",
            "",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }
}
