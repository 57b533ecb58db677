//! Whole-project cases: pyproject.toml (and poetry.lock) in, requirement lines out.
//! Sample projects and locks live in `src/python/testdata/poetry/`.

use crate::python::toml_fields::FieldError;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::constraint::{parse_poetry_constraint, satisfies};
use super::markers;
use super::*;

const PYPROJECT: &str = "connectors/source-example/pyproject.toml";
const LOCK: &str = "connectors/source-example/poetry.lock";

fn unlocked(pyproject: &str) -> Result<PoetryInstall, PoetryErrorKind> {
    poetry_requirements(Path::new(PYPROJECT), pyproject, Path::new(LOCK), None)
        .map_err(PoetryError::into_kind)
}

fn locked(pyproject: &str, lock: &str) -> Result<PoetryInstall, PoetryErrorKind> {
    poetry_requirements(Path::new(PYPROJECT), pyproject, Path::new(LOCK), Some(lock))
        .map_err(PoetryError::into_kind)
}

#[test]
fn public_error_is_one_pointer_and_displays_its_kind() {
    assert_eq!(
        std::mem::size_of::<PoetryError>(),
        std::mem::size_of::<usize>()
    );
    let err = poetry_requirements(Path::new(PYPROJECT), "[tool.poetry", Path::new(LOCK), None)
        .unwrap_err();
    assert!(
        matches!(err.kind(), PoetryErrorKind::InvalidToml { .. }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), err.kind().to_string());
}

/// A Poetry 1.x-style pyproject with the given main dependencies.
fn with_deps(body: &str) -> String {
    format!(
        "[tool.poetry]\nname = \"source-example\"\nversion = \"0.1.0\"\n\n\
         [tool.poetry.dependencies]\npython = \"^3.9\"\n{body}\n"
    )
}

fn lines(install: &PoetryInstall) -> Vec<&str> {
    install.requirements.iter().map(String::as_str).collect()
}

fn translate(constraint: &str) -> Result<String, PoetryErrorKind> {
    let install = unlocked(&with_deps(&format!("foo = \"{constraint}\"")))?;
    assert!(!install.fully_pinned);
    assert_eq!(install.requirements.len(), 1, "{install:?}");
    Ok(install.requirements.concat())
}

#[test]
fn translates_each_constraint_form() {
    let cases = [
        ("^1.2.3", "foo>=1.2.3,<2.0.0"),
        ("^0.2.3", "foo>=0.2.3,<0.3.0"),
        ("^0.0.3", "foo>=0.0.3,<0.0.4"),
        ("^1.2", "foo>=1.2,<2.0"),
        ("^1", "foo>=1,<2"),
        ("^0", "foo>=0,<1"),
        ("^0.0", "foo>=0.0,<0.1"),
        ("^1.2.3.4", "foo>=1.2.3.4,<2.0.0.0"),
        ("~1.2.3", "foo>=1.2.3,<1.3.0"),
        ("~1.2", "foo>=1.2,<1.3"),
        ("~1", "foo>=1,<2"),
        ("~=1.2", "foo~=1.2"),
        ("~=1.2.3", "foo~=1.2.3"),
        ("~=1", "foo>=1,<2"),
        ("*", "foo"),
        ("", "foo"),
        ("1.2.3", "foo==1.2.3"),
        ("=1.2.3", "foo==1.2.3"),
        ("==2.31.0", "foo==2.31.0"),
        ("v1.2.3", "foo==1.2.3"),
        ("1.2.*", "foo==1.2.*"),
        ("1.2.x", "foo==1.2.*"),
        ("1.*.*", "foo==1.*"),
        ("!=1.5.7", "foo!=1.5.7"),
        ("<>1.5.7", "foo!=1.5.7"),
        ("!=1.5.*", "foo!=1.5.*"),
        (">=1.0,<2.0", "foo>=1.0,<2.0"),
        (">= 1.0, < 2.0", "foo>=1.0,<2.0"),
        (">=1.0 <2.0", "foo>=1.0,<2.0"),
        (">=1.0, <2.0, !=1.5", "foo>=1.0,<2.0,!=1.5"),
        (">=1.2.*", "foo>=1.2"),
        ("^3.9,<3.12", "foo>=3.9,<4.0,<3.12"),
        ("^1.0.0b1", "foo>=1.0.0b1,<2.0.0"),
        ("~2.1.0rc2", "foo>=2.1.0rc2,<2.2.0"),
        ("^0.3.0.dev4", "foo>=0.3.0.dev4,<0.4.0"),
        ("==1.0+cpu", "foo==1.0+cpu"),
        ("^1!2.3", "foo>=1!2.3,<1!3.0"),
        ("===1.0-weird", "foo===1.0-weird"),
    ];
    for (constraint, expected) in cases {
        assert_eq!(
            translate(constraint).as_deref(),
            Ok(expected),
            "constraint `{constraint}`"
        );
    }
}

#[test]
fn rejects_constraints_without_pep440_equivalent() {
    for constraint in [
        "^1.0 || ^2.0",
        "1.0 | 2.0",
        "^",
        ">=",
        "~1.*",
        ">=abc",
        "^18446744073709551615",
    ] {
        match translate(constraint) {
            Err(PoetryErrorKind::UnsupportedConstraint {
                path,
                package,
                constraint: reported,
                reason,
            }) => {
                assert_eq!(path, Path::new(PYPROJECT));
                assert_eq!(package, "foo");
                assert_eq!(reported, constraint);
                assert!(!reason.is_empty());
            }
            other => panic!("`{constraint}` gave {other:?}"),
        }
    }
    let err = translate("^1.0 || ^2.0").unwrap_err().to_string();
    assert!(
        err.contains(PYPROJECT) && err.contains("`foo`") && err.contains("||"),
        "{err}"
    );
}

#[test]
fn table_form_with_extras_markers_and_python() {
    let install = unlocked(&with_deps(
        r#"requests = { version = "^2.31", extras = ["socks", "security"], markers = "sys_platform == 'linux'", python = "^3.8" }
tomli = { version = ">=1.1", python = "<3.11" }
uvloop = { version = "^0.19", platform = "linux || darwin" }
typing-extensions = { version = ">=4.0", python = ">=3.8.1" }
futures = { version = "^3.3", python = "~2.7 || ^3.6" }"#,
    ))
    .unwrap();
    assert_eq!(
        lines(&install),
        [
            "futures>=3.3,<4.0 ; python_full_version == '2.7.*' or (python_full_version >= '3.6' and python_full_version < '4.0')",
            "requests[socks,security]>=2.31,<3.0 ; python_full_version >= '3.8' and python_full_version < '4.0' and sys_platform == 'linux'",
            "tomli>=1.1 ; python_full_version < '3.11'",
            "typing-extensions>=4.0 ; python_full_version >= '3.8.1'",
            "uvloop>=0.19,<0.20 ; sys_platform == 'darwin' or sys_platform == 'linux'",
        ]
    );
}

#[test]
fn multiple_constraint_list_gives_one_line_per_entry() {
    let install = unlocked(&with_deps(
        r#"foo = [
{ version = "^1", python = "<3.8" },
{ version = "^2", python = ">=3.8" },
]"#,
    ))
    .unwrap();
    assert_eq!(
        lines(&install),
        [
            "foo>=1,<2 ; python_full_version < '3.8'",
            "foo>=2,<3 ; python_full_version >= '3.8'",
        ]
    );
}

#[test]
fn only_the_main_group_is_installed() {
    let pyproject = with_deps(
        r#"Requests = "^2.31"
pendulum = { version = "^2.1", optional = true }

[tool.poetry.extras]
dates = ["pendulum"]

[tool.poetry.group.main.dependencies]
backoff = "^2.2"

[tool.poetry.group.dev.dependencies]
pytest = "^7.4"

[tool.poetry.group.lint]
optional = true

[tool.poetry.group.lint.dependencies]
ruff = "*"

[tool.poetry.dev-dependencies]
mypy = "^1.5""#,
    );
    let install = unlocked(&pyproject).unwrap();
    assert_eq!(
        lines(&install),
        ["backoff>=2.2,<3.0", "Requests>=2.31,<3.0"]
    );
}

#[test]
fn git_and_url_dependencies_without_lock() {
    let install = unlocked(&with_deps(
        r#"airbyte-cdk = { git = "https://github.com/airbytehq/airbyte-python-cdk.git", branch = "main" }
internal = { git = "git@github.com:example/internal.git", tag = "v1.0", subdirectory = "python" }
latest = { git = "https://github.com/example/latest.git", extras = ["fast"], python = ">=3.10" }
wheel-dep = { url = "https://example.com/wheel_dep-1.0-py3-none-any.whl" }"#,
    ))
    .unwrap();
    assert_eq!(
        lines(&install),
        [
            "airbyte-cdk @ git+https://github.com/airbytehq/airbyte-python-cdk.git@main",
            "internal @ git+ssh://git@github.com/example/internal.git@v1.0#subdirectory=python",
            "latest[fast] @ git+https://github.com/example/latest.git ; python_full_version >= '3.10'",
            "wheel-dep @ https://example.com/wheel_dep-1.0-py3-none-any.whl",
        ]
    );
}

#[test]
fn path_dependency_is_an_error() {
    let pyproject = with_deps(r#"common-utils = { path = "../common-utils", develop = true }"#);
    for result in [unlocked(&pyproject), locked(&pyproject, POETRY1_LOCK)] {
        match result {
            Err(PoetryErrorKind::UnsupportedDependency {
                path,
                package,
                kind,
                ..
            }) => {
                assert_eq!(path, Path::new(PYPROJECT));
                assert_eq!(package, "common-utils");
                assert!(
                    kind.contains("path dependency") && kind.contains("../common-utils"),
                    "{kind}"
                );
            }
            other => panic!("expected UnsupportedDependency, got {other:?}"),
        }
    }
    let file = unlocked(&with_deps(r#"pkg = { url = "file:///tmp/pkg.whl" }"#));
    assert!(
        matches!(file, Err(PoetryErrorKind::UnsupportedDependency { .. })),
        "{file:?}"
    );
}

#[test]
fn private_package_source_is_an_error_but_pypi_is_fine() {
    let pyproject = with_deps(
        r#"secret = { version = "^1.0", source = "corp" }
public = { version = "^1.0", source = "PyPI" }

[[tool.poetry.source]]
name = "corp"
url = "https://pkgs.example.com/simple/"
priority = "explicit""#,
    );
    match unlocked(&pyproject) {
        Err(PoetryErrorKind::UnsupportedDependency { package, kind, .. }) => {
            assert_eq!(package, "secret");
            assert!(
                kind.contains("corp") && kind.contains("pkgs.example.com"),
                "{kind}"
            );
        }
        other => panic!("expected UnsupportedDependency, got {other:?}"),
    }
    let ok = unlocked(&pyproject.replace("source = \"corp\"", "source = \"pypi\"")).unwrap();
    assert_eq!(lines(&ok), ["public>=1.0,<2.0", "secret>=1.0,<2.0"]);
}

#[test]
fn malformed_toml_names_file_and_line() {
    let err =
        unlocked("[tool.poetry]\nname = \"x\"\n[tool.poetry.dependencies\nrequests = \"^2\"\n")
            .unwrap_err();
    assert!(
        matches!(err, PoetryErrorKind::InvalidToml { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.starts_with(&format!("{PYPROJECT}:3:")), "{message}");

    let err = locked(
        &with_deps("requests = \"^2\""),
        "[[package]]\nname = \"requests\nversion = 1\n",
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with(&format!("{LOCK}:2:")), "{message}");
}

#[test]
fn wrong_types_are_reported_with_their_key() {
    let err = unlocked(&with_deps("requests = 2")).unwrap_err();
    assert_eq!(
        err,
        PoetryErrorKind::InvalidField(FieldError {
            path: PathBuf::from(PYPROJECT),
            key: "tool.poetry.dependencies.requests".to_string(),
            message: "must be a version string or a table such as { version = \"^1.0\" }"
                .to_string(),
        })
    );
    let err = unlocked(&with_deps(
        "requests = { version = \"^2\", extras = \"socks\" }",
    ))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("tool.poetry.dependencies.requests.extras"),
        "{err}"
    );
    // An unquoted dotted name is a nested table in TOML, not a package.
    let err = unlocked(&with_deps("ruamel.yaml = \"*\"")).unwrap_err();
    assert!(
        matches!(&err, PoetryErrorKind::InvalidField(f) if f.key == "tool.poetry.dependencies.ruamel.yaml"),
        "{err:?}"
    );
    assert!(err.to_string().contains("quoted"), "{err}");
    let err = unlocked("[build-system]\nrequires = []\n").unwrap_err();
    assert!(
        matches!(err, PoetryErrorKind::NotPoetryProject { .. }),
        "{err:?}"
    );
}

#[test]
fn detects_poetry_projects() {
    assert!(is_poetry_project("[tool.poetry]\nname = \"x\"\n"));
    assert!(is_poetry_project(
        "[tool.poetry.dependencies]\npython = \"^3.9\"\n"
    ));
    assert!(is_poetry_project(&with_deps("")));
    assert!(!is_poetry_project(
        "[project]\nname = \"x\"\n[tool.setuptools]\n"
    ));
    assert!(!is_poetry_project("[tool]\npoetry = 1\n"));
    assert!(!is_poetry_project(""));
    // Broken TOML still routes to poetry_requirements, which reports the line.
    assert!(is_poetry_project("[tool.poetry]\nname = \n"));
    assert!(!is_poetry_project("[tool.black\n"));
}

// A Poetry 1.1 lock (with `category` and [metadata.files]).
const POETRY1_PYPROJECT: &str = include_str!("../testdata/poetry/poetry1/pyproject.toml");

const POETRY1_LOCK: &str = include_str!("../testdata/poetry/poetry1/poetry.lock");

#[test]
fn poetry1_lock_gives_pinned_main_closure() {
    let install = locked(POETRY1_PYPROJECT, POETRY1_LOCK).unwrap();
    assert_eq!(
        lines(&install),
        [
            "airbyte-cdk==0.51.0",
            "backoff==2.2.1",
            "certifi==2023.7.22",
            "charset-normalizer==3.2.0",
            "click==8.1.7",
            "colorama==0.4.6 ; platform_system == 'Windows'",
            "idna==3.4",
            "pysocks==1.7.1",
            "requests==2.31.0",
            "urllib3==2.0.4",
        ]
    );
    assert!(install.fully_pinned);
}

#[test]
fn optional_dependency_needs_its_extra() {
    let pyproject = POETRY1_PYPROJECT.replace(
        r#"requests = { version = "^2.31.0", extras = ["socks"] }"#,
        r#"requests = "^2.31.0""#,
    );
    let install = locked(&pyproject, POETRY1_LOCK).unwrap();
    assert!(
        !install.requirements.iter().any(|l| l.contains("pysocks")),
        "{install:?}"
    );
    assert!(install
        .requirements
        .contains(&"requests==2.31.0".to_string()));

    // Requesting the root extra pulls in pendulum's subtree.
    let pyproject = POETRY1_PYPROJECT.replace(
        r#"pendulum = { version = "^2.1.2", optional = true }"#,
        r#"pendulum = "^2.1.2""#,
    );
    let install = locked(&pyproject, POETRY1_LOCK).unwrap();
    for line in [
        "pendulum==2.1.2",
        "python-dateutil==2.8.2",
        "pytzdata==2020.1",
        "six==1.16.0",
    ] {
        assert!(
            install.requirements.contains(&line.to_string()),
            "{line} missing: {install:?}"
        );
    }
}

#[test]
fn main_dependency_missing_from_lock() {
    let pyproject =
        POETRY1_PYPROJECT.replace("click = \"^8.1\"", "click = \"^8.1\"\npendulum3 = \"^3.0\"");
    let err = locked(&pyproject, POETRY1_LOCK).unwrap_err();
    assert_eq!(
        err,
        PoetryErrorKind::MissingFromLock {
            lock: PathBuf::from(LOCK),
            pyproject: PathBuf::from(PYPROJECT),
            package: "pendulum3".to_string(),
        }
    );
    let message = err.to_string();
    assert!(
        message.contains("pendulum3") && message.contains("poetry lock"),
        "{message}"
    );
}

#[test]
fn stale_lock_versions_are_reported() {
    let pyproject = POETRY1_PYPROJECT.replace("click = \"^8.1\"", "click = \"^9.0\"");
    match locked(&pyproject, POETRY1_LOCK) {
        Err(PoetryErrorKind::LockOutdated {
            package,
            locked,
            constraint,
            ..
        }) => {
            assert_eq!(
                (package.as_str(), locked.as_str(), constraint.as_str()),
                ("click", "8.1.7", "^9.0")
            );
        }
        other => panic!("expected LockOutdated, got {other:?}"),
    }
}

#[test]
fn locked_package_with_missing_dependency() {
    let lock = POETRY1_LOCK.replace(
        "[[package]]\nname = \"idna\"\nversion = \"3.4\"",
        "[[package]]\nname = \"idna-renamed\"\nversion = \"3.4\"",
    );
    let err = locked(POETRY1_PYPROJECT, &lock).unwrap_err();
    assert_eq!(
        err,
        PoetryErrorKind::LockedDependencyMissing {
            lock: PathBuf::from(LOCK),
            package: "requests".to_string(),
            dependency: "idna".to_string(),
        }
    );
}

#[test]
fn unsupported_lock_version() {
    let lock = POETRY1_LOCK.replace("lock-version = \"1.1\"", "lock-version = \"3.0\"");
    let err = locked(POETRY1_PYPROJECT, &lock).unwrap_err();
    assert!(
        matches!(err, PoetryErrorKind::UnsupportedLockVersion { ref version, .. } if version == "3.0"),
        "{err:?}"
    );
}

// Poetry 2: [project] dependencies and a lock-version 2.1 file with
// `groups` and per-group `markers`.
const POETRY2_PYPROJECT: &str = include_str!("../testdata/poetry/poetry2/pyproject.toml");

const POETRY2_LOCK: &str = include_str!("../testdata/poetry/poetry2/poetry.lock");

#[test]
fn poetry2_lock_with_groups_and_markers() {
    let install = locked(POETRY2_PYPROJECT, POETRY2_LOCK).unwrap();
    assert_eq!(
        lines(&install),
        [
            "airbyte-cdk==6.36.0",
            "certifi==2025.1.31",
            "charset-normalizer==3.4.1",
            "click==8.1.8",
            "colorama==0.4.6 ; platform_system == 'Windows'",
            "idna==3.10",
            "numpy==1.26.4 ; python_full_version < '3.12'",
            "numpy==2.1.3 ; python_full_version >= '3.12'",
            "requests==2.32.3",
            "tzdata==2025.1 ; platform_system == 'Windows' and sys_platform == 'win32'",
            "tzlocal==5.2 ; sys_platform == 'win32'",
            "urllib3==2.3.0",
        ]
    );
    assert!(install.fully_pinned);
}

#[test]
fn poetry2_duplicates_without_separating_markers_fall_back_to_python_versions() {
    let lock = POETRY2_LOCK
        .replace(
            "markers = \"python_version < \\\"3.12\\\"\"\nfiles",
            "files",
        )
        .replace(
            "markers = \"python_version >= \\\"3.12\\\"\"\nfiles",
            "files",
        );
    assert_ne!(lock, POETRY2_LOCK);
    let install = locked(POETRY2_PYPROJECT, &lock).unwrap();
    let numpy: Vec<&str> = lines(&install)
        .into_iter()
        .filter(|l| l.starts_with("numpy"))
        .collect();
    assert_eq!(
        numpy,
        [
            "numpy==1.26.4 ; python_full_version == '3.9.*'",
            "numpy==2.1.3 ; python_full_version >= '3.10'",
        ]
    );
    assert!(install.fully_pinned);
}

#[test]
fn poetry2_project_dependencies_without_lock() {
    let install = unlocked(POETRY2_PYPROJECT).unwrap();
    assert_eq!(
        lines(&install),
        [
            "airbyte-cdk>=6.33,<7.0",
            "click>=8.1",
            "numpy>=1.26",
            "tzlocal>=5.2 ; sys_platform == 'win32'",
        ]
    );
}

#[test]
fn poetry2_tool_poetry_entries_enrich_project_dependencies() {
    let pyproject = r#"[project]
name = "source-example"
version = "0.2.0"
dependencies = ["airbyte-cdk", "requests[socks]>=2.0", "pyjwt ; python_version >= '3.9'"]

[tool.poetry.dependencies]
airbyte-cdk = { git = "https://github.com/airbytehq/airbyte-python-cdk.git", rev = "1a2b3c4" }
requests = "<3"
pyjwt = { version = "^2.8", markers = "sys_platform != 'win32'" }
not-declared-in-project = "^1"
"#;
    let install = unlocked(pyproject).unwrap();
    assert_eq!(
        lines(&install),
        [
            "airbyte-cdk @ git+https://github.com/airbytehq/airbyte-python-cdk.git@1a2b3c4",
            "pyjwt>=2.8,<3.0 ; python_full_version >= '3.9' and sys_platform != 'win32'",
            "requests[socks]>=2.0,<3",
        ]
    );
}

#[test]
fn git_dependency_with_lock_uses_resolved_commit() {
    let pyproject = with_deps(
        r#"airbyte-cdk = { git = "https://github.com/airbytehq/airbyte-python-cdk.git", branch = "main" }"#,
    );
    let lock = include_str!("../testdata/poetry/git/poetry.lock");
    let install = locked(&pyproject, lock).unwrap();
    assert_eq!(
        lines(&install),
        [
            "airbyte-cdk @ git+https://github.com/airbytehq/airbyte-python-cdk.git@3f2c9a1d5e6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d",
            "backoff==2.2.1",
        ]
    );
    assert!(install.fully_pinned);

    // Without the resolved commit the branch is used, which is not a pin.
    let install = locked(
        &pyproject,
        &lock.replace(
            "resolved_reference = \"3f2c9a1d5e6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d\"\n",
            "",
        ),
    )
    .unwrap();
    assert_eq!(
        install.requirements.first().map(String::as_str),
        Some("airbyte-cdk @ git+https://github.com/airbytehq/airbyte-python-cdk.git@main")
    );
    assert!(!install.fully_pinned);

    // A directory source in the lock cannot be installed either.
    let lock = lock.replace("type = \"git\"", "type = \"directory\"");
    match locked(&pyproject, &lock) {
        Err(PoetryErrorKind::UnsupportedDependency { path, package, .. }) => {
            assert_eq!(
                (path.as_path(), package.as_str()),
                (Path::new(LOCK), "airbyte-cdk")
            );
        }
        other => panic!("expected UnsupportedDependency, got {other:?}"),
    }
}

const DUPLICATE_LOCK: &str = include_str!("../testdata/poetry/duplicates/poetry.lock");

#[test]
fn duplicate_versions_split_by_python_versions() {
    let pyproject =
        with_deps("pandas = \"^2.0\"").replace("python = \"^3.9\"", "python = \">=3.8,<3.12\"");
    let install = locked(&pyproject, DUPLICATE_LOCK).unwrap();
    assert_eq!(
        lines(&install),
        [
            "numpy==1.24.4 ; python_full_version == '3.8.*'",
            "numpy==1.26.4 ; python_full_version >= '3.9'",
            "pandas==2.0.3",
        ]
    );
    assert!(install.fully_pinned);
}

#[test]
fn indistinguishable_duplicates_are_all_listed_with_a_comment() {
    let pyproject = with_deps("pandas = \"^2.0\"");
    let lock = DUPLICATE_LOCK.replace("python-versions = \">=3.9\"", "python-versions = \">=3.8\"");
    let install = locked(&pyproject, &lock).unwrap();
    let got = lines(&install);
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(
        got.first()
            .is_some_and(|l| l.starts_with("# ") && l.contains("numpy")),
        "{got:?}"
    );
    assert_eq!(
        got.get(1..),
        Some(&["numpy==1.24.4", "numpy==1.26.4", "pandas==2.0.3"][..])
    );
    assert!(!install.fully_pinned);
}

#[test]
fn conditional_main_dependency_outside_project_python_may_be_unlocked() {
    // importlib-metadata is only for python < 3.8 and the project needs ^3.9.
    let install = locked(POETRY1_PYPROJECT, POETRY1_LOCK).unwrap();
    assert!(!install.requirements.iter().any(|l| l.contains("importlib")));
    // Reachable on supported Pythons yet unlocked: the lock is stale.
    let pyproject = POETRY1_PYPROJECT.replace("python = \"<3.8\"", "python = \">=3.10\"");
    let err = locked(&pyproject, POETRY1_LOCK).unwrap_err();
    assert!(
        matches!(err, PoetryErrorKind::MissingFromLock { ref package, .. } if package == "importlib-metadata"),
        "{err:?}"
    );
}

#[test]
fn markers_propagate_through_conditional_parents() {
    let pyproject = with_deps(
        r#"pywin-helper = { version = "^1", markers = "sys_platform == 'win32'" }
other = "^1""#,
    );
    let lock = include_str!("../testdata/poetry/propagation/poetry.lock");
    let install = locked(&pyproject, lock).unwrap();
    assert_eq!(
        lines(&install),
        [
            "cycle==1.0",
            "other==1.2",
            "pywin-helper==1.0 ; sys_platform == 'win32'",
            "shared==3.0 ; python_full_version < '3.11' or sys_platform == 'win32'",
        ]
    );
}

const FAKER_PYPROJECT: &str = include_str!("../testdata/poetry/source-faker/pyproject.toml");

const POKEAPI_PYPROJECT: &str = include_str!("../testdata/poetry/source-pokeapi/pyproject.toml");

#[test]
fn real_world_connector_pyprojects_without_lock() {
    // pyproject.toml from the airbyte-source-faker 7.2.1 and
    // airbyte-source-pokeapi 0.2.15 sdists on PyPI.
    assert!(is_poetry_project(FAKER_PYPROJECT));
    let faker = unlocked(FAKER_PYPROJECT).unwrap();
    assert_eq!(
        lines(&faker),
        ["airbyte-cdk>=6.61.6,<7.0", "mimesis==6.1.1"]
    );
    assert!(!faker.fully_pinned);

    let pokeapi = unlocked(POKEAPI_PYPROJECT).unwrap();
    assert_eq!(lines(&pokeapi), ["airbyte-cdk>=0,<1"]);
}

#[test]
fn output_is_sorted_by_normalised_name_and_deterministic() {
    let pyproject = with_deps(
        "Zope_Interface = \"*\"\naiohttp = \"^3\"\nPyYAML = \"^6.0\"\n\"ruamel.yaml\" = \"*\"",
    );
    let first = unlocked(&pyproject).unwrap();
    assert_eq!(
        lines(&first),
        [
            "aiohttp>=3,<4",
            "PyYAML>=6.0,<7.0",
            "ruamel.yaml",
            "Zope_Interface"
        ]
    );
    assert_eq!(first, unlocked(&pyproject).unwrap());
    let a = locked(POETRY2_PYPROJECT, POETRY2_LOCK).unwrap();
    assert_eq!(a, locked(POETRY2_PYPROJECT, POETRY2_LOCK).unwrap());
}

#[test]
fn hostile_inputs_do_not_panic() {
    let nasty = [
        "",
        " ",
        "^",
        "~",
        "~=",
        "||",
        "|",
        ",,,",
        "*",
        "x.y",
        "1!",
        "!1",
        "1..2",
        "1.",
        ".1",
        "🦀",
        "^🦀",
        "é1.0",
        "1.0+",
        "1.0+🦀",
        ">=1.0 <",
        "^99999999999999999999999",
        "^18446744073709551615",
        "~18446744073709551615.18446744073709551615",
        "1.0-",
        "1.0a1a2",
        "1.0.post1.post2",
        "===",
        "(",
        ")",
        "\"",
        "'",
        "python_version <",
        "extra ~= 'a'",
        "'a' == 'b'",
        "a == b",
        "not",
        "not in",
    ];
    let none = BTreeSet::new();
    for text in nasty {
        let _ = parse_poetry_constraint(text);
        let _ = markers::python(text);
        let _ = markers::platform(text);
        let _ = markers::parse(text, &none);
        let _ = satisfies(&[text.to_string()], text);
        let _ = unlocked(&with_deps(&format!("foo = {text:?}")));
        let _ = unlocked(&format!(
            "[project]\ndependencies = [{text:?}]\n[tool.poetry]\n"
        ));
        let _ = unlocked(&with_deps(&format!(
            "foo = {{ version = {text:?}, python = {text:?}, markers = {text:?} }}"
        )));
        let _ = is_poetry_project(text);
    }
    let deep = format!(
        "{}python_version < \"3\"{}",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert!(markers::parse(&deep, &none).is_err());
    let err = unlocked(&format!(
        "[project]\ndependencies = [{:?}]\n[tool.poetry]\n",
        format!("six ; {deep}")
    ))
    .unwrap_err();
    assert!(err.to_string().contains("nested"), "{err}");
    for junk in [
        "package = 3",
        "[[package]]\nname = 1",
        "[[package]]\nversion = \"1\"",
        "[metadata]\nlock-version = 2",
    ] {
        assert!(
            locked(&with_deps("requests = \"^2\""), junk).is_err(),
            "{junk}"
        );
    }
}

#[test]
fn a_windows_only_pin_is_not_installed_on_linux_whatever_its_marker_size() {
    // pywin32 is reached through 40 parents, each under its own condition: the union of
    // their markers is large, and used to fall back to "always" past 32 alternatives.
    let parents = 40;
    let mut deps = String::new();
    let mut lock = String::new();
    for i in 0..parents {
        deps.push_str(&format!(
            "parent{i} = {{ version = \"*\", markers = \"platform_release == 'r{i}'\" }}\n"
        ));
        lock.push_str(&format!(
            "[[package]]\nname = \"parent{i}\"\nversion = \"1.0\"\npython-versions = \"*\"\n\
             [package.dependencies]\npywin32 = {{version = \"*\", markers = \"sys_platform == \\\"win32\\\"\"}}\n\n"
        ));
    }
    lock.push_str("[[package]]\nname = \"pywin32\"\nversion = \"306\"\npython-versions = \"*\"\n");
    let install = locked(&with_deps(&deps), &lock).unwrap();
    let line = install
        .requirements
        .iter()
        .find(|l| l.starts_with("pywin32=="))
        .unwrap();
    let (_, marker) = line.split_once(" ; ").expect("pywin32 keeps a marker");
    let marker = markers::parse(marker, &BTreeSet::new()).unwrap();
    let linux = markers::parse("sys_platform == 'linux'", &BTreeSet::new()).unwrap();
    assert!(marker.is_disjoint(&linux), "{line}");
}

#[test]
fn less_than_1_0_post2_accepts_a_locked_1_0a1() {
    let pyproject = with_deps("foo = { version = \"<1.0.post2\", allow-prereleases = true }");
    let lock = "[[package]]\nname = \"foo\"\nversion = \"1.0a1\"\npython-versions = \"*\"\n";
    assert_eq!(lines(&locked(&pyproject, lock).unwrap()), ["foo==1.0a1"]);
}

#[test]
fn greater_than_1_0_does_not_accept_a_locked_1_0_post1() {
    let pyproject = with_deps("foo = \">1.0\"");
    let lock = "[[package]]\nname = \"foo\"\nversion = \"1.0.post1\"\npython-versions = \"*\"\n";
    assert!(
        matches!(
            locked(&pyproject, lock),
            Err(PoetryErrorKind::LockOutdated { .. })
        ),
        "1.0.post1 is not >1.0"
    );
}

const HASHED_LOCK: &str = include_str!("../testdata/poetry/hashed/poetry.lock");

#[test]
fn locks_with_file_hashes_install_with_hashes() {
    let pyproject =
        with_deps("six = \"^1.16\"\ncolorama = { version = \"*\", platform = \"win32\" }");
    let install = locked(&pyproject, HASHED_LOCK).unwrap();
    assert!(
        install.require_hashes && install.fully_pinned,
        "{install:?}"
    );
    assert_eq!(
        lines(&install),
        [
            "colorama==0.4.6 ; sys_platform == 'win32' \\\n    \
             --hash=sha256:08695f5cb7ed6e0531a20572697297273c47b8cae5a63ffc6d6ed5c201be6e44 \\\n    \
             --hash=sha256:4f1d9991f5acc0ca119f9d443620b77f9d6b33703e51011c16baf57afb285fc6",
            "six==1.16.0 \\\n    \
             --hash=sha256:1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926",
        ]
    );
    assert_eq!(install.warnings, Vec::<String>::new());

    // Poetry 1.x keeps them in [metadata.files].
    let legacy = install_from_legacy_files(&pyproject);
    assert!(legacy.require_hashes, "{legacy:?}");
    assert_eq!(lines(&legacy), lines(&install));
}

fn install_from_legacy_files(pyproject: &str) -> PoetryInstall {
    let mut lock: toml::Table = toml::from_str(HASHED_LOCK).unwrap();
    let mut files = toml::Table::new();
    for package in lock["package"].as_array_mut().unwrap() {
        let package = package.as_table_mut().unwrap();
        let name = package["name"].as_str().unwrap().to_string();
        files.insert(name, package.remove("files").unwrap());
    }
    lock["metadata"]
        .as_table_mut()
        .unwrap()
        .insert("files".into(), toml::Value::Table(files));
    locked(pyproject, &toml::to_string(&lock).unwrap()).unwrap()
}

#[test]
fn a_lock_missing_some_hashes_installs_without_hash_checking_and_says_so() {
    let install = locked(POETRY2_PYPROJECT, POETRY2_LOCK).unwrap();
    assert!(!install.require_hashes);
    assert!(!install.requirements.iter().any(|l| l.contains("--hash")));
    assert!(
        install
            .warnings
            .iter()
            .any(|w| w.contains("no file hashes for") && w.contains("certifi")),
        "{:?}",
        install.warnings
    );
    // Without a lock there is nothing to verify, and nothing to say.
    assert!(unlocked(POETRY2_PYPROJECT).unwrap().warnings.is_empty());
}

#[test]
fn a_stale_content_hash_is_a_warning() {
    let pyproject =
        with_deps("six = \"^1.16\"\ncolorama = { version = \"*\", platform = \"win32\" }");
    let fresh = locked(&pyproject, HASHED_LOCK).unwrap();
    assert!(fresh.warnings.is_empty(), "{:?}", fresh.warnings);
    let edited = pyproject.replace("six = \"^1.16\"", "six = \">=1.16\"");
    let stale = locked(&edited, HASHED_LOCK).unwrap();
    assert_eq!(
        lines(&stale),
        lines(&fresh),
        "the lock is still what is installed"
    );
    assert!(
        stale
            .warnings
            .iter()
            .any(|w| w.contains("content-hash") && w.contains(LOCK) && w.contains("poetry lock")),
        "{:?}",
        stale.warnings
    );
}
