//! The `build_customization.py` a migration generates: what a Dockerfile did beyond the
//! standard procedure, and only that, as Dagger-style hooks.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use super::compare::{Difference, AIRBYTE_ENTRYPOINT};
use crate::model::dockerfile::{package_name, Dockerfile};
use crate::plan::python::DEFAULT_MAIN_FILE;
use crate::plan::CODE_DIR;

/// What the generated hook carries over.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Customization {
    /// `MAIN_FILE_NAME`: the Dockerfile's entrypoint ran another file than main.py.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_file: Option<String>,
    /// Installed with apt-get before the dependencies, as the Dockerfile did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    pub no_install_recommends: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_args: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// The file a `python /airbyte/integration_code/<file>` entrypoint runs, when it is a file of
/// the connector folder other than main.py: the hook's `MAIN_FILE_NAME`.
pub fn other_main_file(entrypoint: &[String], dir: &Path) -> Option<String> {
    match entrypoint {
        [python, script] if python == "python" || python == "python3" => {
            let file = script.strip_prefix(CODE_DIR)?.strip_prefix('/')?;
            (file != DEFAULT_MAIN_FILE
                && !file.contains('/')
                && file.ends_with(".py")
                && dir.join(file).is_file())
            .then(|| file.to_string())
        }
        _ => None,
    }
}

impl Customization {
    /// What to carry over so that the image built from the base image matches the
    /// Dockerfile's, given how a build with `main_file` and no other customization differed
    /// from it. Differences no hook can carry (e.g. `spec` output itself) are left for the
    /// second comparison to report.
    pub fn derive(
        differences: &[Difference],
        main_file: Option<String>,
        dockerfile: &Dockerfile,
    ) -> Customization {
        let main = main_file.as_deref().unwrap_or(DEFAULT_MAIN_FILE);
        let standard = vec!["python".to_string(), format!("{CODE_DIR}/{main}")];
        let mut c = Customization {
            main_file,
            ..Default::default()
        };
        for d in differences {
            match d {
                Difference::Entrypoint { dockerfile, .. } if *dockerfile != standard => {
                    c.entrypoint = Some(dockerfile.clone());
                }
                Difference::DefaultArgs { dockerfile, .. } if !dockerfile.is_empty() => {
                    c.default_args = Some(dockerfile.clone());
                }
                Difference::Env {
                    name,
                    dockerfile: Some(value),
                    ..
                } if !(name == AIRBYTE_ENTRYPOINT && *value == standard.join(" ")) => {
                    c.env.push((name.clone(), value.clone()));
                }
                Difference::Label {
                    name,
                    dockerfile: Some(value),
                    ..
                } if name != "io.airbyte.version" && name != "io.airbyte.name" => {
                    c.labels.push((name.clone(), value.clone()));
                }
                Difference::Workdir { dockerfile, .. } => c.workdir = Some(dockerfile.clone()),
                Difference::User { dockerfile, .. } => {
                    c.user = Some(if dockerfile.is_empty() {
                        "root".into()
                    } else {
                        dockerfile.clone()
                    });
                }
                Difference::MissingPackages { packages } => {
                    let missing: BTreeSet<&str> = packages.iter().map(String::as_str).collect();
                    let apt = dockerfile.apt_installs();
                    c.packages = apt
                        .packages
                        .iter()
                        .filter(|p| missing.contains(package_name(p)))
                        .cloned()
                        .collect();
                    c.no_install_recommends = apt.no_install_recommends;
                }
                _ => {}
            }
        }
        c
    }

    pub fn is_empty(&self) -> bool {
        self.main_file.is_none()
            && self.packages.is_empty()
            && self.env.is_empty()
            && self.labels.is_empty()
            && self.entrypoint.is_none()
            && self.default_args.is_none()
            && self.workdir.is_none()
            && self.user.is_none()
    }

    /// The Python module.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# Generated by `connector-build migrate-to-base-image` from the Dockerfile this connector\n\
             # was built with: only what that Dockerfile did beyond the standard build procedure.\n\
             from __future__ import annotations\n\
             \n\
             from typing import TYPE_CHECKING\n\
             \n\
             if TYPE_CHECKING:\n    from dagger import Container\n",
        );
        if let Some(main) = &self.main_file {
            out.push_str(&format!(
                "\n# The Dockerfile's entrypoint ran {main} instead of main.py.\nMAIN_FILE_NAME = {}\n",
                py(main)
            ));
        }
        if !self.packages.is_empty() {
            let flags = if self.no_install_recommends {
                "-y --no-install-recommends"
            } else {
                "-y"
            };
            let script = format!(
                "apt-get update && apt-get install {flags} {} && rm -rf /var/lib/apt/lists/*",
                self.packages.join(" ")
            );
            out.push_str(&format!(
                "\n\nasync def pre_connector_install(base_image_container: Container) -> Container:\n    \
                 # System packages the Dockerfile installed with apt-get.\n    \
                 return base_image_container.with_exec([\"sh\", \"-c\", {}])\n",
                py(&script)
            ));
        }
        let mut calls: Vec<String> = Vec::new();
        for (name, value) in &self.env {
            calls.push(format!("with_env_variable({}, {})", py(name), py(value)));
        }
        for (name, value) in &self.labels {
            calls.push(format!("with_label({}, {})", py(name), py(value)));
        }
        if let Some(e) = &self.entrypoint {
            calls.push(format!("with_entrypoint({})", py_list(e)));
        }
        if let Some(a) = &self.default_args {
            calls.push(format!("with_default_args({})", py_list(a)));
        }
        if let Some(w) = &self.workdir {
            calls.push(format!("with_workdir({})", py(w)));
        }
        if let Some(u) = &self.user {
            calls.push(format!("with_user({})", py(u)));
        }
        if !calls.is_empty() {
            out.push_str(
                "\n\nasync def post_connector_install(connector_container: Container) -> Container:\n    \
                 # What the Dockerfile set on the image.\n    \
                 return (\n        connector_container",
            );
            for call in &calls {
                out.push_str(&format!("\n        .{call}"));
            }
            out.push_str("\n    )\n");
        }
        out
    }
}

/// A Python string literal (JSON's escapes are Python's).
fn py(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn py_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items.iter().map(|s| py(s)).collect::<Vec<_>>().join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::compare::SpecResult;

    #[test]
    fn zendesk_chat_style() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main_dev.py"), "").unwrap();
        let dockerfile = Dockerfile::parse(
            "FROM x\nRUN apt-get update && apt-get install -y --no-install-recommends jq bash\n",
        );
        let env = |name: &str, value: &str| Difference::Env {
            name: name.into(),
            dockerfile: Some(value.into()),
            base_image: None,
        };
        let entrypoint = vec!["python".to_string(), format!("{CODE_DIR}/main_dev.py")];
        let main_file = other_main_file(&entrypoint, dir.path());
        assert_eq!(main_file.as_deref(), Some("main_dev.py"));
        assert_eq!(
            other_main_file(
                &["python".into(), format!("{CODE_DIR}/main.py")],
                dir.path()
            ),
            None
        );
        // The build with MAIN_FILE_NAME already has the entrypoint right.
        let differences = vec![
            env("AIRBYTE_IMPL_MODULE", "source_x"),
            env("AIRBYTE_IMPL_PATH", "SourceX"),
            // bash is in the base image already: only jq (and what it pulls in) is missing.
            Difference::MissingPackages {
                packages: vec!["jq".into(), "libjq1".into()],
            },
        ];
        let c = Customization::derive(&differences, main_file, &dockerfile);
        assert_eq!(c.main_file.as_deref(), Some("main_dev.py"));
        assert_eq!(c.packages, ["jq"]);
        assert_eq!(
            c.env,
            [
                ("AIRBYTE_IMPL_MODULE".to_string(), "source_x".to_string()),
                ("AIRBYTE_IMPL_PATH".to_string(), "SourceX".to_string())
            ]
        );
        assert_eq!(c.entrypoint, None);
        let text = c.render();
        assert_eq!(
            text,
            r#"# Generated by `connector-build migrate-to-base-image` from the Dockerfile this connector
# was built with: only what that Dockerfile did beyond the standard build procedure.
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagger import Container

# The Dockerfile's entrypoint ran main_dev.py instead of main.py.
MAIN_FILE_NAME = "main_dev.py"


async def pre_connector_install(base_image_container: Container) -> Container:
    # System packages the Dockerfile installed with apt-get.
    return base_image_container.with_exec(["sh", "-c", "apt-get update && apt-get install -y --no-install-recommends jq && rm -rf /var/lib/apt/lists/*"])


async def post_connector_install(connector_container: Container) -> Container:
    # What the Dockerfile set on the image.
    return (
        connector_container
        .with_env_variable("AIRBYTE_IMPL_MODULE", "source_x")
        .with_env_variable("AIRBYTE_IMPL_PATH", "SourceX")
    )
"#
        );
    }

    #[test]
    fn nothing_to_carry_is_empty() {
        let c = Customization::derive(
            &[Difference::Spec {
                dockerfile: SpecResult::Failed {
                    exit_code: 1,
                    output: vec![],
                },
                base_image: SpecResult::Failed {
                    exit_code: 2,
                    output: vec![],
                },
            }],
            None,
            &Dockerfile::parse("FROM x\nRUN apt-get install -y --no-install-recommends bash\n"),
        );
        assert!(c.is_empty(), "{c:?}");
        // An entrypoint that is not `python <main file>` is set as it was.
        let c = Customization::derive(
            &[Difference::Entrypoint {
                dockerfile: vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "exec python main.py \"$@\"".into(),
                ],
                base_image: vec![],
            }],
            None,
            &Dockerfile::default(),
        );
        assert!(c.render().contains(
            ".with_entrypoint([\"/bin/sh\", \"-c\", \"exec python main.py \\\"$@\\\"\"])"
        ));
    }
}
