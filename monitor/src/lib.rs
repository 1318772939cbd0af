//! What tarsstat and tarsproperty share: 5-minute windows and their upstream labels
//! ([`clock`]), the hourly tables of each database ([`tables`]) and the append-only spool
//! that keeps batches while MySQL is unreachable ([`spool`]).

pub mod clock;
pub mod spool;
pub mod tables;
