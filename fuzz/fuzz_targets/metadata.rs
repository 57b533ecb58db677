//! metadata.yaml parsing, and the baseImage edit, never panic on any input.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let path = Path::new("fuzz/metadata.yaml");
        let _ = connector_build::model::metadata::parse(path, text);
        let reference = "127.0.0.1:5000/a/b:1@sha256:44b7f161ed03f85e96d423b9916cdc8cb0509fb970fd643bdbc9896d49e1cad0";
        if let Ok((edited, _)) = connector_build::edit::set_base_image(path, text, reference, true) {
            // An edit must leave a document that still parses.
            assert!(connector_build::model::yaml::Document::parse(&edited).is_ok());
        }
    }
});
