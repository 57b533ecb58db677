//! Just enough of a Dockerfile reader for the migration and the analysis: instructions with
//! their line numbers (continuations joined, comments dropped), build stages and their root
//! images, and the packages `apt-get install` lines add.

/// One instruction, e.g. `RUN apt-get update && ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where it starts.
    pub line: usize,
    /// Upper-cased, e.g. `RUN`.
    pub keyword: String,
    /// The rest, continuation lines joined with a space.
    pub args: String,
}

/// A `FROM` and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub line: usize,
    /// The image as written, with `ARG` defaults substituted.
    pub from: String,
    /// `AS name`.
    pub name: Option<String>,
    /// When `from` names an earlier stage, its index.
    pub parent: Option<usize>,
    /// Indexes into [`Dockerfile::instructions`] of this stage's instructions (not the FROM).
    pub instructions: Vec<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dockerfile {
    pub instructions: Vec<Instruction>,
    pub stages: Vec<Stage>,
}

/// What `apt-get install` lines of the final image install.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AptInstalls {
    /// As written (`jq`, `curl=7.88*`), in order, each once.
    pub packages: Vec<String>,
    /// Every install line passed `--no-install-recommends`.
    pub no_install_recommends: bool,
}

/// A package spec without version or architecture: `jq=1.6-2` -> `jq`.
pub fn package_name(spec: &str) -> &str {
    spec.split(['=', ':']).next().unwrap_or(spec)
}

impl Dockerfile {
    pub fn parse(text: &str) -> Dockerfile {
        let mut instructions = Vec::new();
        let mut current: Option<Instruction> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            // Comment lines end nothing: Docker skips them, even inside a continuation.
            if line.starts_with('#') || (line.is_empty() && current.is_none()) {
                continue;
            }
            let (body, continues) = match line.strip_suffix('\\') {
                Some(b) => (b.trim_end(), true),
                None => (line, false),
            };
            match current.as_mut() {
                Some(inst) => {
                    if !body.is_empty() {
                        if !inst.args.is_empty() {
                            inst.args.push(' ');
                        }
                        inst.args.push_str(body);
                    }
                }
                None => {
                    let (keyword, args) =
                        body.split_once(char::is_whitespace).unwrap_or((body, ""));
                    current = Some(Instruction {
                        line: i + 1,
                        keyword: keyword.to_ascii_uppercase(),
                        args: args.trim().to_string(),
                    });
                }
            }
            if !continues {
                instructions.extend(current.take());
            }
        }
        instructions.extend(current.take());

        let mut args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for (index, inst) in instructions.iter().enumerate() {
            match inst.keyword.as_str() {
                "ARG" if stages.is_empty() => {
                    if let Some((name, value)) = inst.args.split_once('=') {
                        args.push((name.trim().to_string(), unquote(value.trim())));
                    }
                }
                "FROM" => {
                    let words: Vec<&str> = inst
                        .args
                        .split_whitespace()
                        .filter(|w| !w.starts_with("--"))
                        .collect();
                    let from = substitute(words.first().copied().unwrap_or(""), &args);
                    let name = match words.get(1..3) {
                        Some([as_, name]) if as_.eq_ignore_ascii_case("as") => {
                            Some(name.to_string())
                        }
                        _ => None,
                    };
                    let parent = stages.iter().position(|s| {
                        s.name
                            .as_deref()
                            .is_some_and(|n| n.eq_ignore_ascii_case(&from))
                    });
                    stages.push(Stage {
                        line: inst.line,
                        from,
                        name,
                        parent,
                        instructions: vec![],
                    });
                }
                _ => {
                    if let Some(stage) = stages.last_mut() {
                        stage.instructions.push(index);
                    }
                }
            }
        }
        Dockerfile {
            instructions,
            stages,
        }
    }

    /// The images stages start from (not earlier stages), each once, in order.
    pub fn root_images(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in self.stages.iter().filter(|s| s.parent.is_none()) {
            if !out.contains(&s.from) {
                out.push(s.from.clone());
            }
        }
        out
    }

    /// The stages the final image is made of, from its root stage to the last.
    fn final_chain(&self) -> Vec<&Stage> {
        let mut chain = Vec::new();
        let mut at = self.stages.len().checked_sub(1);
        while let Some(i) = at {
            chain.push(&self.stages[i]);
            at = self.stages[i].parent.filter(|p| *p < i);
        }
        chain.reverse();
        chain
    }

    /// The image the final stage is built on, and the line of its FROM.
    pub fn final_root(&self) -> Option<(&str, usize)> {
        self.final_chain()
            .first()
            .map(|s| (s.from.as_str(), s.line))
    }

    /// Packages `apt-get install` (or `apt install`) adds to the final image. Installs in
    /// other stages (a builder's compilers) do not reach it.
    pub fn apt_installs(&self) -> AptInstalls {
        let mut out = AptInstalls {
            no_install_recommends: true,
            ..Default::default()
        };
        let mut lines = 0;
        for stage in self.final_chain() {
            for &i in &stage.instructions {
                let inst = &self.instructions[i];
                if inst.keyword != "RUN" {
                    continue;
                }
                for command in shell_commands(&inst.args) {
                    let Some(install) = apt_install(&command) else {
                        continue;
                    };
                    lines += 1;
                    out.no_install_recommends &= install.0;
                    for p in install.1 {
                        if !out.packages.contains(&p) {
                            out.packages.push(p);
                        }
                    }
                }
            }
        }
        out.no_install_recommends &= lines > 0;
        out
    }
}

fn unquote(s: &str) -> String {
    let t = s.trim();
    for q in ['"', '\''] {
        if let Some(inner) = t.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    t.to_string()
}

/// `$NAME` and `${NAME}` from ARG defaults; unknown names stay as written.
fn substitute(s: &str, args: &[(String, String)]) -> String {
    let mut out = s.to_string();
    for (name, value) in args {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    out
}

/// The simple commands of a shell line: split at `&&`, `||`, `;`, `|`, words unquoted.
fn shell_commands(line: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = line.chars().peekable();
    let flush = |word: &mut String, words: &mut Vec<String>| {
        if !word.is_empty() {
            words.push(std::mem::take(word));
        }
    };
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => quote = Some(c),
            (None, '&' | '|' | ';') => {
                if matches!(chars.peek(), Some('&' | '|')) {
                    chars.next();
                }
                flush(&mut word, &mut words);
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            (None, c) if c.is_whitespace() => flush(&mut word, &mut words),
            (None, c) => word.push(c),
        }
    }
    flush(&mut word, &mut words);
    if !words.is_empty() {
        commands.push(words);
    }
    commands
}

/// `(no_install_recommends, packages)` when the command is an apt install.
fn apt_install(words: &[String]) -> Option<(bool, Vec<String>)> {
    // Skip leading variable assignments and wrappers (`DEBIAN_FRONTEND=noninteractive`).
    let start = words
        .iter()
        .position(|w| !w.contains('=') && w != "sudo" && w != "env")?;
    let program = words[start].rsplit('/').next().unwrap_or("");
    if program != "apt-get" && program != "apt" {
        return None;
    }
    let rest = &words[start + 1..];
    let verb = rest.iter().position(|w| !w.starts_with('-'))?;
    if rest[verb] != "install" {
        return None;
    }
    let no_recommends = rest.iter().any(|w| w == "--no-install-recommends");
    let packages = rest[verb + 1..]
        .iter()
        .filter(|w| !w.starts_with('-'))
        .cloned()
        .collect();
    Some((no_recommends, packages))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &str = r#"ARG PY=3.11-bookworm
FROM --platform=linux/amd64 registry/python:${PY} as base

# build and load all requirements
FROM base as builder
RUN apt-get update \
    # compilers for wheels
    && apt-get install -y build-essential
RUN pip install --prefix=/install .

FROM base
COPY --from=builder /install /usr/local
RUN DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends jq curl=7.88* \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["python", "/airbyte/integration_code/main.py"]
"#;

    #[test]
    fn stages_roots_and_packages() {
        let d = Dockerfile::parse(MULTI);
        assert_eq!(d.stages.len(), 3);
        assert_eq!(d.stages[0].from, "registry/python:3.11-bookworm");
        assert_eq!(d.stages[1].parent, Some(0));
        assert_eq!(d.stages[2].parent, Some(0));
        assert_eq!(d.root_images(), ["registry/python:3.11-bookworm"]);
        assert_eq!(d.final_root(), Some(("registry/python:3.11-bookworm", 2)));
        let run = &d.instructions[3];
        assert_eq!(run.line, 6);
        assert_eq!(
            run.args,
            "apt-get update && apt-get install -y build-essential"
        );
        // The builder's compilers are not in the final image.
        let apt = d.apt_installs();
        assert_eq!(apt.packages, ["jq", "curl=7.88*"]);
        assert!(apt.no_install_recommends);
        assert_eq!(package_name("curl=7.88*"), "curl");
    }

    #[test]
    fn variant_one_style() {
        let d = Dockerfile::parse(
            "FROM python:3.9-slim\nRUN apt-get update && apt-get install -y bash && rm -rf /var/lib/apt/lists/*\nWORKDIR /x\n",
        );
        assert_eq!(d.root_images(), ["python:3.9-slim"]);
        let apt = d.apt_installs();
        assert_eq!(apt.packages, ["bash"]);
        assert!(!apt.no_install_recommends);
        assert_eq!(
            Dockerfile::parse("FROM x\n").apt_installs().packages.len(),
            0
        );
        assert!(Dockerfile::parse("").final_root().is_none());
    }
}
