//! The locked closure of the main group: which lock entries are installed, under which
//! markers, walking the lock from the project's dependencies.

use std::collections::{BTreeSet, VecDeque};
use std::str::FromStr;

use pep440_rs::Version;
use pep508_rs::MarkerTree;

use super::constraint::satisfies;
use super::error::{PoetryErrorKind, INDEX_HINT, PATH_HINT};
use super::lock::{Lock, LockSource};
use super::markers;
use super::names::normalize_name;
use super::pyproject::{git_requirement_url, with_subdirectory, Origin, Project};
use super::{Requirement, Resolved};

/// Past this many package visits the walk gives up with an error. Markers only grow and
/// equal markers compare equal, so the walk settles; the budget bounds pathological locks.
const VISIT_BUDGET: usize = 100_000;

struct Walker<'a> {
    lock: &'a Lock,
    /// Under which environments each lock entry is needed; `None` = not needed.
    reach: Vec<Option<MarkerTree>>,
    /// Extras requested on each entry (normalised).
    extras: Vec<BTreeSet<String>>,
    queued: Vec<bool>,
    queue: VecDeque<usize>,
    ambiguous: BTreeSet<String>,
    visits: usize,
}

impl Walker<'_> {
    /// Routes an edge to the lock entries it selects. `false` when the lock
    /// has no entry with that name.
    fn deliver(
        &mut self,
        name: &str,
        constraints: &[String],
        marker: &MarkerTree,
        extras: &[String],
    ) -> bool {
        let lock = self.lock;
        let Some(entries) = lock.by_name.get(name) else {
            return false;
        };
        let (targets, ambiguous) = select_versions(lock, entries, constraints);
        if ambiguous {
            self.ambiguous.insert(name.to_string());
        }
        for (idx, selection) in targets {
            let contribution = markers::and(marker, &selection);
            if contribution.is_false() {
                continue;
            }
            let mut changed = match self.reach.get_mut(idx) {
                Some(Some(existing)) => markers::or_in(existing, &contribution),
                Some(slot) => {
                    *slot = Some(contribution);
                    true
                }
                None => false,
            };
            if let Some(requested) = self.extras.get_mut(idx) {
                for extra in extras {
                    changed |= requested.insert(normalize_name(extra));
                }
            }
            if changed {
                if let Some(queued) = self.queued.get_mut(idx) {
                    if !*queued {
                        *queued = true;
                        self.queue.push_back(idx);
                    }
                }
            }
        }
        true
    }

    fn run(&mut self) -> Result<(), PoetryErrorKind> {
        let lock = self.lock;
        while let Some(idx) = self.queue.pop_front() {
            self.visits += 1;
            if self.visits > VISIT_BUDGET {
                return Err(PoetryErrorKind::LockTooComplex {
                    lock: lock.path.clone(),
                    visits: VISIT_BUDGET,
                });
            }
            if let Some(queued) = self.queued.get_mut(idx) {
                *queued = false;
            }
            let (Some(package), Some(Some(reach))) =
                (lock.packages.get(idx), self.reach.get(idx).cloned())
            else {
                continue;
            };
            let requested = self.extras.get(idx).cloned().unwrap_or_default();
            let enabled: BTreeSet<&String> = requested
                .iter()
                .filter_map(|extra| package.extras.get(extra))
                .flatten()
                .collect();
            for edge in &package.deps {
                if edge.optional && !enabled.contains(&edge.name) {
                    continue;
                }
                let edge_marker = edge.marker(&requested);
                let marker = markers::and(&reach, &edge_marker);
                if marker.is_false() {
                    continue;
                }
                let found = self.deliver(
                    &edge.name,
                    edge.constraint.as_slice(),
                    &marker,
                    &edge.extras,
                );
                // Poetry leaves out packages that only conditional edges need
                // when no supported Python satisfies the condition.
                if !found && edge_marker.is_true() {
                    return Err(PoetryErrorKind::LockedDependencyMissing {
                        lock: lock.path.clone(),
                        package: package.name.clone(),
                        dependency: edge.display.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Chooses among lock entries sharing a name, each paired with the extra
/// condition under which it is the one installed. The flag is set when the
/// lock gives no way to tell them apart.
fn select_versions(
    lock: &Lock,
    entries: &[usize],
    constraints: &[String],
) -> (Vec<(usize, MarkerTree)>, bool) {
    if let [only] = entries {
        return (vec![(*only, MarkerTree::TRUE)], false);
    }
    let package = |i: usize| lock.packages.get(i);
    let mut candidates: Vec<usize> = entries
        .iter()
        .copied()
        .filter(|&i| package(i).is_some_and(|p| p.in_main != Some(false)))
        .collect();
    if candidates.is_empty() {
        candidates = entries.to_vec();
    }
    let matching: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&i| package(i).is_some_and(|p| satisfies(constraints, &p.version)))
        .collect();
    if !matching.is_empty() {
        candidates = matching;
    }
    if let [only] = candidates.as_slice() {
        return (vec![(*only, MarkerTree::TRUE)], false);
    }
    let recorded: Option<Vec<(usize, MarkerTree)>> = candidates
        .iter()
        .map(|&i| Some((i, package(i)?.lock_marker.clone()?)))
        .collect();
    // An unconditional entry next to others means the markers do not separate them.
    if let Some(recorded) = recorded.filter(|r| !r.iter().any(|(_, m)| m.is_true())) {
        return (recorded, false);
    }
    match python_selection(lock, &candidates) {
        Some(selection) => (selection, false),
        None => (
            candidates
                .into_iter()
                .map(|i| (i, MarkerTree::TRUE))
                .collect(),
            true,
        ),
    }
}

/// Locks without per-entry markers: Poetry picks the newest version whose
/// `python-versions` fit, so each older entry covers only the Pythons that
/// the newer ones leave out.
fn python_selection(lock: &Lock, candidates: &[usize]) -> Option<Vec<(usize, MarkerTree)>> {
    let mut versions = candidates
        .iter()
        .map(|&i| {
            let package = lock.packages.get(i)?;
            let version = Version::from_str(&package.version).ok()?;
            let python = markers::python(package.python_versions.as_deref().unwrap_or("*")).ok()?;
            Some((i, version, python))
        })
        .collect::<Option<Vec<_>>>()?;
    versions.sort_by(|a, b| b.1.cmp(&a.1));
    let mut served = MarkerTree::FALSE;
    let mut out = Vec::with_capacity(versions.len());
    for (i, _, python) in versions {
        let selection = markers::and(&python, &served.negate());
        if selection.is_false() {
            return None;
        }
        served.or(python);
        out.push((i, selection));
    }
    Some(out)
}

pub(super) fn resolve_locked(project: &Project, lock: &Lock) -> Result<Resolved, PoetryErrorKind> {
    let count = lock.packages.len();
    let mut walker = Walker {
        lock,
        reach: vec![None; count],
        extras: vec![BTreeSet::new(); count],
        queued: vec![false; count],
        queue: VecDeque::new(),
        ambiguous: BTreeSet::new(),
        visits: 0,
    };
    for dep in &project.deps {
        let name = normalize_name(&dep.name);
        let constraints: &[String] = match &dep.origin {
            Origin::Registry(constraints) => constraints,
            Origin::Git { .. } | Origin::Url { .. } => &[],
        };
        if let Some(entries) = lock.by_name.get(&name) {
            let any_fits = entries
                .iter()
                .filter_map(|&i| lock.packages.get(i))
                .any(|p| satisfies(constraints, &p.version));
            if !any_fits {
                return Err(PoetryErrorKind::LockOutdated {
                    lock: lock.path.clone(),
                    pyproject: project.path.to_path_buf(),
                    package: dep.name.clone(),
                    locked: entries
                        .iter()
                        .filter_map(|&i| lock.packages.get(i))
                        .map(|p| p.version.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    constraint: constraints.join(", "),
                });
            }
        }
        if !walker.deliver(&name, constraints, &dep.marker, &dep.extras) {
            // Poetry does not lock what no supported Python needs.
            if markers::and(&dep.marker, &project.python).is_false() {
                continue;
            }
            return Err(PoetryErrorKind::MissingFromLock {
                lock: lock.path.clone(),
                pyproject: project.path.to_path_buf(),
                package: dep.name.clone(),
            });
        }
    }
    walker.run()?;

    let mut fully_pinned = walker.ambiguous.is_empty();
    let mut requirements = Vec::new();
    for (idx, reach) in walker.reach.iter().enumerate() {
        let (Some(reach), Some(package)) = (reach, lock.packages.get(idx)) else {
            continue;
        };
        let mut line = match &package.source {
            LockSource::Registry => format!("{}=={}", package.name, package.version),
            LockSource::Git {
                url,
                reference,
                resolved,
                subdirectory,
            } => {
                // A branch or tag name can move; only the resolved commit is a pin.
                fully_pinned &= resolved.is_some();
                let rev = resolved.as_deref().or(reference.as_deref());
                format!(
                    "{} @ {}",
                    package.name,
                    git_requirement_url(url, rev, subdirectory.as_deref())
                )
            }
            LockSource::Url { url, subdirectory } => format!(
                "{} @ {}",
                package.name,
                with_subdirectory(url.clone(), subdirectory.as_deref())
            ),
            LockSource::Local { kind, url } => {
                return Err(PoetryErrorKind::UnsupportedDependency {
                    path: lock.path.clone(),
                    package: package.name.clone(),
                    kind: format!("{kind} dependency (`{url}`)"),
                    hint: PATH_HINT.to_string(),
                })
            }
            LockSource::Other { kind, url } => {
                return Err(PoetryErrorKind::UnsupportedDependency {
                    path: lock.path.clone(),
                    package: package.name.clone(),
                    kind: format!("package from a `{kind}` source ({url})"),
                    hint: INDEX_HINT.to_string(),
                })
            }
        };
        if let Some(marker) = markers::render(reach) {
            line.push_str(" ; ");
            line.push_str(&marker);
        }
        requirements.push(Requirement {
            name: normalize_name(&package.name),
            spec: line,
            hashes: package.hashes.clone(),
        });
    }
    let notes = walker
        .ambiguous
        .iter()
        .map(|name| {
            (
                name.clone(),
                format!(
                    "poetry.lock has several versions of {name} without markers or python \
                     ranges that tell them apart; all are listed, so pip will report a \
                     conflict until the lock is regenerated with `poetry lock`"
                ),
            )
        })
        .collect();
    Ok(Resolved {
        requirements,
        notes,
        fully_pinned,
    })
}
