//! `cache prune`: removes the engine's cache entries (`connector-build-cache:<key>` tags) by
//! age, by count per connector and by total size; never one that an image tagged outside the
//! cache uses (its layers are the start of that image's, as an install layer is of a
//! connector's `:dev` image).
//!
//! An entry is one image with its cache tags (a finished image has two: its last step's key
//! and its image key). Its connector is its `CONNECTOR_LABEL`; entries made before the label
//! existed count as connector "unknown". `--keep-last N` keeps, per connector, the N newest
//! finished builds — entries no other entry of that connector was built on — and everything
//! they were built on. Sizes are what an entry adds to the image it was built on (its size
//! less the largest image whose layers start its own), so shared layers count once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use bollard::query_parameters::ListImagesOptionsBuilder;

use super::remote::CONNECTOR_LABEL;
use super::CACHE_REPOSITORY;
use crate::engine::{Engine, EngineError};
use crate::registry::{Registry, RegistryError};

#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub older_than: Option<Duration>,
    pub keep_last: Option<usize>,
    pub max_size: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("--older-than `{given}` is not a duration\nhint: e.g. 36h, 7d, 2weeks")]
    Duration {
        given: String,
        #[source]
        source: humantime::DurationError,
    },
    #[error("--max-size `{given}` is not a size ({message})\nhint: e.g. 500MB, 20GiB")]
    Size { given: String, message: String },
    #[error("nothing says what to prune\nhint: give --older-than DURATION, --keep-last N or --max-size SIZE (with --dry-run to see what would go)")]
    Empty,
}

impl Policy {
    pub fn parse(
        older_than: Option<&str>,
        keep_last: Option<usize>,
        max_size: Option<&str>,
    ) -> Result<Policy, PolicyError> {
        if older_than.is_none() && keep_last.is_none() && max_size.is_none() {
            return Err(PolicyError::Empty);
        }
        let older_than = older_than
            .map(|d| {
                humantime::parse_duration(d).map_err(|source| PolicyError::Duration {
                    given: d.into(),
                    source,
                })
            })
            .transpose()?;
        let max_size = max_size
            .map(|s| {
                s.trim()
                    .parse::<bytesize::ByteSize>()
                    .map(|b| b.as_u64())
                    .map_err(|message| PolicyError::Size {
                        given: s.into(),
                        message,
                    })
            })
            .transpose()?;
        Ok(Policy {
            older_than,
            keep_last,
            max_size,
        })
    }
}

/// One cache entry of the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: String,
    /// Its `connector-build-cache:` tags.
    pub tags: Vec<String>,
    pub connector: String,
    /// Seconds since the Unix epoch.
    pub created: f64,
    /// What it adds to the image it was built on, in bytes.
    pub added: i64,
    pub layers: Vec<String>,
}

/// An image of the engine as prune sees it.
#[derive(Debug, Clone)]
pub struct Image {
    pub id: String,
    pub tags: Vec<String>,
    pub labels: HashMap<String, String>,
    /// Seconds since the Unix epoch, to the engine's precision: builds a second apart are
    /// told apart.
    pub created: f64,
    pub size: i64,
    pub layers: Vec<String>,
}

fn is_cache_tag(tag: &str) -> bool {
    tag.strip_prefix(CACHE_REPOSITORY)
        .is_some_and(|rest| rest.starts_with(':'))
}

fn starts(prefix: &[String], of: &[String]) -> bool {
    prefix.len() <= of.len() && of[..prefix.len()] == *prefix
}

/// The entries among `images`, and the layer lists of the images tagged outside the cache.
pub fn entries(images: &[Image]) -> (Vec<Entry>, Vec<Vec<String>>) {
    let mut entries = Vec::new();
    let mut tagged = Vec::new();
    for image in images {
        let cache: Vec<String> = image
            .tags
            .iter()
            .filter(|t| is_cache_tag(t))
            .cloned()
            .collect();
        if image
            .tags
            .iter()
            .any(|t| !is_cache_tag(t) && t != "<none>:<none>")
        {
            tagged.push(image.layers.clone());
        }
        if cache.is_empty() {
            continue;
        }
        let below = images
            .iter()
            .filter(|o| o.layers.len() < image.layers.len() && starts(&o.layers, &image.layers))
            .map(|o| o.size)
            .max()
            .unwrap_or(0);
        entries.push(Entry {
            id: image.id.clone(),
            tags: cache,
            connector: image
                .labels
                .get(CONNECTOR_LABEL)
                .cloned()
                .unwrap_or_else(|| "unknown".into()),
            created: image.created,
            added: (image.size - below).max(0),
            layers: image.layers.clone(),
        });
    }
    (entries, tagged)
}

/// Why an entry goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    OlderThan,
    NotInLast,
    OverSize,
}

impl Reason {
    pub fn describe(self) -> &'static str {
        match self {
            Reason::OlderThan => "older than --older-than",
            Reason::NotInLast => "not among the last builds kept",
            Reason::OverSize => "over --max-size",
        }
    }
}

/// Which entries go (indexes into `entries`, oldest first), and why.
pub fn decide(
    entries: &[Entry],
    tagged: &[Vec<String>],
    policy: &Policy,
    now: f64,
) -> Vec<(usize, Reason)> {
    let mut kept: HashSet<usize> = (0..entries.len())
        .filter(|&i| tagged.iter().any(|t| starts(&entries[i].layers, t)))
        .collect();
    if let Some(n) = policy.keep_last {
        let mut by_connector: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            by_connector.entry(&e.connector).or_default().push(i);
        }
        for members in by_connector.values() {
            // Finished builds: entries no other entry of the connector was built on.
            let mut leaves: Vec<usize> = members
                .iter()
                .copied()
                .filter(|&i| {
                    !members.iter().any(|&j| {
                        j != i
                            && entries[j].layers.len() > entries[i].layers.len()
                            && starts(&entries[i].layers, &entries[j].layers)
                    })
                })
                .collect();
            leaves.sort_by(|&a, &b| entries[b].created.total_cmp(&entries[a].created));
            // With whatever they stand on, whichever connector's build made it (connectors
            // with the same manifests share their install layer).
            for &leaf in leaves.iter().take(n) {
                kept.extend(
                    (0..entries.len())
                        .filter(|&i| starts(&entries[i].layers, &entries[leaf].layers)),
                );
            }
        }
    }
    let mut order: Vec<usize> = (0..entries.len()).collect();
    let oldest_first = |a: &usize, b: &usize| {
        entries[*a]
            .created
            .total_cmp(&entries[*b].created)
            .then_with(|| entries[*a].id.cmp(&entries[*b].id))
    };
    order.sort_by(oldest_first);
    let mut gone: Vec<(usize, Reason)> = Vec::new();
    for &i in &order {
        if kept.contains(&i) {
            continue;
        }
        match policy.older_than {
            Some(age) if now - entries[i].created > age.as_secs_f64() => {
                gone.push((i, Reason::OlderThan))
            }
            None if policy.keep_last.is_some() => gone.push((i, Reason::NotInLast)),
            _ => {}
        }
    }
    if let Some(max) = policy.max_size {
        let removed: HashSet<usize> = gone.iter().map(|(i, _)| *i).collect();
        let mut total: i64 = (0..entries.len())
            .filter(|i| !removed.contains(i))
            .map(|i| entries[i].added)
            .sum();
        let mut removed = removed;
        // Oldest first, but an entry that a remaining one was built on frees nothing: it
        // waits until those are gone.
        let mut progress = true;
        while total > max as i64 && progress {
            progress = false;
            for &i in &order {
                if total <= max as i64 {
                    break;
                }
                let below_another = (0..entries.len()).any(|j| {
                    j != i
                        && !removed.contains(&j)
                        && entries[j].layers.len() > entries[i].layers.len()
                        && starts(&entries[i].layers, &entries[j].layers)
                });
                if kept.contains(&i) || removed.contains(&i) || below_another {
                    continue;
                }
                total -= entries[i].added;
                removed.insert(i);
                gone.push((i, Reason::OverSize));
                progress = true;
            }
        }
    }
    gone.sort_by(|(a, _), (b, _)| oldest_first(a, b));
    gone
}

/// The engine's images, with their layers.
pub async fn engine_images(engine: &Engine) -> Result<Vec<Image>, EngineError> {
    let summaries = engine
        .docker()
        .list_images(Some(ListImagesOptionsBuilder::default().build()))
        .await
        .map_err(|e| EngineError::Refused {
            host: engine.host().into(),
            action: "list images".into(),
            status: 500,
            message: e.to_string(),
        })?;
    let mut images = Vec::with_capacity(summaries.len());
    for s in summaries {
        // An image removed meanwhile (another build's clean-up) is simply not there.
        let Some(info) = engine.inspect_image(&s.id).await? else {
            continue;
        };
        let created = info
            .created
            .as_deref()
            .and_then(|c| humantime::parse_rfc3339_weak(c).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(s.created as f64, |d| d.as_secs_f64());
        images.push(Image {
            id: s.id,
            tags: s.repo_tags,
            labels: s.labels,
            created,
            size: s.size,
            layers: info.layers,
        });
    }
    Ok(images)
}

/// The registry cache's entries (`REPO:<key>`), one per manifest, as prune sees them: tags as
/// the engine names its entries, layers by their uncompressed digests (the config's
/// `rootfs.diff_ids`, as the engine lists them, so an engine's tagged images protect registry
/// entries too), sizes as stored (compressed).
pub async fn registry_images(
    registry: &Registry,
    repository: &str,
) -> Result<Vec<Image>, RegistryError> {
    let mut by_digest: BTreeMap<String, Image> = BTreeMap::new();
    for tag in registry.list_tags(repository).await? {
        let Some(manifest) = registry.manifest(repository, &tag).await? else {
            continue;
        };
        let entry_tag = format!("{CACHE_REPOSITORY}:{tag}");
        if let Some(image) = by_digest.get_mut(manifest.digest.as_str()) {
            image.tags.push(entry_tag);
            continue;
        }
        let invalid = |message: String| RegistryError::Invalid {
            registry: registry.name().to_string(),
            what: format!("the manifest of {repository}:{tag}"),
            message,
        };
        let body: serde_json::Value =
            serde_json::from_slice(&manifest.bytes).map_err(|e| invalid(e.to_string()))?;
        // Engines push single-platform images; an index is no entry of ours.
        let Some(config_digest) = body["config"]["digest"].as_str() else {
            continue;
        };
        let config_digest = crate::model::Digest::parse(config_digest).map_err(invalid)?;
        let config: serde_json::Value =
            serde_json::from_slice(&registry.blob(repository, &config_digest).await?)
                .map_err(|e| invalid(e.to_string()))?;
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let size = body["layers"]
            .as_array()
            .map_or(0, |l| l.iter().filter_map(|x| x["size"].as_i64()).sum());
        let labels = config["config"]["Labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let created = config["created"]
            .as_str()
            .and_then(|c| humantime::parse_rfc3339_weak(c).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        by_digest.insert(
            manifest.digest.as_str().to_string(),
            Image {
                id: manifest.digest.as_str().to_string(),
                tags: vec![entry_tag],
                labels,
                created,
                size,
                layers: strings(&config["rootfs"]["diff_ids"]),
            },
        );
    }
    Ok(by_digest.into_values().collect())
}

/// Deletes a registry entry's manifest (and so each of its tags).
pub async fn remove_from_registry(
    registry: &Registry,
    repository: &str,
    entry: &Entry,
) -> Result<(), RegistryError> {
    let digest =
        crate::model::Digest::parse(&entry.id).map_err(|message| RegistryError::Invalid {
            registry: registry.name().to_string(),
            what: format!("entry {}", entry.id),
            message,
        })?;
    registry.delete_manifest(repository, &digest).await?;
    Ok(())
}

/// Removes an entry's cache tags; the image itself goes with its last name, unless a later
/// entry was built on it.
pub async fn remove(engine: &Engine, entry: &Entry) -> Result<(), EngineError> {
    for tag in &entry.tags {
        engine.untag(tag).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const NOW: f64 = (100 * DAY) as f64;

    fn image(id: &str, tags: &[&str], connector: &str, age_days: i64, layers: &[&str]) -> Image {
        Image {
            id: id.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            labels: [(CONNECTOR_LABEL.to_string(), connector.to_string())].into(),
            created: NOW - (age_days * DAY) as f64,
            size: layers.len() as i64 * 100,
            layers: layers.iter().map(|l| l.to_string()).collect(),
        }
    }

    /// Two builds of `a` (10 and 2 days old) on one install layer, one of `b` whose final
    /// image is tagged `:dev`, and the base image.
    fn fleet() -> Vec<Image> {
        vec![
            image("base", &["base:1"], "", 50, &["L0"]),
            image(
                "a-install",
                &["connector-build-cache:k1"],
                "a",
                10,
                &["L0", "A1"],
            ),
            image(
                "a-old",
                &["connector-build-cache:k2", "connector-build-cache:k2i"],
                "a",
                10,
                &["L0", "A1", "A2"],
            ),
            image(
                "a-new",
                &["connector-build-cache:k3"],
                "a",
                2,
                &["L0", "A1", "A3"],
            ),
            image(
                "b-install",
                &["connector-build-cache:k4"],
                "b",
                30,
                &["L0", "B1"],
            ),
            image(
                "b-final",
                &["connector-build-cache:k5", "airbyte/b:dev"],
                "b",
                30,
                &["L0", "B1", "B2"],
            ),
        ]
    }

    fn gone(policy: Policy) -> Vec<String> {
        let (entries, tagged) = entries(&fleet());
        decide(&entries, &tagged, &policy, NOW)
            .into_iter()
            .map(|(i, _)| entries[i].id.clone())
            .collect()
    }

    #[test]
    fn entries_and_their_sizes() {
        let (entries, tagged) = entries(&fleet());
        assert_eq!(entries.len(), 5);
        assert_eq!(tagged.len(), 2);
        let a_old = entries.iter().find(|e| e.id == "a-old").unwrap();
        assert_eq!(a_old.tags.len(), 2);
        assert_eq!(a_old.added, 100);
    }

    #[test]
    fn tagged_images_and_what_they_use_are_kept() {
        let policy = Policy {
            older_than: Some(Duration::from_secs(5 * DAY as u64)),
            ..Default::default()
        };
        // b's entries are older but used by airbyte/b:dev.
        assert_eq!(gone(policy), ["a-install", "a-old"]);
    }

    #[test]
    fn keep_last_keeps_whole_builds() {
        let policy = Policy {
            keep_last: Some(1),
            ..Default::default()
        };
        // a-new's build needs a-install.
        assert_eq!(gone(policy), ["a-old"]);
        let both = Policy {
            keep_last: Some(1),
            older_than: Some(Duration::from_secs(20 * DAY as u64)),
            ..Default::default()
        };
        assert!(gone(both).is_empty());
    }

    #[test]
    fn keep_last_keeps_what_another_connectors_build_stands_on() {
        let mut images = fleet();
        // a's newest build has a new install layer; c's only build stands on a's old one.
        for (id, tag, connector, age, layers) in [
            ("a-install2", "k7", "a", 0, &["L0", "A9"][..]),
            ("a-newest", "k8", "a", 0, &["L0", "A9", "A10"][..]),
            ("c-final", "k6", "c", 1, &["L0", "A1", "C2"][..]),
        ] {
            let tag = format!("connector-build-cache:{tag}");
            images.push(image(id, &[tag.as_str()], connector, age, layers));
        }
        let (entries, tagged) = entries(&images);
        let policy = Policy {
            keep_last: Some(1),
            ..Default::default()
        };
        let gone: Vec<&str> = decide(&entries, &tagged, &policy, NOW)
            .into_iter()
            .map(|(i, _)| entries[i].id.as_str())
            .collect();
        // a-install stays: c's build stands on it.
        assert_eq!(gone, ["a-old", "a-new"]);
    }

    #[test]
    fn max_size_removes_oldest_first() {
        let at_most = |max| Policy {
            max_size: Some(max),
            ..Default::default()
        };
        // Each entry adds 100; b's 200 are kept.
        assert_eq!(gone(at_most(450)), ["a-old"]);
        // a-install frees nothing while a-new stands on it.
        assert_eq!(gone(at_most(250)), ["a-install", "a-old", "a-new"]);
        assert_eq!(gone(at_most(10)), ["a-install", "a-old", "a-new"]);
    }

    #[test]
    fn bad_policies_are_refused() {
        assert!(matches!(
            Policy::parse(None, None, None),
            Err(PolicyError::Empty)
        ));
        assert!(matches!(
            Policy::parse(Some("7 fortnights"), None, None),
            Err(PolicyError::Duration { .. })
        ));
        assert!(matches!(
            Policy::parse(None, None, Some("big")),
            Err(PolicyError::Size { .. })
        ));
        let p = Policy::parse(Some("7d"), Some(2), Some("1.5GiB")).unwrap();
        assert_eq!(p.older_than, Some(Duration::from_secs(7 * DAY as u64)));
        assert_eq!(p.max_size, Some(1_610_612_736));
        assert_eq!(
            Policy::parse(None, None, Some("500MB")).unwrap().max_size,
            Some(500_000_000)
        );
    }
}
