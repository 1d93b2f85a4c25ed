//! The services the REST API and the server functions share. Every call takes the [`Actor`]
//! it is made as and enforces the permission table itself, so no entry point can skip it.
//!
//! [`Actor`]: super::auth::Actor

pub mod audit_trail;
pub mod capabilities;
pub mod customers;
pub mod deployments;
pub mod fleet;
pub mod operations;
pub mod rollouts;
pub mod users;

/// List sizes: `limit` defaults to this and may not exceed [`MAX_LIMIT`].
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;
