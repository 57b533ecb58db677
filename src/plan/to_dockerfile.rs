//! A plan written as a Dockerfile, for people to read (documentation, debugging).
//!
//! The tool never builds from it: install-only settings (package index, CA bundle, caches)
//! travel outside the image and have no Dockerfile form, so they are left out.

use super::{Action, Base, BuildPlan, ConfigOp, Run};

/// The Dockerfile text of `plan`, with `header` lines as leading comments.
pub fn render(plan: &BuildPlan, header: &[String]) -> String {
    let mut out = String::new();
    for line in header {
        out.push_str(&format!("# {line}\n").replace("# \n", "#\n"));
    }
    match &plan.base {
        Base::Image {
            reference, digest, ..
        } => {
            let pinned = match digest {
                Some(d) if !reference.contains('@') => format!("{reference}@{d}"),
                _ => reference.clone(),
            };
            out.push_str(&format!("FROM {pinned}\n"));
        }
        Base::Dockerfile { dockerfile, .. } => {
            out.push_str(&format!("# built from the connector's own {dockerfile}\n"));
        }
    }
    for step in &plan.steps {
        match &step.action {
            Action::Config(op) => out.push_str(&config_line(op)),
            Action::Files { dest, files } => {
                let mut names: Vec<&str> = Vec::new();
                for f in files {
                    match &f.source {
                        // ADD unpacks a local tar; Docker has no strip, hence the note.
                        crate::plan::FileSource::Unpack { archive, strip } => out.push_str(
                            &format!("# unpacked with its first {strip} path component(s) stripped\nADD {archive} {dest}/\n"),
                        ),
                        _ => names.push(f.path.as_str()),
                    }
                }
                if !names.is_empty() {
                    out.push_str(&format!("COPY {} {dest}/\n", names.join(" ")));
                }
            }
            Action::Run(run) => out.push_str(&run_line(run)),
        }
    }
    out
}

fn run_line(run: &Run) -> String {
    match run.args.as_slice() {
        [sh, c, script] if (sh == "/bin/sh" || sh == "sh") && c == "-c" => {
            format!("RUN {script}\n")
        }
        args => format!("RUN {}\n", json_array(args)),
    }
}

fn config_line(op: &ConfigOp) -> String {
    match op {
        ConfigOp::Env { name, value, .. } => format!("ENV {name}={}\n", quote(value)),
        ConfigOp::UnsetEnv(name) => format!("ENV {name}=\n"),
        ConfigOp::Workdir(w) => format!("WORKDIR {w}\n"),
        ConfigOp::User(u) => format!("USER {u}\n"),
        ConfigOp::Entrypoint(e) | ConfigOp::EntrypointKeepingArgs(e) => {
            format!("ENTRYPOINT {}\n", json_array(e))
        }
        ConfigOp::Cmd(c) => format!("CMD {}\n", json_array(c)),
        ConfigOp::Label { name, value } => format!("LABEL {name}={}\n", quote(value)),
        ConfigOp::ExposePort { port, protocol } => format!("EXPOSE {port}/{protocol}\n"),
    }
}

fn json_array(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_default()
}

/// Bare when it is a plain word, double-quoted otherwise.
fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:,+@%".contains(c));
    if plain {
        value.to_string()
    } else {
        serde_json::to_string(value).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Step;

    #[test]
    fn shell_and_exec_forms() {
        let run = |args: &[&str]| Step {
            name: "x".into(),
            action: Action::Run(Run {
                args: args.iter().map(|s| s.to_string()).collect(),
                scratch_files: vec![],
                network: Some("index:x".into()),
                caches: vec![],
                build_env: vec![("PIP_CACHE_DIR".into(), "/c".into())],
                use_entrypoint: false,
                expect: Default::default(),
                shell: None,
                tools: vec![],
                secrets: vec![],
            }),
        };
        let plan = BuildPlan {
            connector: "c".into(),
            context_dir: "/x".into(),
            output_tag: "a:b".into(),
            customization: None,
            platform: None,
            warnings: vec![],
            base: Base::Image {
                reference: "r/x:1".into(),
                pull: "r/x@sha256:00".into(),
                digest: Some("sha256:00".into()),
            },
            steps: vec![
                run(&["/bin/sh", "-c", "echo hi && true"]),
                run(&["python", "-m", "pip", "install", "pip==1"]),
                Step {
                    name: "env".into(),
                    action: Action::Config(ConfigOp::Env {
                        name: "A".into(),
                        value: "a b".into(),
                        expand: false,
                    }),
                },
            ],
            smoke_test: None,
        };
        assert_eq!(
            render(&plan, &["generated".into(), String::new()]),
            "# generated\n#\nFROM r/x:1@sha256:00\nRUN echo hi && true\nRUN [\"python\",\"-m\",\"pip\",\"install\",\"pip==1\"]\nENV A=\"a b\"\n"
        );
    }
}
