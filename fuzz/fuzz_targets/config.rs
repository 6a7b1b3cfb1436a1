//! Configuration loading: any text as the TOML file, and the same text cut
//! into ICSFLOW__ variables. Must never panic; a refusal lists at least one
//! problem.
#![no_main]

use std::collections::BTreeMap;

use icsflow::settings::load;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut environment = BTreeMap::new();
    for line in text.lines().take(8) {
        if let Some((key, value)) = line.split_once('=') {
            environment.insert(format!("ICSFLOW__{}", key.trim().to_uppercase()), value.to_owned());
        }
    }
    match load(Some(("fuzz.toml", &text)), &BTreeMap::new()) {
        Ok(_) => {}
        Err(problems) => assert!(!problems.is_empty()),
    }
    if let Err(problems) = load(None, &environment) {
        assert!(!problems.is_empty());
    }
});
