//! The lifecycle engine (PRODUCT.md §4): operations stored before any AWS call, driven by
//! workers holding leases, against customers' accounts through the [`Deployer`] trait.
//!
//! [`Deployer`]: deployer::Deployer

pub mod breaker;
pub mod cloudformation;
pub mod connection;
pub mod crash;
pub mod deployer;
pub mod engine;
pub mod notifier;
pub mod outbox;
pub mod reconciler;
pub mod secrets;
pub mod stack_events;
