//! A request to a vendor, kept as data so it can be sent again on a retry.

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;

use super::Secret;

/// One call to a vendor: method, URL, headers and body, plus the secrets it carries (scrubbed
/// from whatever the vendor answers) and the non-success statuses the vendor module wants to
/// read itself. Build it with [`VendorHttp::request`](super::VendorHttp::request) (or
/// [`VendorRequest::new`] for a URL outside the store's base, such as a token endpoint).
///
/// The builder never fails: a header value that can't be sent (a control character in a
/// configured key) is remembered and the call fails before anything is sent. Vendor modules'
/// `validate_config` should refuse such values up front.
#[derive(Clone)]
pub struct VendorRequest {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Body>,
    pub(crate) secrets: Vec<Secret>,
    pub(crate) accepted: Vec<StatusCode>,
    pub(crate) problem: Option<String>,
    /// What spans and logs name the call by (see [`VendorRequest::route`]).
    pub(crate) route: std::borrow::Cow<'static, str>,
}

#[derive(Clone)]
pub(crate) enum Body {
    Json(Vec<u8>),
    /// Form fields; values are kept as secrets since token grants send keys this way.
    Form(Vec<(String, Secret)>),
}

impl VendorRequest {
    pub fn new(method: Method, url: Url) -> Self {
        let route = route_template(&url, 0).into();
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            secrets: Vec::new(),
            accepted: Vec::new(),
            problem: None,
            route,
        }
    }

    /// Names the call in spans and logs by `template` (`customer/{id}`), for a vendor module
    /// that knows its routes. Without it the route is the URL's path with every segment past
    /// the first below the store's base URL shown as `{}` (`/v1/customers/{}`): a path may
    /// hold a customer's id, e-mail or name, and a template never does.
    pub fn route(mut self, template: &'static str) -> Self {
        self.route = template.into();
        self
    }

    pub(crate) fn with_route(mut self, template: String) -> Self {
        self.route = template.into();
        self
    }

    /// The route spans and logs name the call by.
    pub fn route_template(&self) -> &str {
        &self.route
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Appends a query parameter, percent-encoded.
    pub fn query(mut self, key: &str, value: &str) -> Self {
        self.url.query_pairs_mut().append_pair(key, value);
        self
    }

    /// A header that is not a credential.
    pub fn header(self, name: &str, value: &str) -> Self {
        self.insert(name, value, false)
    }

    /// A header carrying a credential: marked sensitive (hidden from reqwest's and hyper's own
    /// debug output) and its value scrubbed from the answer.
    pub fn secret_header(mut self, name: &str, value: &Secret) -> Self {
        self.secrets.push(value.clone());
        self.insert(name, value.expose(), true)
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(mut self, token: &Secret) -> Self {
        self.secrets.push(token.clone());
        let value = format!("Bearer {}", token.expose());
        self.insert(AUTHORIZATION.as_str(), &value, true)
    }

    /// HTTP Basic with the user (a location key, at Dutchie) and an optional password, both
    /// scrubbed from answers in their plain form.
    pub fn basic_auth(mut self, user: &Secret, password: Option<&Secret>) -> Self {
        use base64::Engine as _;
        self.secrets.push(user.clone());
        if let Some(password) = password {
            self.secrets.push(password.clone());
        }
        let pair = format!(
            "{}:{}",
            user.expose(),
            password.map(Secret::expose).unwrap_or_default()
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        self.secrets.push(Secret::new(encoded.clone()));
        self.insert(AUTHORIZATION.as_str(), &format!("Basic {encoded}"), true)
    }

    /// A JSON body.
    pub fn json(mut self, body: &impl Serialize) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => self.body = Some(Body::Json(bytes)),
            Err(error) => self.fail(format!("the request body could not be encoded: {error}")),
        }
        self
    }

    /// A form field (`application/x-www-form-urlencoded` body).
    pub fn form_field(self, key: &str, value: &str) -> Self {
        self.push_field(key, Secret::new(value))
    }

    /// A form field carrying a credential (an API key in a token grant).
    pub fn secret_form_field(mut self, key: &str, value: &Secret) -> Self {
        self.secrets.push(value.clone());
        self.push_field(key, value.clone())
    }

    /// Lets answers with this status through to the vendor module instead of mapping them to an
    /// error, for vendors that mean something particular by it (a search answering 404 for
    /// "no match", say).
    pub fn accept_status(mut self, status: StatusCode) -> Self {
        self.accepted.push(status);
        self
    }

    fn push_field(mut self, key: &str, value: Secret) -> Self {
        match &mut self.body {
            Some(Body::Form(fields)) => fields.push((key.to_owned(), value)),
            _ => self.body = Some(Body::Form(vec![(key.to_owned(), value)])),
        }
        self
    }

    fn insert(mut self, name: &str, value: &str, sensitive: bool) -> Self {
        let name = match HeaderName::from_bytes(name.as_bytes()) {
            Ok(name) => name,
            Err(_) => {
                self.fail(format!("'{name}' is not a valid header name"));
                return self;
            }
        };
        match HeaderValue::from_str(value) {
            Ok(mut value) => {
                value.set_sensitive(sensitive);
                self.headers.insert(name, value);
            }
            // Never the value: it may be a credential.
            Err(_) => self.fail(format!(
                "the value for header '{name}' has characters a header cannot carry"
            )),
        }
        self
    }

    fn fail(&mut self, problem: String) {
        self.problem.get_or_insert(problem);
    }
}

/// `url`'s path with its first `kept + 1` segments as they are and the others as `{}`.
pub(crate) fn route_template(url: &Url, kept: usize) -> String {
    let mut template = String::new();
    for (i, segment) in url.path_segments().into_iter().flatten().enumerate() {
        template.push('/');
        template.push_str(if i <= kept { segment } else { "{}" });
    }
    if template.is_empty() {
        template.push('/');
    }
    template
}

/// Method and path only: the query may hold a customer's email or phone, the headers keys.
impl std::fmt::Debug for VendorRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorRequest")
            .field("method", &self.method)
            .field("path", &self.url.path())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
