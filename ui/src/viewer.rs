//! The Leptos side of [`didban_auth::Viewer`]: the hidden CSRF field every form that changes
//! something includes. Who the viewer is and what they may do live in `didban_auth`.

use didban_auth::Viewer;
use leptos::prelude::*;

/// Renders the viewer's CSRF token as a form field.
pub trait CsrfField {
    /// The hidden `<input name="_csrf">` every state-changing form includes (owned: it
    /// borrows nothing from the viewer).
    fn csrf_field(&self) -> AnyView;
}

impl CsrfField for Viewer {
    fn csrf_field(&self) -> AnyView {
        view! { <input type="hidden" name=Viewer::CSRF_FIELD value=self.csrf.clone()/> }.into_any()
    }
}
