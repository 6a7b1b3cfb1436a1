//! The library side of the icsflow command: the configuration loader and
//! the reference-data loader, shared by the binary and the fuzz targets
//! (`fuzz/`). Everything else lives in the binary.

pub mod reference;
pub mod settings;
