//! Seeds for the fuzz targets, in each target's input layout: one valid
//! record of every event type (single-object and Confluent datums), its
//! JSON line, and the example configuration.
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --bin write_seeds -- fuzz/corpus

use std::path::{Path, PathBuf};

use icsflow_avro::{encode_json, encode_single_object, SchemaCatalogue};
use icsflow_core::{one_event_of_each_type, Feed};

fn write(folder: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(folder).expect("corpus folder");
    std::fs::write(folder.join(name), bytes).expect("seed written");
}

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".to_owned()));
    let catalogue = SchemaCatalogue::embedded();
    for (index, event) in one_event_of_each_type().iter().enumerate() {
        let feed = Feed::ALL.iter().position(|feed| *feed == event.feed()).expect("feed") as u8;
        let record = encode_single_object(&catalogue, event);
        // The targets add the 10-byte single-object header, or the 5-byte
        // Confluent one, themselves; the first input byte picks the feed.
        let mut datum = vec![feed];
        datum.extend_from_slice(&record[10..]);
        write(&root.join("single_object"), &format!("event-{index}"), &datum);
        write(&root.join("confluent"), &format!("event-{index}"), &datum);
        // registry_schema: the feed's current schema as the registry's
        // answer, then the datum.
        let schema = catalogue.current(event.feed()).text.as_bytes();
        let mut registered = (schema.len() as u16).to_le_bytes().to_vec();
        registered.extend_from_slice(schema);
        registered.extend_from_slice(&record[10..]);
        write(&root.join("registry_schema"), &format!("event-{index}"), &registered);
        let mut line = vec![feed];
        line.extend_from_slice(encode_json(event).as_bytes());
        write(&root.join("json_publish"), &format!("event-{index}"), &line);
    }
    let example = include_str!("../../deploy/config/icsflow.example.toml");
    write(&root.join("config"), "example", example.as_bytes());
    println!("seeds written under {}", root.display());
}
