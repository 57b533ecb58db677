//! The registry client (`src/registry/`) against the set-up's real registry (127.0.0.1:5000);
//! what it wrote is read back with the registry's HTTP API and `skopeo`, clients no one here
//! wrote.

mod common;

use std::process::Command;

use connector_build::registry::{sha256_digest, BlobSource, Registry, Upload, OCI_MANIFEST};

const REGISTRY: &str = "127.0.0.1:5000";

#[tokio::test]
async fn blobs_manifests_tags_and_deletion_on_a_real_registry() {
    let n = common::nonce();
    let repo_a = format!("connector-build-tests/registry-a-{n}");
    let repo_b = format!("connector-build-tests/registry-b-{n}");
    let r = Registry::connect(REGISTRY, &[]).expect("client");
    r.ping()
        .await
        .expect("the set-up's registry answers (run scripts/setup.sh)");

    // A layer (from a file, so it streams) and a config.
    let dir = tempfile::tempdir().unwrap();
    let layer_path = dir.path().join("layer.tar.gz");
    let layer: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&layer_path, &layer).unwrap();
    let layer_digest = sha256_digest(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}},"config":{{"Labels":{{"nonce":"{n}"}}}}}}"#
    );
    let config_digest = sha256_digest(config.as_bytes());

    assert!(!r.blob_exists(&repo_a, &layer_digest).await.unwrap());
    let up = r
        .upload_blob(&repo_a, &layer_digest, BlobSource::File(&layer_path), None)
        .await
        .unwrap();
    assert_eq!(up, Upload::Uploaded(layer.len() as u64));
    assert_eq!(
        r.upload_blob(&repo_a, &layer_digest, BlobSource::File(&layer_path), None)
            .await
            .unwrap(),
        Upload::Present,
        "a blob that is there is not sent again"
    );
    // Another repository of the same registry gets it by a mount, not an upload.
    assert_eq!(
        r.upload_blob(
            &repo_b,
            &layer_digest,
            BlobSource::File(&layer_path),
            Some(&repo_a)
        )
        .await
        .unwrap(),
        Upload::Mounted
    );
    r.upload_blob(
        &repo_a,
        &config_digest,
        BlobSource::Bytes(config.as_bytes()),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        r.blob(&repo_a, &config_digest).await.unwrap(),
        config.as_bytes()
    );

    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.as_str(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest.as_str(), "size": layer.len()}],
        "annotations": {"org.opencontainers.image.version": "1.2.3"}
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = sha256_digest(&bytes);

    assert_eq!(r.manifest_digest(&repo_a, "1.2.3").await.unwrap(), None);
    assert_eq!(
        r.put_manifest(&repo_a, digest.as_str(), &bytes, OCI_MANIFEST)
            .await
            .unwrap(),
        digest
    );
    assert!(
        r.list_tags(&repo_a).await.unwrap().is_empty(),
        "a manifest put by digest tags nothing"
    );
    r.put_manifest(&repo_a, "1.2.3", &bytes, OCI_MANIFEST)
        .await
        .unwrap();
    assert_eq!(
        r.manifest_digest(&repo_a, "1.2.3").await.unwrap(),
        Some(digest.clone())
    );
    assert_eq!(r.list_tags(&repo_a).await.unwrap(), vec!["1.2.3"]);
    let served = r.manifest(&repo_a, "1.2.3").await.unwrap().unwrap();
    assert_eq!(served.bytes, bytes);
    assert_eq!(served.media_type, OCI_MANIFEST);

    // skopeo reads the same manifest, byte for byte.
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{REGISTRY}/{repo_a}:1.2.3"),
        ])
        .output()
        .expect("skopeo (installed by scripts/setup.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, bytes);

    assert!(r.delete_manifest(&repo_a, &digest).await.unwrap());
    assert_eq!(r.manifest_digest(&repo_a, "1.2.3").await.unwrap(), None);
    assert!(!r.delete_manifest(&repo_a, &digest).await.unwrap());
    assert!(r
        .list_tags("connector-build-tests/never-pushed")
        .await
        .unwrap()
        .is_empty());
}
