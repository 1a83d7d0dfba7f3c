//! End-to-end and store tests: every test runs on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod at_rest;
mod attacks;
mod authzen;
mod cache;
mod concurrency;
mod contracts;
mod decider;
mod domains;
mod faults;
mod feed;
mod flow;
mod grants;
mod idempotency;
mod input;
mod lifecycle;
mod list_entitlements;
mod members;
mod model;
mod next_steps;
mod ops;
mod private_files;
mod reasons;
mod requests;
mod restart;
mod rules;
mod stc;
mod store_keys;
mod store_suite;
mod telemetry;
mod text;
mod tls;
mod undeliverable;
mod verification;
