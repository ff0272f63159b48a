//! What the UI's routes need, declared where `didban_ui` builds them: the credentials the
//! server's former central table named for these paths, checked against the real routers.
#![allow(clippy::unwrap_used)]

use axum::http::Method;
use axum::Router;
use didban_auth::testing::Probe;
use didban_auth::{Kind, Need, Role};

use crate::support::test_ui;

fn app(probe: &Probe, ctx: didban_ui::UiContext) -> Router {
    let router = didban_ui::router(ctx).merge(didban_ui::pages::account::router(probe.auth().clone()));
    probe.wrap(router)
}

#[tokio::test]
async fn pages_declare_viewer_to_read_editor_to_change_and_admin_for_admin_pages() {
    let ui = test_ui();
    let probe = Probe::new();
    let app = app(&probe, ui.ctx.clone());
    let need = |method: Method, path: &'static str| {
        let (probe, app) = (&probe, &app);
        async move { probe.need(app, method, path).await }
    };
    assert_eq!(need(Method::POST, "/login").await, Need::Open);
    assert_eq!(need(Method::GET, "/login").await, Need::Open);
    assert_eq!(need(Method::GET, didban_ui::assets::CSS_PATH).await, Need::Open);
    assert_eq!(need(Method::GET, didban_ui::assets::JS_PATH).await, Need::Open);
    assert_eq!(need(Method::GET, "/favicon.ico").await, Need::Open);
    assert_eq!(need(Method::GET, "/admin/users").await, Need::Role(Role::Admin));
    assert_eq!(need(Method::POST, "/admin/tokens").await, Need::Role(Role::Admin));
    assert_eq!(need(Method::GET, "/dashboards").await, Need::Role(Role::Viewer));
    assert_eq!(need(Method::GET, "/").await, Need::Role(Role::Viewer));
    assert_eq!(need(Method::GET, "/cardinality").await, Need::Role(Role::Viewer));
    assert_eq!(
        need(Method::POST, "/alerts/silences").await,
        Need::Role(Role::Editor)
    );
    assert_eq!(
        need(Method::POST, "/dashboards/new").await,
        Need::Role(Role::Editor)
    );
    assert_eq!(need(Method::POST, "/logout").await, Need::Role(Role::Viewer));
    assert_eq!(probe.kind(&app, "/alerts").await, Kind::Page);
    assert_eq!(probe.kind(&app, "/admin/users").await, Kind::Page);
}

#[tokio::test]
async fn without_the_outer_layer_the_routers_run_as_if_sign_in_were_off() {
    let ui = test_ui();
    let probe = Probe::new();
    let router =
        didban_ui::router(ui.ctx.clone()).merge(didban_ui::pages::account::router(probe.auth().clone()));
    let r = probe.send(&router, Method::GET, "/admin/users", None).await;
    assert_eq!(Probe::refused(&r), None);
    assert_eq!(r.status(), 200);
}
