//! Inventories of small layer tars made here, and the CycloneDX document of one.

use super::*;
use crate::model::image_ref::ImageRef;

/// One layer: (path, contents) files; a path ending in `/` is a folder, `-> target` a hard link.
fn layer(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        if let Some(target) = contents.strip_prefix("-> ") {
            header.set_entry_type(tar::EntryType::Link);
            header.set_size(0);
            builder.append_link(&mut header, path, target).unwrap();
        } else if path.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            builder
                .append_data(&mut header, path, std::io::empty())
                .unwrap();
        } else {
            header.set_size(contents.len() as u64);
            builder
                .append_data(&mut header, path, contents.as_bytes())
                .unwrap();
        }
    }
    builder.into_inner().unwrap()
}

fn inventory(layers: &[Vec<u8>]) -> Inventory {
    Inventory::from_layers(layers.iter().map(|l| l.as_slice())).unwrap()
}

fn metadata(name: &str, version: &str, extra: &str) -> String {
    format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{extra}\nLong description.\n")
}

const SITE: &str = "usr/local/lib/python3.11/site-packages";

fn names(inv: &Inventory) -> Vec<String> {
    inv.python
        .iter()
        .map(|d| format!("{}=={} {}", d.name, d.version, d.path))
        .collect()
}

#[test]
fn later_layers_delete_replace_and_hide() {
    let m = |n: &str, v: &str| metadata(n, v, "");
    let base = layer(&[
        ("usr/", ""),
        (
            &format!("{SITE}/six-1.16.0.dist-info/METADATA"),
            &m("six", "1.16.0"),
        ),
        (
            &format!("{SITE}/idna-3.7.dist-info/METADATA"),
            &m("idna", "3.7"),
        ),
        (
            &format!("{SITE}/gone-1.0.dist-info/METADATA"),
            &m("gone", "1.0"),
        ),
        ("opt/venv/lib/old-1.0.dist-info/METADATA", &m("old", "1.0")),
        ("./srv/a-1.0.dist-info/METADATA", &m("a", "1.0")),
    ]);
    let upper = layer(&[
        // Upgrade: the old dist-info is whited out, the new one added.
        (&format!("{SITE}/.wh.six-1.16.0.dist-info"), ""),
        (
            &format!("{SITE}/six-1.17.0.dist-info/METADATA"),
            &m("six", "1.17.0"),
        ),
        // A file whiteout inside a folder that stays.
        (&format!("{SITE}/gone-1.0.dist-info/.wh.METADATA"), ""),
        // An opaque folder keeps only what this layer puts in it, listed before or after.
        ("opt/venv/lib/new-2.0.dist-info/METADATA", &m("new", "2.0")),
        ("opt/venv/lib/.wh..wh..opq", ""),
        // A file where a folder was hides the folder.
        ("srv", "not a folder any more"),
    ]);
    let inv = inventory(&[base, upper]);
    assert_eq!(
        names(&inv),
        [
            "new==2.0 /opt/venv/lib/new-2.0.dist-info",
            "idna==3.7 /usr/local/lib/python3.11/site-packages/idna-3.7.dist-info",
            "six==1.17.0 /usr/local/lib/python3.11/site-packages/six-1.17.0.dist-info",
        ]
    );
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
}

#[test]
fn a_deleted_file_can_come_back_and_hard_links_are_followed() {
    let path = format!("{SITE}/six-1.17.0.dist-info/METADATA");
    let first = layer(&[(&path, &metadata("six", "1.17.0", ""))]);
    let second = layer(&[(&format!("{SITE}/.wh.six-1.17.0.dist-info"), "")]);
    let link = format!("-> {path}");
    let third = layer(&[
        (&path, &metadata("six", "1.17.0", "")),
        ("opt/venv/six-1.17.0.dist-info/METADATA", &link),
    ]);
    assert!(inventory(&[first.clone(), second.clone()])
        .python
        .is_empty());
    let inv = inventory(&[first, second, third]);
    assert_eq!(
        names(&inv),
        [
            "six==1.17.0 /opt/venv/six-1.17.0.dist-info",
            "six==1.17.0 /usr/local/lib/python3.11/site-packages/six-1.17.0.dist-info",
        ]
    );
}

const STATUS: &str = "\
Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u10
Description: GNU C Library: Shared libraries
 Contains the standard libraries.
 .
 More text.

Package: removed-pkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: tzdata
Status: hold ok installed
Architecture: all
Version: 2025b-0+deb12u1

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.17-1~deb12u2)
Version: 3.0.17-1~deb12u2
Conffiles:
 /etc/ssl/openssl.cnf 1234
";

#[test]
fn installed_debian_packages_only() {
    let inv = inventory(&[layer(&[
        ("var/lib/dpkg/status", STATUS),
        (
            "etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        ),
    ])]);
    let listed: Vec<String> = inv
        .debian
        .iter()
        .map(|p| format!("{} {} {} {:?}", p.name, p.version, p.architecture, p.source))
        .collect();
    assert_eq!(
        listed,
        [
            "libc6 2.36-9+deb12u10 amd64 Some(\"glibc\")",
            "libssl3 3.0.17-1~deb12u2 amd64 Some(\"openssl\")",
            "tzdata 2025b-0+deb12u1 all None",
        ]
    );
    assert_eq!(
        inv.os,
        Some(OsRelease {
            id: "debian".into(),
            version_id: Some("12".into())
        })
    );
}

#[test]
fn a_later_dpkg_status_replaces_the_earlier_one() {
    let one = "Package: a\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n";
    let two = "Package: b\nStatus: install ok installed\nArchitecture: all\nVersion: 2\n";
    let inv = inventory(&[
        layer(&[("var/lib/dpkg/status", one)]),
        layer(&[("var/lib/dpkg/status", two)]),
    ]);
    assert_eq!(inv.debian.len(), 1);
    assert_eq!(inv.debian[0].name, "b");
}

#[test]
fn licenses_from_metadata() {
    let dir = |n: &str| format!("{SITE}/{n}.dist-info/METADATA");
    let inv = inventory(&[layer(&[
        (
            &dir("a-1"),
            &metadata("a", "1", "License-Expression: MIT OR Apache-2.0\nLicense: ignored\nClassifier: License :: OSI Approved :: MIT License"),
        ),
        (
            &dir("b-1"),
            &metadata("B_Pkg", "1", "License: BSD\nClassifier: Programming Language :: Python\nClassifier: License :: OSI Approved :: BSD License"),
        ),
        (&dir("c-1"), &metadata("c", "1", "License: UNKNOWN")),
        (&dir("broken-1"), "Metadata-Version: 2.1\nSummary: no name\n"),
    ])]);
    let by_name = |n: &str| {
        inv.python
            .iter()
            .find(|d| d.name == n)
            .unwrap()
            .license
            .clone()
    };
    assert_eq!(
        by_name("a").expression.as_deref(),
        Some("MIT OR Apache-2.0")
    );
    assert_eq!(by_name("a").classifiers, Vec::<String>::new());
    assert_eq!(by_name("B_Pkg").text.as_deref(), Some("BSD"));
    assert_eq!(
        by_name("B_Pkg").classifiers,
        ["OSI Approved :: BSD License"]
    );
    assert_eq!(by_name("c"), License::default());
    assert_eq!(inv.python.len(), 3);
    assert_eq!(inv.warnings.len(), 1, "{:?}", inv.warnings);
    assert!(
        inv.warnings[0].contains("broken-1.dist-info/METADATA: no Name field"),
        "{:?}",
        inv.warnings
    );
}

#[test]
fn a_stream_that_is_not_a_tar_is_an_error_naming_the_layer() {
    let good = layer(&[("etc/hostname", "x")]);
    let bad = vec![b'x'; 1024];
    let err = Inventory::from_layers([good.as_slice(), bad.as_slice()]).unwrap_err();
    assert!(err.to_string().contains("layer 1"), "{err}");
}

fn subject() -> Subject {
    Subject {
        name: "source-example".into(),
        version: "1.2.3".into(),
        image: ImageRef::parse("127.0.0.1:5000/airbyte/source-example").unwrap(),
        base_image: ImageRef::parse(
            "127.0.0.1:5000/airbyte/python-connector-base:1.0.0@sha256:c69e03da9e981ed4af7b0e6932177aeebdb2f371e7f770201671580ff78257a2",
        )
        .unwrap(),
        timestamp: 1_764_633_600,
    }
}

fn small_inventory() -> Inventory {
    let dir = |n: &str| format!("{SITE}/{n}.dist-info/METADATA");
    inventory(&[
        layer(&[
            ("var/lib/dpkg/status", STATUS),
            ("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"),
        ]),
        layer(&[
            (
                &dir("six-1.17.0"),
                &metadata("six", "1.17.0", "License: MIT"),
            ),
            (
                &dir("Ruamel.Yaml-0.18.0"),
                &metadata("ruamel.yaml", "0.18.0", "License-Expression: MIT"),
            ),
            (
                "opt/venv/lib/six-1.16.0.dist-info/METADATA",
                &metadata(
                    "six",
                    "1.16.0",
                    "Classifier: License :: OSI Approved :: MIT License",
                ),
            ),
        ]),
    ])
}

#[test]
fn cyclonedx_document() {
    let hashes = hashes_from_requirements("six==1.17.0 \\\n    --hash=sha256:ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81\n");
    let bom = cyclonedx(&subject(), &small_inventory(), &hashes);
    let text = String::from_utf8(to_bytes(&bom)).unwrap();
    insta::with_settings!({filters => vec![(env!("CARGO_PKG_VERSION"), "[tool version]")]}, {
        insta::assert_snapshot!(text);
    });
    // Only the locked version gets the lock's hashes.
    let six: Vec<&serde_json::Value> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "six")
        .collect();
    assert_eq!(six.len(), 2);
    assert!(six
        .iter()
        .any(|c| c["version"] == "1.17.0" && c["hashes"].is_array()));
    assert!(six
        .iter()
        .any(|c| c["version"] == "1.16.0" && c.get("hashes").is_none()));
}

#[test]
fn same_inputs_same_bytes_and_the_serial_follows_the_content() {
    let hashes = LockHashes::new();
    let a = to_bytes(&cyclonedx(&subject(), &small_inventory(), &hashes));
    let b = to_bytes(&cyclonedx(&subject(), &small_inventory(), &hashes));
    assert_eq!(a, b);
    let mut later = subject();
    later.timestamp += 1;
    let c = cyclonedx(&later, &small_inventory(), &hashes);
    let serial = |bytes: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(bytes).unwrap()["serialNumber"].clone()
    };
    assert_ne!(serial(&a), c["serialNumber"]);
}
