//! Pure domain rules, compiled for both the browser and the server and unit-tested once.

pub mod blue_green;
pub mod events;
pub mod ids;
pub mod lifecycle;
pub mod maintenance;
pub mod model;
pub mod outbound_url;
pub mod parameters;
pub mod password_policy;
pub mod permissions;
pub mod rollout;
pub mod rollout_plan;
pub mod rollout_record;
pub mod search;
pub mod second_factor;
pub mod semver;
pub mod settlement;
pub mod stacks;
pub mod time;
pub mod validation;
pub mod version_range;
pub mod views;
