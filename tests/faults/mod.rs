//! Faults: the database stopping under load, the process killed mid-write, a data directory
//! that cannot be written. What is measured here is reported in docs/reliability.md.

mod crash;
mod pg_outage;
mod sqlite_disk;
