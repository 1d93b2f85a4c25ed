//! The server functions the pages call: their signatures compile for both sides, their bodies run
//! on the server; [`AppError`] is what they answer with. (The REST API is `ssr::http::api`.)
//!
//! Server functions are thin: they fetch the state from context, call one service and map its
//! error. Reads are `GET` under `/sfn/` so the service worker can cache them for offline use.

pub mod account;
pub mod approvals;
pub mod audit;
pub mod catalog;
pub mod customers;
pub mod deploy;
pub mod deployments;
mod error;
pub mod fleet;
pub mod notifications;
pub mod session;
pub mod status;
pub mod users;

pub use error::AppError;
