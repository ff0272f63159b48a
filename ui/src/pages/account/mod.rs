//! The pages about accounts: sign-in and sign-out ([`login`]), and the admin pages for users
//! and API tokens ([`admin`]). They run on the server's [`Auth`] rather than on
//! [`crate::UiContext`], and declare what they need where their routes are built.

mod admin;
mod login;

use std::sync::Arc;

use axum::Router;
use didban_auth::Auth;

/// `/login`, `/logout`, `/admin/users` and `/admin/tokens`, with `auth` as state.
pub fn router(auth: Arc<Auth>) -> Router {
    Router::new()
        .merge(login::routes())
        .merge(admin::routes())
        .with_state(auth)
}
