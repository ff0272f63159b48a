//! What a route needs from its caller ([`Need`]), and which methods count as changes
//! ([`is_unsafe`]).

use axum::http::Method;

use crate::Role;

/// The least credential a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nobody needs to sign in (health, the sign-in page, static assets).
    Open,
    /// A token with the ingest scope.
    Ingest,
    /// At least this role, whatever the method.
    Role(Role),
    /// `read` for GET, HEAD and OPTIONS; `change` for every method that may change something.
    ByMethod {
        /// What reading needs.
        read: Role,
        /// What changing needs.
        change: Role,
    },
}

impl Need {
    /// Viewers read, editors change: what pages and most APIs need.
    pub const VIEW_EDIT: Need = Need::ByMethod {
        read: Role::Viewer,
        change: Role::Editor,
    };

    /// What a request with `method` needs: [`Need::ByMethod`] resolved to a [`Need::Role`].
    pub fn for_method(self, method: &Method) -> Need {
        match self {
            Need::ByMethod { read, change } => Need::Role(if is_unsafe(method) { change } else { read }),
            other => other,
        }
    }
}

/// Whether `method` may change something (and so needs CSRF protection).
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_method_resolves_to_a_role() {
        assert_eq!(Need::VIEW_EDIT.for_method(&Method::GET), Need::Role(Role::Viewer));
        assert_eq!(
            Need::VIEW_EDIT.for_method(&Method::HEAD),
            Need::Role(Role::Viewer)
        );
        assert_eq!(
            Need::VIEW_EDIT.for_method(&Method::POST),
            Need::Role(Role::Editor)
        );
        assert_eq!(
            Need::VIEW_EDIT.for_method(&Method::DELETE),
            Need::Role(Role::Editor)
        );
        assert_eq!(Need::Open.for_method(&Method::POST), Need::Open);
        assert_eq!(Need::Ingest.for_method(&Method::POST), Need::Ingest);
    }
}
