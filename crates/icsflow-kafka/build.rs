//! On Windows, librdkafka's SASL/GSSAPI support (SSPI) needs the Windows
//! security library, which rdkafka-sys's CMake build does not name.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows") {
        println!("cargo:rustc-link-lib=secur32");
    }
}
