//! What the operator's commands show: snapshots of a bus (`ls`, `monitor --once --json`),
//! records decoded through their schema (`inspect`), and the live terminal monitor.

pub mod inspect;
pub mod monitor;
pub mod snapshot;
