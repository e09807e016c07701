//! Loading scenario files (the eval crate's loader, shared with the Python bindings):
//! reading the file and its traces, the scenario bounds, errors prefixed with the file.

pub use splitwise_eval::scenario_file::*;
