//! tarsconfig (`tars.tarsconfig.ConfigObj`, 18193): the config files of `db_tars` served
//! over `ConfigF`, with upstream's levels, references, set filters and concatenation
//! ([`files`]), its 429 limiter, pruned ([`limit`]), and a cache that sees a changed file
//! within a second ([`cache`]), so a load costs no query.
//!
//! Start reading at [`files`] (what each call reads and how the text is put together), then
//! [`servant`] (the generated servant over it) and [`service`] (the lifecycle).

pub mod cache;
pub mod files;
pub mod limit;
pub mod servant;
pub mod service;
pub mod sql;

pub use service::{ConfigService, CONFIG_OBJ};
