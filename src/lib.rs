//! `entitlements`: who may open a support request for which customer account.
//!
//! Layers, one direction: `grpc` -> `service` -> `domain`, `service` -> `store` -> `domain`.
//! `server` wires them to tonic; `main` parses the command line.

pub mod auth;
pub mod clock;
pub mod config;
pub mod ctl;
pub mod domain;
pub mod grpc;
pub mod http;
pub mod mail;
pub mod private_fs;
pub mod proto;
pub mod server;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod transport;

pub use server::{Listeners, run};
