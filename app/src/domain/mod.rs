//! Pure domain rules, compiled for both the browser and the server and unit-tested once.

pub mod ids;
pub mod lifecycle;
pub mod model;
pub mod parameters;
pub mod semver;
pub mod time;
