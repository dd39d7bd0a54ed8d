//! The authoring kit for plugin writers: `scaffold` (`plugins new`), `check` (the
//! `plugins check` conformance suite) and `scenario` (`plugins test`, the author's own
//! steps against a real engine).

pub mod check;
pub mod scenario;
pub mod schema;
pub mod scaffold;
