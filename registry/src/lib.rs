//! tarsregistry: `tars.tarsregistry.QueryObj` (17890) and `RegistryObj` (17891).
//!
//! Not built yet: the servant traits it implements are generated in `tars-protocol`
//! (`tars::QueryF`, `tars::Registry`). The service itself is tracked by the registry issue.
