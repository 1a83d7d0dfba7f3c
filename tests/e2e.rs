//! End-to-end and store tests: every test runs on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod attacks;
mod cache;
mod concurrency;
mod feed;
mod flow;
mod input;
mod members;
mod model;
mod ops;
mod reasons;
mod requests;
mod restart;
mod rules;
mod store_keys;
mod store_suite;
mod telemetry;
mod tls;
mod verification;
