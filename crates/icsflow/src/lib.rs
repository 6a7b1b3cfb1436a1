//! The library side of the icsflow command: the configuration loader,
//! shared by the binary and the fuzz targets (`fuzz/`). Everything else
//! lives in the binary.

pub mod settings;
