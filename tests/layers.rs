//! Image layers handled without `docker commit`: load streams that leave out the layers the
//! engine has (`engine::image_archive`), dependency delta layers and rebases onto a new base.
//! On the real engine.

mod common;

use connector_build::engine::image_archive::LoadLayer;
use connector_build::engine::Engine;
use sha2::{Digest, Sha256};

fn layer_tar(file: &str, contents: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(contents.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(946_684_800);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, file, contents).unwrap();
    b.into_inner().unwrap()
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn config(diff_ids: &[String], marker: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Labels": {"test": marker}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// dockerd's loader uses a layer whose chain id it has without opening its file: a load
/// stream with only the new layer's tar makes the whole image, and saving it back gives every
/// layer, each matching its diff id.
#[tokio::test]
async fn load_skips_layers_the_engine_has() {
    let engine = Engine::connect(None)
        .await
        .expect("the engine (run scripts/setup.sh)");
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("{}-{}", std::process::id(), rand_suffix());
    let layers: Vec<Vec<u8>> = ["a", "b", "c"]
        .iter()
        .map(|f| layer_tar(f, format!("{f} {marker}").as_bytes()))
        .collect();
    let paths: Vec<_> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let p = dir.path().join(format!("{i}.tar"));
            std::fs::write(&p, l).unwrap();
            p
        })
        .collect();
    let ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
    let tag = common::TestTag::new("archive-two");
    let tag3 = common::TestTag::new("archive-three");

    // Two layers, both sent.
    let two = config(&ids[..2], &marker);
    let id = engine
        .load_image(
            two.clone(),
            vec![tag.0.clone()],
            ids[..2]
                .iter()
                .zip(&paths)
                .map(|(d, p)| LoadLayer {
                    diff_id: d.clone(),
                    tar: Some(p.clone()),
                })
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(id, digest(&two));

    // Three layers, only the third sent: the first two are the engine's.
    let three = config(&ids, &marker);
    let layers3: Vec<LoadLayer> = ids
        .iter()
        .enumerate()
        .map(|(i, d)| LoadLayer {
            diff_id: d.clone(),
            tar: (i == 2).then(|| paths[2].clone()),
        })
        .collect();
    engine
        .load_image(three.clone(), vec![tag3.0.clone()], layers3)
        .await
        .expect("a load without the layers the engine has");
    assert_eq!(common::image_layers(&tag3.0), ids);

    // Saved back: all three, checked against their diff ids, the config unchanged.
    let saved = engine.save_image(&tag3.0, dir.path()).await.unwrap();
    assert_eq!(saved.config, three);
    let back: Vec<Vec<u8>> = saved
        .layers
        .iter()
        .map(|l| std::fs::read(&l.path).unwrap())
        .collect();
    assert_eq!(back, layers);

    // A layer the engine lacks, left out: refused, nothing tagged.
    let other = layer_tar("d", format!("d {marker}").as_bytes());
    let mut missing = ids.clone();
    missing.push(digest(&other));
    let tag4 = common::TestTag::new("archive-missing");
    let err = engine
        .load_image(
            config(&missing, &marker),
            vec![tag4.0.clone()],
            missing
                .iter()
                .map(|d| LoadLayer {
                    diff_id: d.clone(),
                    tar: None,
                })
                .collect(),
        )
        .await
        .unwrap_err();
    assert!(!common::image_exists(&tag4.0), "{err}");
    let _ = common::docker(&["image", "rm", &id]);
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}
