//! A declared version as a build plan, so base images build on the same executor and cache
//! as connectors, and their Dockerfiles are rendered from exactly what gets built.
//!
//! Every value spliced into a shell command was checked against a strict character set when
//! the declarations were read (see `declare`), so the scripts here need no quoting.

use super::declare::{Family, FamilyVersion, Root, RootSource};
use crate::plan::python::{pip_build_env, pip_caches};
use crate::plan::{to_dockerfile, Action, Base, BuildPlan, ConfigOp, Run, Step};

/// Step names, as progress shows them.
pub const TIMEZONE_STEP: &str = "timezone";
pub const PACKAGES_STEP: &str = "system packages";
pub const PIP_STEP: &str = "pip and poetry";
pub const USER_STEP: &str = "user";

fn shell(script: String) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script]
}

fn run(args: Vec<String>, network: Option<&str>, build_env: Vec<(String, String)>) -> Run {
    Run {
        args,
        scratch_files: vec![],
        network: network.map(str::to_string),
        caches: vec![],
        build_env,
        use_entrypoint: false,
        expect: Default::default(),
        shell: None,
        tools: vec![],
    }
}

/// The plan that builds `v` on `base`; `network_fingerprint` keys the steps that download.
pub fn plan_version(
    family: &Family,
    v: &FamilyVersion,
    base: Base,
    network_fingerprint: &str,
) -> BuildPlan {
    let d = &v.decl;
    let mut steps = Vec::new();
    let mut push = |name: &str, action: Action| {
        steps.push(Step {
            name: name.into(),
            action,
        })
    };
    let tz = &d.timezone;
    push(
        TIMEZONE_STEP,
        Action::Run(run(
            shell(format!(
                "test -e /usr/share/zoneinfo/{tz} && ln -snf /usr/share/zoneinfo/{tz} /etc/localtime && echo {tz} > /etc/timezone"
            )),
            None,
            vec![],
        )),
    );
    if !d.system_packages.is_empty() {
        push(
            PACKAGES_STEP,
            Action::Run(run(
                shell(format!(
                    "apt-get update && apt-get install -y --no-install-recommends {} && rm -rf /var/lib/apt/lists/*",
                    d.system_packages.join(" ")
                )),
                Some(network_fingerprint),
                vec![("DEBIAN_FRONTEND".into(), "noninteractive".into())],
            )),
        );
    }
    let mut pip = run(
        ["python", "-m", "pip", "install"]
            .iter()
            .map(|s| s.to_string())
            .chain([format!("pip=={}", d.pip), format!("poetry=={}", d.poetry)])
            .collect(),
        Some(network_fingerprint),
        pip_build_env(),
    );
    pip.caches = pip_caches();
    push(PIP_STEP, Action::Run(pip));
    for (name, value) in &d.env {
        push(
            "env",
            Action::Config(ConfigOp::Env {
                name: name.clone(),
                value: value.clone(),
                expand: false,
            }),
        );
    }
    let u = &d.user;
    let mut dirs = vec![u.home.clone()];
    dirs.extend(u.owns.iter().filter(|o| **o != u.home).cloned());
    let mut script = format!(
        "groupadd --gid {gid} {name} && useradd --uid {uid} --gid {gid} --home-dir {home} --no-create-home --shell /bin/bash {name} && mkdir -p {dirs}",
        gid = u.gid,
        uid = u.uid,
        name = u.name,
        home = u.home,
        dirs = dirs.join(" "),
    );
    if !u.owns.is_empty() {
        script.push_str(&format!(
            " && chown {}:{} {}",
            u.uid,
            u.gid,
            u.owns.join(" ")
        ));
    }
    push(USER_STEP, Action::Run(run(shell(script), None, vec![])));

    BuildPlan {
        connector: format!("{}:{}", short_name(family), v.version),
        context_dir: family.path.parent().map(Into::into).unwrap_or_default(),
        output_tag: family.local_tag(&v.version),
        customization: None,
        base,
        steps,
        smoke_test: None,
        warnings: vec![],
    }
}

/// `python-connector-base` for `airbyte/python-connector-base`.
pub fn short_name(family: &Family) -> &str {
    family
        .repository
        .rsplit('/')
        .next()
        .unwrap_or(&family.repository)
}

/// The base as the declarations alone determine it: a debootstrap root's digest is
/// machine-specific, so it is left out (documentation must read the same everywhere).
pub fn declared_base(root: &Root) -> Base {
    match &root.source {
        RootSource::Reference(image) => Base::Image {
            reference: image.to_string(),
            pull: image.pinned().unwrap_or_else(|| image.to_string()),
            digest: image.digest.as_ref().map(ToString::to_string),
        },
        RootSource::Debootstrap {
            repository, tag, ..
        } => Base::Image {
            reference: format!("{repository}:{tag}"),
            pull: format!("{repository}:{tag}"),
            digest: None,
        },
    }
}

/// The Dockerfile of `v`, for reading: the same plan the tool builds, from the declared base.
pub fn dockerfile(family: &Family, v: &FamilyVersion, root: &Root) -> String {
    let plan = plan_version(family, v, declared_base(root), "");
    let mut header = vec![
        format!("{}:{}", family.repository, v.version),
        format!(
            "Generated by `connector-build base-images docs` from {}; for reading only:",
            family
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        "connector-build builds the image from the same plan, without this file.".into(),
    ];
    if let RootSource::Debootstrap { .. } = root.source {
        header.push(format!(
            "The root image `{}` is built from Debian packages on each machine",
            root.name
        ));
        header.push(
            "(`connector-build base-images root build`); its digest is machine-specific.".into(),
        );
    }
    to_dockerfile::render(&plan, &header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base_images::declare::Declarations;

    #[test]
    fn steps_follow_the_declaration() {
        let d = Declarations::embedded().unwrap();
        let family = d.family("python").unwrap();
        let v = family.version(Some("1.0.0")).unwrap();
        let root = d.root(&v.decl.root).unwrap();
        let plan = plan_version(family, v, declared_base(root), "index:x");
        let names: Vec<&str> = plan.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                TIMEZONE_STEP,
                PACKAGES_STEP,
                PIP_STEP,
                "env",
                "env",
                "env",
                USER_STEP
            ]
        );
        assert_eq!(plan.output_tag, "airbyte/python-connector-base:1.0.0");
        assert!(plan.smoke_test.is_none());
        let text = dockerfile(family, v, root);
        assert!(
            text.contains("FROM connector-build/debian-python:3.11-bookworm\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "RUN [\"python\",\"-m\",\"pip\",\"install\",\"pip==23.2.1\",\"poetry==1.6.1\"]"
            ),
            "{text}"
        );
        assert!(
            text.contains("ENV POETRY_VIRTUALENVS_CREATE=false\n"),
            "{text}"
        );
        assert!(text.contains("useradd --uid 1000 --gid 1000"), "{text}");
        assert!(
            !text.contains("USER "),
            "the default user stays root: {text}"
        );
    }

    #[test]
    fn a_changed_pin_changes_the_install_key_only_from_there() {
        let d = Declarations::embedded().unwrap();
        let family = d.family("python").unwrap();
        let v = family.version(None).unwrap();
        let root = d.root(&v.decl.root).unwrap();
        let mut changed = v.clone();
        changed.decl.pip = "24.0".into();
        let a = plan_version(family, v, declared_base(root), "index:x").keys();
        let b = plan_version(family, &changed, declared_base(root), "index:x").keys();
        assert_eq!(a.steps[..2], b.steps[..2]);
        assert_ne!(a.steps[2], b.steps[2]);
    }
}
