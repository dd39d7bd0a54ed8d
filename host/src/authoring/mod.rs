//! The authoring kit for plugin writers: `scaffold` (`plugins new`) and `check` (the
//! `plugins check` conformance suite).

pub mod check;
pub mod schema;
pub mod scaffold;
