//! One page per file.

pub mod account;
pub mod approvals;
pub mod audit;
pub mod catalog;
pub mod customer;
pub mod dashboard;
pub mod deploy;
pub mod deployment;
pub mod not_found;
pub mod notifications;
pub mod sign_in;
pub mod status;
pub mod users;
