//! Rule evaluation: the alert state machine ([`state`]), one group's evaluation
//! ([`group`]), the loops and reloads ([`manager`]) and the storage rules use ([`storage`]).

pub mod group;
pub mod manager;
pub mod state;
pub mod storage;

pub use group::{EvalContext, GroupRuntime, Health, RuleRuntime};
pub use manager::{RuleManager, SharedGroup};
pub use state::{ActiveAlert, AlertState};
pub use storage::{LogSource, MemLogRecord, MemLogSource, MemRuleStorage, RuleStorage};

#[cfg(test)]
mod tests;
