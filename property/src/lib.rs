//! tarsproperty: custom metrics (`tars.tarsproperty.PropertyObj`, 18493).
//!
//! Not built yet: its interface (`tars::PropertyF`) is generated in `tars-protocol`.
