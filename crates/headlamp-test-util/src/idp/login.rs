//! The scripted, browser-less login: follow redirects with a cookie jar,
//! post the IdP's real login form for a named user, allow consent, and stop
//! when the IdP redirects to the relying party's redirect URI.
//!
//! The pages are the test IdP's own (tests/idp/server.mjs), which mark their
//! forms with stable ids (`login-form`, `consent-form`, `abort-form`); the
//! forms are posted to the `action` the page names, with the page's hidden
//! inputs, as a browser would.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{Method, Request};
use http_body_util::Full;
use url::Url;

use super::cookie_jar::CookieJar;
use super::http::{HttpClient, HttpResponse, strip_query};
use crate::TestBedError;

/// Redirects and form posts one login may take before it is declared a
/// loop (a login is about eight).
const MAX_STEPS: usize = 30;

/// What to do on the IdP's pages.
#[derive(Debug, Clone)]
enum Intent {
    /// Sign in with these credentials and allow consent.
    Login { username: String, password: String },
    /// Press "Cancel" on the login page (or "Deny" on the consent page): the
    /// IdP answers the relying party with `error=access_denied`.
    Abort,
}

/// A browser-like HTTP session: one cookie jar shared by every request, so
/// an e2e test can start at `headlamp-server`'s `/oidc`, log in at the IdP,
/// and bring the callback's state cookie back to `headlamp-server`.
#[derive(Debug, Clone)]
pub struct LoginSession {
    client: HttpClient,
    jar: CookieJar,
}

impl LoginSession {
    /// A session with an empty jar, speaking plain HTTP.
    pub fn new() -> Result<Self, TestBedError> {
        Ok(Self::with_client(HttpClient::new()?))
    }

    /// A session over `client` (e.g. one trusting a test CA).
    pub fn with_client(client: HttpClient) -> Self {
        Self {
            client,
            jar: CookieJar::new(),
        }
    }

    /// The cookies received so far.
    pub fn jar(&self) -> &CookieJar {
        &self.jar
    }

    /// The cookies, for a test that plants or removes one.
    pub fn jar_mut(&mut self) -> &mut CookieJar {
        &mut self.jar
    }

    /// Starts at `start_url` (an IdP authorization URL, or a relying party
    /// URL that redirects to one), logs in as `username`, allows consent, and
    /// returns the first redirect target that starts with `stop_at` (the
    /// redirect URI) without requesting it.
    ///
    /// A wrong password yields [`TestBedError::LoginRejected`]. When the IdP
    /// already has a session for this jar, no login form appears and the
    /// flow goes straight to consent or to the redirect URI.
    pub async fn login(
        &mut self,
        start_url: &str,
        stop_at: &str,
        username: &str,
        password: &str,
    ) -> Result<Url, TestBedError> {
        let intent = Intent::Login {
            username: username.to_owned(),
            password: password.to_owned(),
        };
        self.drive(start_url, stop_at, &intent).await
    }

    /// Like [`LoginSession::login`] but presses Cancel/Deny at the IdP; the
    /// returned URL carries `error=access_denied`.
    pub async fn abort(&mut self, start_url: &str, stop_at: &str) -> Result<Url, TestBedError> {
        self.drive(start_url, stop_at, &Intent::Abort).await
    }

    /// Sends a request with the jar's cookies and stores the response's
    /// cookies. Redirects are not followed.
    pub async fn request(
        &mut self,
        method: Method,
        url: &Url,
        form: Option<&[(String, String)]>,
    ) -> Result<HttpResponse, TestBedError> {
        let mut builder = Request::builder().method(method).uri(url.as_str());
        if let Some(cookies) = self.jar.header_for(url) {
            builder = builder.header(COOKIE, cookies);
        }
        let body = match form {
            Some(fields) => {
                builder = builder.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
                let encoded = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(fields)
                    .finish();
                Full::new(Bytes::from(encoded))
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder.body(body).map_err(|e| {
            TestBedError::InvalidOption(format!(
                "cannot build a request to {}: {e}",
                strip_query(url.as_str())
            ))
        })?;
        let response = self.client.send(request, "scripted login").await?;
        for value in response.headers.get_all(SET_COOKIE) {
            if let Ok(value) = value.to_str() {
                self.jar.store(url, value);
            }
        }
        Ok(response)
    }

    /// `GET url` with the jar, not following redirects.
    pub async fn get(&mut self, url: &Url) -> Result<HttpResponse, TestBedError> {
        self.request(Method::GET, url, None).await
    }

    async fn drive(
        &mut self,
        start_url: &str,
        stop_at: &str,
        intent: &Intent,
    ) -> Result<Url, TestBedError> {
        let mut url = parse_url(start_url, "the login start URL")?;
        let mut form: Option<Vec<(String, String)>> = None;
        let mut login_attempted = false;

        for _ in 0..MAX_STEPS {
            let method = if form.is_some() {
                Method::POST
            } else {
                Method::GET
            };
            let response = self.request(method, &url, form.as_deref()).await?;
            form = None;

            if response.status.is_redirection() {
                let location = response
                    .headers
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        unexpected(&url, &response, "a redirect without a Location header")
                    })?;
                let next = url.join(location).map_err(|e| {
                    TestBedError::InvalidOption(format!(
                        "redirect from {} to an unparsable Location ({e})",
                        strip_query(url.as_str())
                    ))
                })?;
                if next.as_str().starts_with(stop_at) {
                    return Ok(next);
                }
                url = next;
                continue;
            }
            if !response.status.is_success() {
                return Err(unexpected(&url, &response, "an error page"));
            }

            let page = response.text();
            let (form_id, fields) = match intent {
                Intent::Abort if find_form(&page, "abort-form").is_some() => {
                    ("abort-form", Vec::new())
                }
                Intent::Abort => {
                    return Err(unexpected(
                        &url,
                        &response,
                        "a page without a Cancel/Deny form",
                    ));
                }
                Intent::Login { username, password } => {
                    if find_form(&page, "login-form").is_some() {
                        if login_attempted {
                            let message = element_text(&page, "login-error")
                                .unwrap_or_else(|| "the login page came back".to_owned());
                            return Err(TestBedError::LoginRejected {
                                username: username.clone(),
                                message,
                            });
                        }
                        login_attempted = true;
                        (
                            "login-form",
                            vec![
                                ("login".to_owned(), username.clone()),
                                ("password".to_owned(), password.clone()),
                            ],
                        )
                    } else if find_form(&page, "consent-form").is_some() {
                        ("consent-form", Vec::new())
                    } else {
                        return Err(unexpected(
                            &url,
                            &response,
                            "a page with neither a login nor a consent form",
                        ));
                    }
                }
            };
            let Some(tag) = find_form(&page, form_id) else {
                return Err(unexpected(
                    &url,
                    &response,
                    "a page without the expected form",
                ));
            };
            let action = attribute(tag.open_tag, "action").unwrap_or_default();
            url = url.join(&html_unescape(&action)).map_err(|e| {
                TestBedError::InvalidOption(format!(
                    "form {form_id} has an unparsable action ({e})"
                ))
            })?;
            let mut all = hidden_inputs(tag.inner);
            all.extend(fields);
            form = Some(all);
        }
        Err(TestBedError::InvalidOption(format!(
            "the login did not reach {stop_at} within {MAX_STEPS} redirects and form posts"
        )))
    }
}

/// Logs in at the IdP from `authorization_url` as `username` with a fresh
/// cookie jar and returns the redirect URI the IdP sent the browser to
/// (carrying `code`, `state`, `iss`), without requesting it.
///
/// The stop point is the `redirect_uri` parameter of `authorization_url`.
pub async fn scripted_login(
    authorization_url: &str,
    username: &str,
    password: &str,
) -> Result<Url, TestBedError> {
    let stop_at = redirect_uri_of(authorization_url)?;
    LoginSession::new()?
        .login(authorization_url, &stop_at, username, password)
        .await
}

/// Like [`scripted_login`] but cancels at the IdP; the returned redirect URI
/// carries `error=access_denied`.
pub async fn scripted_abort(authorization_url: &str) -> Result<Url, TestBedError> {
    let stop_at = redirect_uri_of(authorization_url)?;
    LoginSession::new()?
        .abort(authorization_url, &stop_at)
        .await
}

fn redirect_uri_of(authorization_url: &str) -> Result<String, TestBedError> {
    let url = parse_url(authorization_url, "the authorization URL")?;
    url.query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| {
            TestBedError::InvalidOption(format!(
                "the authorization URL {} has no redirect_uri parameter; use LoginSession::login with an explicit stop URL",
                strip_query(authorization_url)
            ))
        })
}

fn parse_url(url: &str, what: &str) -> Result<Url, TestBedError> {
    Url::parse(url).map_err(|e| {
        TestBedError::InvalidOption(format!("{what} {} is not a URL: {e}", strip_query(url)))
    })
}

fn unexpected(url: &Url, response: &HttpResponse, what: &str) -> TestBedError {
    TestBedError::UnexpectedResponse {
        context: format!(
            "scripted login got {what} from {}",
            strip_query(url.as_str())
        ),
        status: response.status.as_u16(),
        body: response.excerpt(),
    }
}

/// One `<form>` element of a page.
#[derive(Debug)]
struct FormTag<'a> {
    open_tag: &'a str,
    inner: &'a str,
}

/// Finds `<form ... id="ID" ...>...</form>`. The IdP's pages are ours and
/// well-formed, so a scan for the tag is enough; no HTML parser needed.
fn find_form<'a>(page: &'a str, id: &str) -> Option<FormTag<'a>> {
    let mut rest = page;
    while let Some(start) = rest.find("<form") {
        let after = &rest[start..];
        let open_end = after.find('>')?;
        let open_tag = &after[..open_end];
        let body = &after[open_end + 1..];
        let close = body.find("</form>").unwrap_or(body.len());
        if attribute(open_tag, "id").as_deref() == Some(id) {
            return Some(FormTag {
                open_tag,
                inner: &body[..close],
            });
        }
        rest = &body[close..];
    }
    None
}

/// The value of `name="..."` in one tag (double-quoted, as our pages write).
fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')?;
    Some(html_unescape(&tag[start..start + end]))
}

fn hidden_inputs(form_inner: &str) -> Vec<(String, String)> {
    form_inner
        .split("<input")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
            (attribute(tag, "type").as_deref() == Some("hidden"))
                .then(|| {
                    Some((
                        attribute(tag, "name")?,
                        attribute(tag, "value").unwrap_or_default(),
                    ))
                })
                .flatten()
        })
        .collect()
}

/// The text of the element with `id="ID"` (up to its first `<`).
fn element_text(page: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\"");
    let at = page.find(&marker)?;
    let after = &page[at..];
    let text_start = after.find('>')? + 1;
    let text = &after[text_start..];
    Some(html_unescape(
        text[..text.find('<').unwrap_or(text.len())].trim(),
    ))
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<main><p class="error" id="login-error" role="alert">Invalid username &amp; password.</p>
<form id="login-form" method="post" action="/interaction/u1/login" autocomplete="off">
<input type="hidden" name="csrf" value="t&amp;k"><input id="login" name="login" type="text">
</form>
<form id="abort-form" method="post" action="/interaction/u1/abort"><button>Cancel</button></form></main>"#;

    #[test]
    fn forms_are_found_by_id_with_their_action_and_hidden_inputs() {
        let login = find_form(PAGE, "login-form").unwrap();
        assert_eq!(
            attribute(login.open_tag, "action").as_deref(),
            Some("/interaction/u1/login")
        );
        assert_eq!(
            hidden_inputs(login.inner),
            vec![("csrf".to_owned(), "t&k".to_owned())]
        );
        let abort = find_form(PAGE, "abort-form").unwrap();
        assert_eq!(
            attribute(abort.open_tag, "action").as_deref(),
            Some("/interaction/u1/abort")
        );
        assert!(find_form(PAGE, "consent-form").is_none());
    }

    #[test]
    fn the_login_error_text_is_read_for_the_error_message() {
        assert_eq!(
            element_text(PAGE, "login-error").as_deref(),
            Some("Invalid username & password.")
        );
    }

    #[test]
    fn the_stop_point_is_the_redirect_uri_parameter() {
        let url = "http://127.0.0.1:1/auth?client_id=c&redirect_uri=http%3A%2F%2F127.0.0.1%3A2%2Fcb&state=s";
        assert_eq!(redirect_uri_of(url).unwrap(), "http://127.0.0.1:2/cb");
        assert!(matches!(
            redirect_uri_of("http://127.0.0.1:1/auth?client_id=c"),
            Err(TestBedError::InvalidOption(_))
        ));
    }
}
