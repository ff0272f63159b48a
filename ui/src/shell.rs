//! The page frame every page shares: document head, navigation, theme, and the one script.
//! Pages render their body with Leptos `view!` and hand it to [`render_page`], which returns
//! the complete HTML document.

use axum::response::Html;
use leptos::prelude::*;

use crate::assets::{CSS_PATH, JS_PATH};

/// The top-level sections, in navigation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Dashboards list and views.
    Dashboards,
    /// PromQL explorer.
    Explore,
    /// Log search.
    Logs,
    /// Trace search and waterfall.
    Traces,
    /// Services (RED from span metrics).
    Services,
    /// Serverless functions.
    Serverless,
    /// Alert rules, alerts, silences, notifications.
    Alerts,
    /// Pages outside the navigation (login, errors).
    None,
}

impl Section {
    const NAV: [(Section, &'static str, &'static str); 7] = [
        (Section::Dashboards, "/dashboards", "Dashboards"),
        (Section::Explore, "/explore", "Explore"),
        (Section::Logs, "/logs", "Logs"),
        (Section::Traces, "/traces", "Traces"),
        (Section::Services, "/services", "Services"),
        (Section::Serverless, "/serverless", "Serverless"),
        (Section::Alerts, "/alerts", "Alerts"),
    ];
}

/// Light or dark colours; `Auto` follows the browser's `prefers-color-scheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Theme {
    /// Follow the browser.
    #[default]
    Auto,
    /// Light background.
    Light,
    /// Dark background.
    Dark,
}

impl Theme {
    /// The theme named by a `theme` cookie or query value; anything else is `Auto`.
    pub fn parse(value: &str) -> Theme {
        match value {
            "light" => Theme::Light,
            "dark" => Theme::Dark,
            _ => Theme::Auto,
        }
    }

    fn attr(self) -> &'static str {
        match self {
            Theme::Auto => "auto",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }
}

/// What the frame needs besides the body.
#[derive(Debug, Clone)]
pub struct PageMeta {
    /// The `<title>`, before " · Didban".
    pub title: String,
    /// Which navigation entry is highlighted.
    pub section: Section,
    /// Colour theme.
    pub theme: Theme,
    /// The signed-in user's name, shown with a sign-out link; `None` when anonymous.
    pub user: Option<String>,
    /// Whether the viewer is a signed-in admin (the frame links the user and token pages).
    pub admin: bool,
}

impl PageMeta {
    /// A page in `section` titled `title` for `viewer` (their name shows in the frame).
    pub fn for_viewer(title: impl Into<String>, section: Section, viewer: &didban_auth::Viewer) -> PageMeta {
        let mut meta = PageMeta::new(title, section);
        meta.user = viewer.user.clone();
        meta.admin = viewer.user.is_some() && viewer.can(didban_auth::Role::Admin);
        meta
    }

    /// A page in `section` titled `title`, auto theme, anonymous.
    pub fn new(title: impl Into<String>, section: Section) -> PageMeta {
        PageMeta {
            title: title.into(),
            section,
            theme: Theme::Auto,
            user: None,
            admin: false,
        }
    }
}

/// Renders the complete document: `<head>` with the stylesheet and script, the navigation bar,
/// and `body` inside `<main>`. Text in `meta` is escaped by Leptos.
pub fn render_page<F, V>(meta: PageMeta, body: F) -> Html<String>
where
    F: FnOnce() -> V + 'static,
    V: IntoView + 'static,
{
    let owner = Owner::new();
    let html = owner.with(move || {
        let title = format!("{} · Didban", meta.title);
        let section = meta.section;
        let nav = Section::NAV
            .iter()
            .map(|(s, href, label)| {
                let current = if *s == section { Some("page") } else { None };
                view! { <a href=*href aria-current=current>{*label}</a> }
            })
            .collect_view();
        let admin = meta
            .admin
            .then(|| view! { <a href="/admin/users">"Users & tokens"</a> });
        let user = meta.user.clone().map(|name| {
            view! {
                {admin}
                <span class="user">{name}</span>
                <a href="/logout" class="signout">"Sign out"</a>
            }
        });
        view! {
            <html lang="en" data-theme=meta.theme.attr()>
                <head>
                    <meta charset="utf-8"/>
                    <meta name="viewport" content="width=device-width, initial-scale=1"/>
                    <title>{title}</title>
                    <link rel="stylesheet" href=CSS_PATH/>
                    <script src=JS_PATH defer></script>
                </head>
                <body>
                    <a class="skip" href="#main">"Skip to content"</a>
                    <header class="topbar">
                        <a class="brand" href="/">"Didban"</a>
                        <nav aria-label="Main">{nav}</nav>
                        <div class="account">
                            <button type="button" class="theme-toggle" hidden>"Theme: auto"</button>
                            {user}
                        </div>
                    </header>
                    <main id="main">{body()}</main>
                </body>
            </html>
        }
        .to_html()
    });
    Html(format!("<!DOCTYPE html>{html}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_escapes_title_and_marks_current_section() {
        let mut meta = PageMeta::new("<script>x</script>", Section::Logs);
        meta.theme = Theme::Dark;
        let Html(html) = render_page(meta, || view! { <p>"hello"</p> });
        assert!(html.starts_with("<!DOCTYPE html><html"));
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt; · Didban"), "{html}");
        assert!(!html.contains("<script>x</script>"));
        assert!(html.contains(r#"href="/logs" aria-current="page""#), "{html}");
        assert!(html.contains(r#"data-theme="dark""#));
        assert!(html.contains("<p>hello</p>"));
    }

    #[test]
    fn only_signed_in_admins_get_the_users_link() {
        use didban_auth::{Role, Viewer};
        let mut v = Viewer {
            user: Some("ana".into()),
            role: Role::Admin,
            csrf: String::new(),
        };
        let Html(html) = render_page(PageMeta::for_viewer("x", Section::None, &v), || "");
        assert!(html.contains(r#"href="/admin/users""#));
        v.role = Role::Editor;
        let Html(html) = render_page(PageMeta::for_viewer("x", Section::None, &v), || "");
        assert!(!html.contains("/admin/users"));
        let Html(html) = render_page(
            PageMeta::for_viewer("x", Section::None, &Viewer::anonymous_admin()),
            || "",
        );
        assert!(
            !html.contains("/admin/users"),
            "anonymous access has no accounts to manage"
        );
    }
}
