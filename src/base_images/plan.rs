//! A declared version as a build plan, so base images build on the same executor and cache
//! as connectors, and their Dockerfiles are rendered from exactly what gets built.
//!
//! Every value spliced into a shell command was checked against a strict character set when
//! the declarations were read (see `declare`), so the scripts here need no quoting.

use crate::model::families::{
    Declarations, Family, FamilyKind, FamilyVersion, Root, RootSource, UserDecl,
};
use crate::plan::java::JAVA_HOME_DIR;
use crate::plan::manifest_only::MANIFEST_DIR;
use crate::plan::python::{installer_parts, pip_build_env, pip_caches, InstallerChoice};
use crate::plan::{
    to_dockerfile, Action, Base, BuildPlan, ConfigOp, FileEntry, FileSource, Owner, Run, Step,
    CODE_DIR,
};

/// Step names, as progress shows them.
pub const TIMEZONE_STEP: &str = "timezone";
pub const PACKAGES_STEP: &str = "system packages";
pub const PIP_STEP: &str = "pip and poetry";
pub const USER_STEP: &str = "user";
pub const CDK_STEP: &str = "airbyte-cdk";
pub const LAYOUT_STEP: &str = "declarative runtime";
pub const BASE_SH_STEP: &str = "base.sh";

/// The Java base image's entrypoint: runs the distribution named by `APPLICATION`.
pub const JAVA_BASE_SH: &str = "/airbyte/base.sh";

/// `main.py` of the declarative image, as upstream's: the CDK's run module, copied next to it.
const DECLARATIVE_MAIN: &str =
    "from source_declarative_manifest.run import run\n\nif __name__ == \"__main__\":\n    run()\n";

/// `/airbyte/base.sh`: a Gradle distribution's start script is `bin/<application name>`.
const JAVA_BASE_SCRIPT: &str = r#"#!/usr/bin/env bash
# Runs the connector's Gradle distribution, unpacked into /airbyte: bin/$APPLICATION.
set -euo pipefail
if [ -z "${APPLICATION:-}" ]; then
    echo "base.sh: APPLICATION is not set; the connector image names its distribution with it" >&2
    exit 64
fi
exec "/airbyte/bin/$APPLICATION" "$@"
"#;

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
        secrets: vec![],
    }
}

/// The plan that builds `v` on `base`; `network_fingerprint` keys the steps that download,
/// `installer` installs the CDK of a declarative family.
pub fn plan_version(
    family: &Family,
    v: &FamilyVersion,
    base: Base,
    network_fingerprint: &str,
    installer: &InstallerChoice,
) -> BuildPlan {
    let mut steps = Vec::new();
    let mut push = |name: &str, action: Action| {
        steps.push(Step {
            name: name.into(),
            action,
        })
    };
    let mut smoke_test = None;
    match family.kind {
        FamilyKind::Python => python_steps(v, network_fingerprint, &mut push),
        FamilyKind::Declarative => {
            declarative_steps(v, network_fingerprint, installer, &mut push);
            smoke_test = Some(crate::plan::spec_smoke_test());
        }
        FamilyKind::Java => java_steps(v, network_fingerprint, &mut push),
    }
    BuildPlan {
        connector: format!("{}:{}", short_name(family), v.version),
        context_dir: family.path.parent().map(Into::into).unwrap_or_default(),
        output_tag: family.local_tag(&v.version),
        customization: None,
        platform: None,
        base,
        steps,
        smoke_test,
        warnings: vec![],
    }
}

fn timezone_step(tz: &str) -> Action {
    Action::Run(run(
        shell(format!(
            "test -e /usr/share/zoneinfo/{tz} && ln -snf /usr/share/zoneinfo/{tz} /etc/localtime && echo {tz} > /etc/timezone"
        )),
        None,
        vec![],
    ))
}

/// The timezone, then the declared Debian packages.
fn system_steps(v: &FamilyVersion, network_fingerprint: &str, push: &mut impl FnMut(&str, Action)) {
    let d = &v.decl;
    push(TIMEZONE_STEP, timezone_step(&d.timezone));
    if !d.system_packages.is_empty() {
        push(
            PACKAGES_STEP,
            packages_step(&d.system_packages, network_fingerprint),
        );
    }
}

fn packages_step(packages: &[String], network_fingerprint: &str) -> Action {
    Action::Run(run(
        shell(format!(
            "apt-get update && apt-get install -y --no-install-recommends {} && rm -rf /var/lib/apt/lists/*",
            packages.join(" ")
        )),
        Some(network_fingerprint),
        vec![("DEBIAN_FRONTEND".into(), "noninteractive".into())],
    ))
}

fn env_steps(v: &FamilyVersion, push: &mut impl FnMut(&str, Action)) {
    for (name, value) in &v.decl.env {
        push(
            "env",
            Action::Config(ConfigOp::Env {
                name: name.clone(),
                value: value.clone(),
                expand: false,
            }),
        );
    }
}

/// Creates the user and the folders it owns.
fn user_step(u: &UserDecl) -> Action {
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
    Action::Run(run(shell(script), None, vec![]))
}

fn inline_file(path: &str, contents: &str, mode: u32, owner: Option<Owner>) -> FileEntry {
    FileEntry {
        path: path.into(),
        source: FileSource::Inline(contents.into()),
        mode,
        sha256: crate::plan::canonical::sha256_hex(contents.as_bytes()),
        owner,
    }
}

/// The CDK from the package index, `main.py`, the CDK's run module and generic spec laid out
/// as upstream's image has them, owned by the user, who runs the image.
fn declarative_steps(
    v: &FamilyVersion,
    network_fingerprint: &str,
    installer: &InstallerChoice,
    push: &mut impl FnMut(&str, Action),
) {
    let d = &v.decl;
    let u = &d.user;
    let (installer, tools, caches, build_env) = installer_parts(installer);
    let mut args = installer.install_command();
    args.push(format!("airbyte-cdk=={}", d.cdk));
    push(
        CDK_STEP,
        Action::Run(Run {
            args,
            scratch_files: vec![],
            network: Some(network_fingerprint.to_string()),
            caches,
            build_env,
            use_entrypoint: false,
            expect: Default::default(),
            shell: None,
            tools,
            secrets: vec![],
        }),
    );
    push(
        "workdir",
        Action::Config(ConfigOp::Workdir(CODE_DIR.into())),
    );
    let owner = Some(Owner {
        uid: u.uid.into(),
        gid: u.gid.into(),
    });
    push(
        LAYOUT_STEP,
        Action::Files {
            dest: CODE_DIR.into(),
            files: vec![
                inline_file("main.py", DECLARATIVE_MAIN, 0o644, owner),
                inline_file("source_declarative_manifest/__init__.py", "", 0o644, owner),
            ],
        },
    );
    env_steps(v, push);
    // The run module and spec.json come from the installed CDK, wherever pip put it.
    let script = format!(
        "set -e; src=$(python -c 'import os, airbyte_cdk.cli.source_declarative_manifest as m; print(os.path.dirname(m.__file__))'); cp \"$src/_run.py\" {MANIFEST_DIR}/run.py; cp \"$src/spec.json\" {MANIFEST_DIR}/spec.json; chown -R {uid}:{gid} {home}",
        uid = u.uid,
        gid = u.gid,
        home = u.home,
    );
    push(LAYOUT_STEP, Action::Run(run(shell(script), None, vec![])));
    let entrypoint = vec!["python".to_string(), format!("{CODE_DIR}/main.py")];
    push(
        "entrypoint",
        Action::Config(ConfigOp::Env {
            name: "AIRBYTE_ENTRYPOINT".into(),
            value: entrypoint.join(" "),
            expand: false,
        }),
    );
    push(
        "entrypoint",
        Action::Config(ConfigOp::Entrypoint(entrypoint)),
    );
    push("user", Action::Config(ConfigOp::User(u.name.clone())));
}

/// Timezone, packages, the user, and `/airbyte/base.sh` as the entrypoint.
fn java_steps(v: &FamilyVersion, network_fingerprint: &str, push: &mut impl FnMut(&str, Action)) {
    let d = &v.decl;
    system_steps(v, network_fingerprint, push);
    env_steps(v, push);
    push(USER_STEP, user_step(&d.user));
    push(
        "workdir",
        Action::Config(ConfigOp::Workdir(JAVA_HOME_DIR.into())),
    );
    push(
        BASE_SH_STEP,
        Action::Files {
            dest: JAVA_HOME_DIR.into(),
            files: vec![inline_file("base.sh", JAVA_BASE_SCRIPT, 0o755, None)],
        },
    );
    push(
        "entrypoint",
        Action::Config(ConfigOp::Entrypoint(vec![JAVA_BASE_SH.into()])),
    );
}

fn python_steps(v: &FamilyVersion, network_fingerprint: &str, push: &mut impl FnMut(&str, Action)) {
    let d = &v.decl;
    system_steps(v, network_fingerprint, push);
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
    env_steps(v, push);
    push(USER_STEP, user_step(&d.user));
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

/// The base a version builds on as the declarations alone determine it: its root's, or for a
/// declarative family the base family's image by tag (its digest is machine-specific too).
pub fn declared_base_of(declarations: &Declarations, v: &FamilyVersion) -> Option<Base> {
    match &v.decl.base {
        Some(b) => {
            let base = declarations.family(&b.family).ok()?;
            let tag = format!("{}:{}", base.repository, b.version);
            Some(Base::Image {
                reference: tag.clone(),
                pull: tag,
                digest: None,
            })
        }
        None => declarations.root(&v.decl.root).map(declared_base),
    }
}

/// The installer the declarative family's CDK step uses in documentation: uv, as the set-up
/// has it (its identity is not part of the text).
pub fn documented_installer() -> InstallerChoice {
    InstallerChoice::Uv {
        identity: String::new(),
    }
}

/// The Dockerfile of `v`, for reading: the same plan the tool builds, from the declared base.
pub fn dockerfile(declarations: &Declarations, family: &Family, v: &FamilyVersion) -> String {
    let Some(base) = declared_base_of(declarations, v) else {
        return String::new();
    };
    let plan = plan_version(family, v, base, "", &documented_installer());
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
    match (declarations.root(&v.decl.root), &v.decl.base) {
        (Some(root), _) if matches!(root.source, RootSource::Debootstrap { .. }) => {
            header.push(format!(
                "The root image `{}` is built from Debian packages on each machine",
                root.name
            ));
            header.push(
                "(`connector-build base-images root build`); its digest is machine-specific."
                    .into(),
            );
        }
        (_, Some(b)) => {
            header.push(format!(
                "It builds on {} {} as published on each machine (by digest).",
                b.family, b.version
            ));
        }
        _ => {}
    }
    to_dockerfile::render(&plan, &header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::families::Declarations;

    #[test]
    fn steps_follow_the_declaration() {
        let d = Declarations::embedded().unwrap();
        let family = d.family("python").unwrap();
        let v = family.version(Some("1.0.0")).unwrap();
        let root = d.root(&v.decl.root).unwrap();
        let plan = plan_version(
            family,
            v,
            declared_base(root),
            "index:x",
            &InstallerChoice::Pip,
        );
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
        let text = dockerfile(&d, family, v);
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
        let a = plan_version(
            family,
            v,
            declared_base(root),
            "index:x",
            &InstallerChoice::Pip,
        )
        .keys();
        let b = plan_version(
            family,
            &changed,
            declared_base(root),
            "index:x",
            &InstallerChoice::Pip,
        )
        .keys();
        assert_eq!(a.steps[..2], b.steps[..2]);
        assert_ne!(a.steps[2], b.steps[2]);
    }
}
