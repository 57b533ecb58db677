//! Just enough of a Dockerfile reader for the migration and the analysis: instructions with
//! their line numbers (continuations joined, comments dropped, heredoc bodies kept), build
//! stages and their root images, and the packages `apt-get install` lines add.
//!
//! Written by hand: the Dockerfile crates on crates.io either build Dockerfiles or parse
//! without locations and heredocs; this needs neither a full grammar nor a shell.
//!
//! Variables in `FROM` and in global `ARG` defaults expand as BuildKit expands them (its
//! `shell` lexer, with no `--build-arg`, which is how the migration builds): `$NAME` and
//! `${NAME}` by whole name only; `${NAME:-word}` / `${NAME-word}` give `word` when `NAME` is
//! unset (or, with `:`, empty), `${NAME:+word}` / `${NAME+word}` give `word` when it is set
//! (and, with `:`, not empty); `word` expands in turn. A name no `ARG` before the first
//! `FROM` gives a value, declared without one or not declared at all, is unset and expands
//! to nothing, as Docker does (it warns, then builds or fails with that empty text). Quotes
//! are removed and `\` escapes the next character, as in Docker. Forms this reader does not
//! evaluate (`${NAME:?message}`, which fails the build when unset, and the pattern forms
//! `${NAME#...}`, `${NAME%...}`, `${NAME/...}`) stay as written.
//!
//! Commands a `RUN` runs are read from its shell form, its JSON (exec) form (`["apt-get",
//! "install", "x"]`, and the script of `["sh", "-c", "..."]`), and its heredocs: a body is a
//! shell script when the instruction is only heredocs (`RUN <<EOF`, unless a `#!` line names
//! another interpreter) or when a shell reads it (`RUN bash <<EOF`); otherwise it is data
//! (`RUN cat <<EOF > file`).

/// One instruction, e.g. `RUN apt-get update && ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where it starts.
    pub line: usize,
    /// Upper-cased, e.g. `RUN`.
    pub keyword: String,
    /// The rest, continuation lines joined with a space.
    pub args: String,
    /// The here-documents (`<<EOF` ... `EOF`) of a `RUN`, `COPY` or `ADD`, in order.
    pub heredocs: Vec<Heredoc>,
}

/// A here-document: `<<NAME` on the instruction line, the body on the lines after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    /// The lines up to the one holding only `name`, each ending with a newline (leading
    /// tabs removed for `<<-NAME`).
    pub body: String,
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

/// Global `ARG`s: a name and its value, `None` when declared without one.
type Vars = Vec<(String, Option<String>)>;

impl Dockerfile {
    pub fn parse(text: &str) -> Dockerfile {
        let lines: Vec<&str> = text.lines().collect();
        let mut instructions = Vec::new();
        let mut current: Option<Instruction> = None;
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i].trim();
            i += 1;
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
                        line: i,
                        keyword: keyword.to_ascii_uppercase(),
                        args: args.trim().to_string(),
                        heredocs: vec![],
                    });
                }
            }
            if !continues {
                if let Some(mut inst) = current.take() {
                    i = read_heredocs(&mut inst, &lines, i);
                    instructions.push(inst);
                }
            }
        }
        instructions.extend(current.take());

        let mut vars: Vars = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for (index, inst) in instructions.iter().enumerate() {
            match inst.keyword.as_str() {
                "ARG" if stages.is_empty() => {
                    for word in split_words(&inst.args) {
                        let var = match word.split_once('=') {
                            Some((name, value)) => (name.to_string(), Some(expand(value, &vars))),
                            None => (word, None),
                        };
                        vars.push(var);
                    }
                }
                "FROM" => {
                    let words: Vec<String> = split_words(&inst.args)
                        .into_iter()
                        .filter(|w| !w.starts_with("--"))
                        .collect();
                    let from = expand(words.first().map_or("", String::as_str), &vars);
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
                for command in run_commands(inst) {
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

/// Reads the bodies of the heredocs `inst` opens from `lines[next..]`; returns the index of
/// the first line after them. Only `RUN`, `COPY` and `ADD` take heredocs, as in BuildKit.
fn read_heredocs(inst: &mut Instruction, lines: &[&str], mut next: usize) -> usize {
    if !matches!(inst.keyword.as_str(), "RUN" | "COPY" | "ADD") {
        return next;
    }
    for (name, strip_tabs) in heredoc_markers(&inst.args) {
        let mut body = String::new();
        while next < lines.len() {
            let line = lines[next];
            next += 1;
            let line = if strip_tabs {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if line == name {
                break;
            }
            body.push_str(line);
            body.push('\n');
        }
        inst.heredocs.push(Heredoc { name, body });
    }
    next
}

/// The `<<NAME` / `<<-NAME` / `<<"NAME"` markers of an instruction line, outside quotes:
/// each name (unquoted) and whether leading tabs are stripped.
fn heredoc_markers(args: &str) -> Vec<(String, bool)> {
    let chars: Vec<char> = args.chars().collect();
    let mut out = Vec::new();
    let mut quote = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            // `<<<` is a here-string, not a heredoc.
            (None, '<') if chars.get(i) == Some(&'<') && chars.get(i + 1) != Some(&'<') => {
                i += 1;
                let strip_tabs = chars.get(i) == Some(&'-');
                if strip_tabs {
                    i += 1;
                }
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !"<>;&|()".contains(chars[i])
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let name: String = word.chars().filter(|c| !matches!(c, '"' | '\'')).collect();
                if !name.is_empty() {
                    out.push((name, strip_tabs));
                }
            }
            (None, '<') => {
                // Skip a `<<<` whole so its last two `<` do not read as a heredoc.
                while chars.get(i) == Some(&'<') {
                    i += 1;
                }
            }
            _ => {}
        }
    }
    out
}

/// Words split at whitespace outside quotes, quotes and escapes kept as written.
fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\\') | (Some('"'), '\\') => {
                word.push(c);
                word.extend(chars.next());
                continue;
            }
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                continue;
            }
            _ => {}
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// One word as BuildKit processes it (see the module header): quotes removed, escapes
/// applied, variables expanded from `vars`.
fn expand(word: &str, vars: &Vars) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    expand_into(&chars, vars, &mut out);
    out
}

fn expand_into(chars: &[char], vars: &Vars, out: &mut String) {
    let mut quote = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('\''), c) => out.push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, '\\') | (Some('"'), '\\') => {
                // Inside double quotes only `\"`, `\\` and `\$` are escapes.
                match chars.get(i) {
                    Some(&n) if quote.is_none() || matches!(n, '"' | '\\' | '$') => {
                        out.push(n);
                        i += 1;
                    }
                    _ => out.push('\\'),
                }
            }
            (_, '$') => i = dollar(chars, i, vars, out),
            (_, c) => out.push(c),
        }
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn lookup<'v>(vars: &'v Vars, name: &str) -> Option<&'v str> {
    vars.iter()
        .rev()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_deref())
}

/// Expands the `$...` whose `$` is just before `chars[at]` into `out`; returns the index
/// after it.
fn dollar(chars: &[char], at: usize, vars: &Vars, out: &mut String) -> usize {
    let name_end = |from: usize| {
        let mut j = from;
        if j < chars.len() && is_name_start(chars[j]) {
            while j < chars.len() && is_name_char(chars[j]) {
                j += 1;
            }
        }
        j
    };
    match chars.get(at) {
        Some('{') => {
            let start = at + 1;
            let end = name_end(start);
            // The matching `}`, past nested `${...}`.
            let mut depth = 1;
            let mut close = None;
            let mut j = end;
            while j < chars.len() {
                match chars[j] {
                    '\\' => j += 1,
                    '{' if j > 0 && chars[j - 1] == '$' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            close = Some(j);
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            let as_written = |close: usize, out: &mut String| {
                out.push('$');
                out.extend(&chars[at..=close]);
                close + 1
            };
            let Some(close) = close else {
                // No closing brace: Docker refuses the line; keep the rest as written.
                out.push('$');
                out.extend(&chars[at..]);
                return chars.len();
            };
            if end == start {
                return as_written(close, out);
            }
            let name: String = chars[start..end].iter().collect();
            let value = lookup(vars, &name);
            let rest = &chars[end..close];
            let (colon, op, word) = match rest {
                [] => {
                    out.push_str(value.unwrap_or(""));
                    return close + 1;
                }
                [':', op, word @ ..] => (true, *op, word),
                [op, word @ ..] => (false, *op, word),
            };
            // With `:`, an empty value counts as unset.
            let set = value.is_some_and(|v| !colon || !v.is_empty());
            match op {
                '-' if set => out.push_str(value.unwrap_or("")),
                '-' => expand_into(word, vars, out),
                '+' if set => expand_into(word, vars, out),
                '+' => {}
                _ => return as_written(close, out),
            }
            close + 1
        }
        _ => {
            let end = name_end(at);
            if end == at {
                out.push('$');
            } else {
                let name: String = chars[at..end].iter().collect();
                out.push_str(lookup(vars, &name).unwrap_or(""));
            }
            end
        }
    }
}

/// Shells whose script a heredoc can be.
fn is_shell(program: &str) -> bool {
    let name = program.rsplit('/').next().unwrap_or(program);
    matches!(name, "sh" | "bash" | "dash" | "ash" | "zsh" | "ksh")
}

/// The simple commands a `RUN` runs, from its shell form, exec form and heredocs.
fn run_commands(inst: &Instruction) -> Vec<Vec<String>> {
    // Flags first: `RUN --mount=type=cache,target=/var/cache/apt apt-get ...`.
    let mut line = inst.args.as_str();
    while line.starts_with("--") {
        line = line
            .split_once(char::is_whitespace)
            .map_or("", |(_, rest)| rest.trim_start());
    }
    if line.starts_with('[') {
        if let Ok(argv) = serde_json::from_str::<Vec<String>>(line) {
            return unwrap_shells(vec![argv]);
        }
    }
    let commands = shell_commands(line);
    // `RUN <<EOF`: the body is the script; `RUN bash <<EOF`: a shell reads it from stdin.
    let only_heredocs = commands.iter().flatten().all(|w| w.starts_with("<<"));
    let shell_reads = commands
        .iter()
        .any(|c| c.first().is_some_and(|p| is_shell(p)) && !c.iter().any(|w| shell_script_flag(w)));
    let mut out = if only_heredocs {
        vec![]
    } else {
        unwrap_shells(commands)
    };
    if only_heredocs || shell_reads {
        for doc in &inst.heredocs {
            let other_interpreter = doc.body.strip_prefix("#!").is_some_and(|shebang| {
                let mut words = shebang.lines().next().unwrap_or("").split_whitespace();
                let program = match words.next() {
                    Some(env) if env.rsplit('/').next() == Some("env") => words.next(),
                    p => p,
                };
                !program.is_some_and(is_shell)
            });
            if !other_interpreter {
                out.extend(unwrap_shells(shell_commands(&doc.body)));
            }
        }
    }
    out
}

/// `-c`, `-ec`, `-xc`, ...: the shell runs its next argument.
fn shell_script_flag(word: &str) -> bool {
    word.len() > 1 && word.starts_with('-') && !word.starts_with("--") && word.contains('c')
}

/// `commands`, with each `sh -c SCRIPT` (shell or exec form) replaced by SCRIPT's commands.
/// Terminates: each script is a strict part of the text it came from.
fn unwrap_shells(commands: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for command in commands {
        let script = command
            .first()
            .filter(|p| is_shell(p))
            .and_then(|_| command.iter().position(|w| shell_script_flag(w)))
            .and_then(|flag| command.get(flag + 1));
        match script {
            Some(script) => out.extend(unwrap_shells(shell_commands(script))),
            None => out.push(command),
        }
    }
    out
}

/// The simple commands of a shell script: split at newlines, `&&`, `||`, `;`, `|` and
/// parentheses, words unquoted, `\`-newline joined, `#` comments dropped.
fn shell_commands(script: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = script.chars().peekable();
    let flush = |word: &mut String, words: &mut Vec<String>| {
        if !word.is_empty() {
            words.push(std::mem::take(word));
        }
    };
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') if matches!(chars.peek(), Some('"' | '\\' | '$' | '`')) => {
                word.extend(chars.next());
            }
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => quote = Some(c),
            (None, '\\') => match chars.next() {
                Some('\n') | None => {}
                Some(n) => word.push(n),
            },
            (None, '#') if word.is_empty() => while chars.next_if(|&n| n != '\n').is_some() {},
            (None, '&' | '|' | ';' | '\n' | '(' | ')') => {
                if c != '\n' && matches!(chars.peek(), Some('&' | '|')) {
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
    // Skip leading variable assignments, wrappers (`DEBIAN_FRONTEND=noninteractive`, `sudo`)
    // and the shell words that can start a command (`then apt-get ...`).
    let start = words.iter().position(|w| {
        !w.contains('=')
            && !matches!(
                w.as_str(),
                "sudo" | "env" | "then" | "do" | "else" | "{" | "!" | "exec" | "time"
            )
    })?;
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

    /// `ARG PY=3.9` replaced the `$PY` inside `$PYTHON_VERSION`: `python:3.9THON_VERSION-slim`.
    #[test]
    fn arg_expansion_substitutes_whole_names_only() {
        let d = Dockerfile::parse("ARG PY=3.9\nFROM python:$PYTHON_VERSION-slim\n");
        // Docker expands an unset name to nothing.
        assert_eq!(d.stages[0].from, "python:-slim");
        let d = Dockerfile::parse(
            "ARG PY=3.9\nARG PYTHON_VERSION=3.11\nFROM python:$PYTHON_VERSION-slim AS a\nFROM python:${PY}-$PY\n",
        );
        assert_eq!(d.root_images(), ["python:3.11-slim", "python:3.9-3.9"]);
    }

    #[test]
    fn arg_expansion_defaults_and_alternatives_as_docker() {
        let from = |text: &str| Dockerfile::parse(text).stages[0].from.clone();
        assert_eq!(from("FROM python:${PY:-3.10}-slim\n"), "python:3.10-slim");
        assert_eq!(from("ARG PY=3.9\nFROM python:${PY:-3.10}\n"), "python:3.9");
        assert_eq!(from("ARG PY=\nFROM python:${PY:-3.10}\n"), "python:3.10");
        assert_eq!(from("ARG PY=\nFROM python:${PY-3.10}x\n"), "python:x");
        assert_eq!(from("ARG PY\nFROM python:${PY-3.10}\n"), "python:3.10");
        assert_eq!(from("ARG S=1\nFROM a${S:+-slim}\n"), "a-slim");
        assert_eq!(from("FROM a${S:+-slim}\n"), "a");
        assert_eq!(from("ARG S=\nFROM a${S+-set}\n"), "a-set");
        // The default expands in turn; a later ARG default sees the earlier ones.
        assert_eq!(
            from("ARG V=3.9\nARG IMG=python:${V}\nFROM ${X:-$IMG}-slim\n"),
            "python:3.9-slim"
        );
        assert_eq!(
            from("ARG A=1 B=\"two words\"\nFROM x:${A}-${B}\n"),
            "x:1-two words"
        );
        // Escapes and single quotes stop expansion; a lone `$` is kept.
        assert_eq!(from("ARG A=1\nFROM x\\$A'$A'$\n"), "x$A$A$");
        // Forms not evaluated here stay as written.
        assert_eq!(from("FROM python:${PY:?unset}\n"), "python:${PY:?unset}");
        assert_eq!(
            from("ARG PY=3.9\nFROM python:${PY%.*}\n"),
            "python:${PY%.*}"
        );
        assert_eq!(from("FROM python:${PY\n"), "python:${PY");
    }

    /// The exec form (`RUN ["apt-get", ...]`) was read as one shell word per JSON item.
    #[test]
    fn apt_installs_in_json_form_run() {
        let d = Dockerfile::parse(
            "FROM x\nRUN [\"apt-get\", \"install\", \"-y\", \"--no-install-recommends\", \"jq\"]\nRUN [\"/bin/sh\", \"-c\", \"apt-get update && apt-get install -y --no-install-recommends 'curl'\"]\nRUN --mount=type=cache,target=/var/cache/apt [\"apt\", \"install\", \"git\"]\n",
        );
        let apt = d.apt_installs();
        assert_eq!(apt.packages, ["jq", "curl", "git"]);
        assert!(!apt.no_install_recommends);
    }

    /// Heredoc bodies were read as instructions of their own (`APT-GET ...`).
    #[test]
    fn apt_installs_in_heredocs() {
        let d = Dockerfile::parse(
            "FROM x\nRUN <<EOF\nset -e\n# tools\napt-get update\napt-get install -y --no-install-recommends \\\n    jq \\\n    curl\nEOF\nRUN bash -e <<-'SCRIPT'\n\tif true; then apt-get install -y --no-install-recommends git; fi\n\tSCRIPT\nRUN cat <<EOF > /etc/notes\napt-get install -y not-a-package\nEOF\nRUN <<EOF\n#!/usr/bin/env python3\nprint('apt-get install -y nope')\nEOF\nRUN sh -c 'apt-get install -y --no-install-recommends make'\nWORKDIR /w\n",
        );
        let keywords: Vec<&str> = d.instructions.iter().map(|i| i.keyword.as_str()).collect();
        assert_eq!(
            keywords,
            ["FROM", "RUN", "RUN", "RUN", "RUN", "RUN", "WORKDIR"]
        );
        assert_eq!(d.instructions[1].heredocs[0].name, "EOF");
        assert_eq!(d.instructions[2].heredocs[0].name, "SCRIPT");
        assert_eq!(d.instructions[6].line, 21);
        let apt = d.apt_installs();
        assert_eq!(apt.packages, ["jq", "curl", "git", "make"]);
        assert!(apt.no_install_recommends);
        // A here-string is not a heredoc.
        let d = Dockerfile::parse("FROM x\nRUN cat <<<'hi'\nRUN apt-get install -y a\n");
        assert_eq!(d.instructions.len(), 3);
        assert_eq!(d.apt_installs().packages, ["a"]);
    }
}
