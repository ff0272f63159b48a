//! Didban alert engine: rule evaluation and notifications (to be built, see issue 5).
