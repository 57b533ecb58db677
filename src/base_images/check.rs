//! Sanity checks: does an image hold what its version declares?
//!
//! The image is probed in two containers without network: one as root for versions,
//! timezone and the user's ids, one as the declared user for what it may write. Each probe
//! prints one tagged line, so a missing program is a failed check, not an error.

use std::collections::HashMap;

use serde::Serialize;

use super::plan::JAVA_BASE_SH;
use crate::engine::{ContainerSpec, Engine, EngineError, ImageInfo};
use crate::execute::network::shell_quote;
use crate::model::families::{Family, FamilyKind, FamilyVersion};
use crate::plan::manifest_only::MANIFEST_DIR;
use crate::plan::CODE_DIR;

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub expected: String,
    pub actual: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub family: String,
    pub version: String,
    pub image: String,
    pub image_id: String,
    pub checks: Vec<Check>,
}

impl CheckReport {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    pub fn failed(&self) -> usize {
        self.checks.iter().filter(|c| !c.ok).count()
    }

    /// One line per check: `ok`/`FAIL`, its name, and what was found (and expected, on a
    /// failure).
    pub fn render(&self) -> String {
        let id = self
            .image_id
            .strip_prefix("sha256:")
            .unwrap_or(&self.image_id);
        let mut out = format!(
            "{} {}: {} ({})\n",
            self.family,
            self.version,
            self.image,
            &id[..id.len().min(12)]
        );
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &self.checks {
            let detail = if c.ok {
                c.actual.clone()
            } else {
                format!("declared {}, image has {}", c.expected, c.actual)
            };
            out.push_str(&format!(
                "  {:<4}  {:<width$}  {detail}\n",
                if c.ok { "ok" } else { "FAIL" },
                c.name
            ));
        }
        out.push_str(&match self.failed() {
            0 => format!("all {} checks passed\n", self.checks.len()),
            n => format!("{n} of {} checks failed\n", self.checks.len()),
        });
        out
    }
}

/// Probe output: name -> (exit code, first line of output).
type Probes = HashMap<String, (i64, String)>;

/// A shell script that runs each `(name, command)` and prints `@@name<TAB>rc<TAB>first line`.
fn probe_script(probes: &[(String, String)]) -> String {
    let mut s = String::from(
        "probe() { n=$1; shift; out=$(\"$@\" 2>&1); rc=$?; printf '@@%s\\t%s\\t%s\\n' \"$n\" \"$rc\" \"$(printf '%s\\n' \"$out\" | head -n 1)\"; }\n",
    );
    for (name, command) in probes {
        s.push_str(&format!("probe {} {command}\n", shell_quote(name)));
    }
    s
}

fn parse_probes(output: &str) -> Probes {
    output
        .lines()
        .filter_map(|l| l.strip_prefix("@@"))
        .filter_map(|l| {
            let mut parts = l.splitn(3, '\t');
            let name = parts.next()?.to_string();
            let rc = parts.next()?.parse().ok()?;
            Some((name, (rc, parts.next().unwrap_or("").trim().to_string())))
        })
        .collect()
}

async fn run_probes(
    engine: &Engine,
    image: &str,
    user: Option<&str>,
    probes: &[(String, String)],
) -> Result<Probes, EngineError> {
    let spec = ContainerSpec {
        image: image.to_string(),
        entrypoint: Some(vec![]),
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), probe_script(probes)]),
        user: user.map(str::to_string),
        network_disabled: true,
        ..Default::default()
    };
    let container = engine.create_container(&spec).await?;
    let out = engine.run(&container).await;
    engine.remove_container(&container).await?;
    Ok(parse_probes(&out?.stdout))
}

/// The version a `--version` line reports: the first word that starts with a digit.
fn version_in(line: &str) -> String {
    line.split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(line)
        .to_string()
}

fn write_probe(dir: &str) -> String {
    format!(
        "sh -c 'f=\"$1/.connector-build-check-$$\" && touch \"$f\" && rm -f \"$f\"' sh {}",
        shell_quote(dir)
    )
}

/// Checks `image` (as the engine names it) against `v`'s declaration.
pub async fn check_image(
    engine: &Engine,
    family: &Family,
    v: &FamilyVersion,
    image: &str,
    info: &ImageInfo,
) -> Result<CheckReport, EngineError> {
    let d = &v.decl;
    let u = &d.user;
    let python_probe = (
        "python".to_string(),
        "python -c 'import platform; print(platform.python_version())'".to_string(),
    );
    let mut probes: Vec<(String, String)> = match family.kind {
        FamilyKind::Python => vec![
            python_probe,
            ("pip".into(), "python -m pip --version".into()),
            ("pip-on-path".into(), "pip --version".into()),
            ("poetry".into(), "poetry --version".into()),
        ],
        FamilyKind::Declarative => vec![
            python_probe,
            (
                "cdk".into(),
                "python -c 'import importlib.metadata as m; print(m.version(\"airbyte-cdk\"))'"
                    .into(),
            ),
            (
                "runtime".into(),
                format!(
                    "sh -c 'stat -c %u {CODE_DIR}/main.py {MANIFEST_DIR}/run.py {MANIFEST_DIR}/spec.json | sort -u | paste -sd,'"
                ),
            ),
            // The generic spec: without a manifest, the runtime asks for one in its config.
            (
                "spec".into(),
                format!("sh -c 'python {CODE_DIR}/main.py spec | grep -c \"\\\"type\\\": *\\\"SPEC\\\"\"'"),
            ),
        ],
        FamilyKind::Java => vec![
            ("java".into(), "java -version".into()),
            ("base.sh".into(), format!("test -x {JAVA_BASE_SH}")),
            (
                "base.sh without APPLICATION".into(),
                format!("sh -c 'APPLICATION= {JAVA_BASE_SH} 2>/dev/null; echo $?'"),
            ),
        ],
    };
    probes.extend([
        ("timezone".into(), "cat /etc/timezone".into()),
        ("localtime".into(), "readlink -f /etc/localtime".into()),
        ("date".into(), "date +%Z".into()),
        ("uid".into(), format!("id -u {}", u.name)),
        ("gid".into(), format!("id -g {}", u.name)),
    ]);
    for tool in &d.system_tools {
        probes.push((format!("tool {tool}"), format!("{tool} --version")));
    }
    let found = run_probes(engine, &info.id, None, &probes).await?;
    let get = |name: &str| -> (i64, String) {
        found.get(name).cloned().unwrap_or((-1, "no answer".into()))
    };
    let mut checks = Vec::new();
    let mut add = |name: String, ok: bool, expected: String, actual: String| {
        checks.push(Check {
            name,
            ok,
            expected,
            actual,
        })
    };

    let (_, tz) = get("timezone");
    let (_, localtime) = get("localtime");
    let (_, zone) = get("date");
    // A declarative family inherits its base's timezone; it declares none.
    if !d.timezone.is_empty() {
        let utc_expected = matches!(d.timezone.as_str(), "Etc/UTC" | "UTC");
        add(
            "timezone".into(),
            tz == d.timezone
                && localtime == format!("/usr/share/zoneinfo/{}", d.timezone)
                && (!utc_expected || zone == "UTC"),
            format!("{} (date +%Z: UTC)", d.timezone),
            format!("/etc/timezone: {tz}, /etc/localtime -> {localtime}, date +%Z: {zone}"),
        );
    }
    let versions: &[(&str, &String, &str)] = match family.kind {
        FamilyKind::Python => &[
            ("python", &d.python, "python"),
            ("poetry", &d.poetry, "poetry"),
        ],
        FamilyKind::Declarative => &[
            ("python", &d.python, "python"),
            ("airbyte-cdk", &d.cdk, "cdk"),
        ],
        FamilyKind::Java => &[],
    };
    for (name, declared, probe) in versions {
        let (rc, line) = get(probe);
        let actual = if rc == 0 { version_in(&line) } else { line };
        add(
            name.to_string(),
            actual == **declared,
            declared.to_string(),
            actual,
        );
    }
    match family.kind {
        FamilyKind::Python => {
            let (rc, line) = get("pip");
            let module = if rc == 0 { version_in(&line) } else { line };
            let (rc, line) = get("pip-on-path");
            let on_path = if rc == 0 { version_in(&line) } else { line };
            add(
                "pip".into(),
                module == d.pip && on_path == d.pip,
                d.pip.clone(),
                if module == on_path {
                    module
                } else {
                    format!("{module} (python -m pip), {on_path} (pip on PATH)")
                },
            );
        }
        FamilyKind::Declarative => {
            let (rc, owners) = get("runtime");
            add(
                "runtime files".into(),
                rc == 0 && owners == u.uid.to_string(),
                format!("main.py, run.py, spec.json owned by uid {}", u.uid),
                if rc == 0 {
                    format!("owned by uid {owners}")
                } else {
                    owners
                },
            );
            let (rc, count) = get("spec");
            add(
                "answers spec".into(),
                rc == 0 && count.parse::<u32>().is_ok_and(|n| n > 0),
                "a SPEC message".into(),
                if rc == 0 {
                    format!("{count} SPEC message(s)")
                } else {
                    format!("exit {rc}: {count}")
                },
            );
        }
        FamilyKind::Java => {
            let (rc, line) = get("java");
            let release = line
                .split('"')
                .nth(1)
                .and_then(|v| v.split('.').next())
                .unwrap_or_default()
                .to_string();
            add(
                "java".into(),
                rc == 0 && release == d.java,
                format!("Java {}", d.java),
                line,
            );
            let (rc, _) = get("base.sh");
            let (_, without_app) = get("base.sh without APPLICATION");
            let entrypoint = info.entrypoint.clone().unwrap_or_default();
            add(
                "base.sh".into(),
                rc == 0 && without_app == "64" && entrypoint == [JAVA_BASE_SH],
                format!("executable {JAVA_BASE_SH}, the entrypoint, refusing an unset APPLICATION"),
                format!(
                    "{}, entrypoint {entrypoint:?}, exit {without_app} without APPLICATION",
                    if rc == 0 {
                        "executable"
                    } else {
                        "not executable"
                    }
                ),
            );
        }
    }
    let env: HashMap<&str, &str> = info.env.iter().filter_map(|e| e.split_once('=')).collect();
    for (name, value) in &d.env {
        let actual = env.get(name.as_str()).copied();
        add(
            format!("env {name}"),
            actual == Some(value.as_str()),
            value.clone(),
            actual.map_or("unset".into(), str::to_string),
        );
    }
    // Connector builds install into the system Python as the image's default user; the
    // declarative image installs nothing and runs as the user, as upstream's.
    let default_user = info
        .user
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "root".into());
    let (ok, expected) = match family.kind {
        FamilyKind::Declarative => (default_user == u.name, u.name.clone()),
        _ => (
            matches!(default_user.as_str(), "root" | "0" | "0:0"),
            "root".into(),
        ),
    };
    add("default user".into(), ok, expected, default_user);
    let (uid_rc, uid) = get("uid");
    let (gid_rc, gid) = get("gid");
    add(
        format!("user {}", u.name),
        uid_rc == 0 && gid_rc == 0 && uid == u.uid.to_string() && gid == u.gid.to_string(),
        format!("uid {} gid {}", u.uid, u.gid),
        if uid_rc == 0 {
            format!("uid {uid} gid {gid}")
        } else {
            uid
        },
    );

    // (folder, whether the user must be able to write it)
    let expectations: Vec<(&String, bool)> = u
        .owns
        .iter()
        .map(|d| (d, true))
        .chain(u.cannot_write.iter().map(|d| (d, false)))
        .collect();
    if !expectations.is_empty() {
        let writes: Vec<(String, String)> = expectations
            .iter()
            .map(|(dir, _)| (format!("write {dir}"), write_probe(dir)))
            .collect();
        // A missing user makes the container fail to start: every write check fails then.
        let as_user = run_probes(engine, &info.id, Some(&u.name), &writes).await;
        enum Write {
            Done,
            Refused(String),
            Unknown(String),
        }
        for (dir, writable) in expectations {
            let outcome = match &as_user {
                Ok(p) => match p.get(&format!("write {dir}")) {
                    Some((0, _)) => Write::Done,
                    Some((_, line)) => Write::Refused(line.clone()),
                    None => Write::Unknown("no answer".into()),
                },
                Err(e) => Write::Unknown(format!("cannot run as {}: {e}", u.name)),
            };
            let (ok, actual) = match (outcome, writable) {
                (Write::Done, w) => (w, "writable".to_string()),
                (Write::Refused(_), false) => (true, "not writable".to_string()),
                (Write::Refused(line), true) => (false, format!("not writable ({line})")),
                (Write::Unknown(why), _) => (false, why),
            };
            let (name, expected) = if writable {
                (format!("{} writes {dir}", u.name), "writable")
            } else {
                (format!("{} cannot write {dir}", u.name), "not writable")
            };
            add(name, ok, expected.into(), actual);
        }
    }
    for tool in &d.system_tools {
        let (rc, line) = get(&format!("tool {tool}"));
        add(
            format!("tool {tool}"),
            rc == 0 && !line.is_empty(),
            "answers --version".into(),
            if rc == 0 {
                line
            } else {
                format!("exit {rc}: {line}")
            },
        );
    }
    Ok(CheckReport {
        family: family.name.clone(),
        version: v.version.to_string(),
        image: image.to_string(),
        image_id: info.id.clone(),
        checks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_survive_missing_programs_and_odd_output() {
        let script = probe_script(&[
            ("a b".into(), "echo 'x\ty'".into()),
            ("missing".into(), "no-such-program --version".into()),
            ("multi".into(), "printf 'one\\ntwo\\n'".into()),
        ]);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        let p = parse_probes(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(p["a b"], (0, "x\ty".into()));
        assert_eq!(p["missing"].0, 127);
        assert_eq!(p["multi"], (0, "one".into()));
    }

    #[test]
    fn versions_are_read_from_version_lines() {
        assert_eq!(
            version_in("pip 23.2.1 from /usr/local/lib/python3.11/dist-packages/pip (python 3.11)"),
            "23.2.1"
        );
        assert_eq!(version_in("Poetry (version 1.6.1)"), "1.6.1");
        assert_eq!(version_in("3.11.2"), "3.11.2");
    }
}
