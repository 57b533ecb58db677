//! The command line's words: every argument type, and `connector-build source-foo` as
//! short for `connector-build build source-foo`. Turning them into settings is
//! [`super::context`]'s job.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use connector_build::ci::shard::Shard;
use connector_build::migrate::{self, bump::Bump, bump::BumpParseError};

#[derive(Parser)]
#[command(
    name = "connector-build",
    version,
    about = "Build container images for Airbyte-style Python connectors from their metadata.yaml",
    after_help = "`connector-build source-foo` is short for `connector-build build source-foo`."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args)]
pub struct Global {
    /// Folder holding connector folders (repeatable). Default: `connectors_dirs` in connector-build.toml, else ROOT/airbyte-integrations/connectors then ROOT, ROOT being the folder of connector-build.toml or the current folder
    #[arg(long, global = true, value_name = "DIR")]
    pub connectors_dir: Vec<PathBuf>,
    /// Docker engine endpoint (unix://, tcp://, ssh://); repeat it to spread builds over
    /// several engines. Default: `engines`/`engine` in connector-build.toml, DOCKER_HOST, the
    /// current Docker context, then the local socket.
    #[arg(long, global = true, value_name = "URL")]
    pub engine: Vec<String>,
    /// More output: install logs and debug logs (RUST_LOG also works).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// How to show progress, as buildx names it: `tty` (bars), `plain` (lines; grouped per
    /// connector under GitHub Actions), `quiet` (nothing), `auto` (bars on a terminal, else
    /// lines; nothing with --json unless -v).
    #[arg(long, global = true, value_enum, default_value_t = ProgressArg::Auto, value_name = "MODE")]
    pub progress: ProgressArg,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    Auto,
    Tty,
    Plain,
    Quiet,
}

#[derive(Subcommand)]
pub enum Command {
    /// Build connector images and tag them `<dockerRepository>:dev`.
    Build(BuildArgs),
    /// Build connector images and push them to a registry as
    /// `<registry>/<dockerRepository>:<dockerImageTag>`; a version is never overwritten.
    Publish(PublishArgs),
    /// List connectors (all, or the selected ones) as a table or JSON.
    List {
        #[command(flatten)]
        selection: SelectionArgs,
        /// Print a JSON array (sorted by name) instead of a table.
        #[arg(long)]
        json: bool,
        /// Write to FILE instead of stdout (JSON when FILE ends in .json).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print build plans and cache keys as JSON, without an engine.
    Plan {
        /// Connector names or folders.
        #[arg(required = true)]
        connectors: Vec<String>,
        #[command(flatten)]
        plan: PlanArgs,
    },
    /// Point connectors' `connectorBuildOptions.baseImage` at a digest-pinned image: the
    /// latest published release of their base image family, or `--to`.
    UpgradeBaseImage {
        /// Which connectors; default: every connector found.
        #[command(flatten)]
        selection: SelectionArgs,
        #[command(flatten)]
        target: BaseImageTarget,
        /// Add the key to connectors that have none.
        #[arg(long)]
        set_if_not_exists: bool,
        /// Show what would change, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Base image families: build, check, publish, list, document; root images.
    BaseImages(BaseImagesArgs),
    /// Move connectors off their Dockerfiles when the image built from the base image
    /// behaves the same: Dockerfile removed, baseImage set, patch release, changelog row.
    MigrateToBaseImage(MigrateArgs),
    /// Release a new version: dockerImageTag, pyproject.toml version, changelog row.
    BumpVersion(BumpArgs),
    /// Report how the connectors' Dockerfiles and their images differ, and which
    /// connectors are migrated to a base image.
    AnalyzeDockerfiles(AnalyzeArgs),
    /// Run reports: join the reports of a run split with --shard.
    #[command(subcommand)]
    Report(ReportCommand),
    /// The engine's build cache (`connector-build-cache:<key>` entries).
    #[command(subcommand)]
    Cache(CacheCommand),
}

#[derive(Subcommand)]
pub enum CacheCommand {
    /// Remove cache entries from each engine: those older than --older-than, beyond the
    /// --keep-last builds per connector, the oldest past --max-size. Entries an image tagged
    /// outside the cache uses (e.g. a connector's `:dev`) are always kept.
    Prune {
        /// Remove entries made longer ago than this (e.g. 36h, 7d, 2weeks).
        #[arg(long, value_name = "DURATION")]
        older_than: Option<String>,
        /// Keep the N newest builds of each connector (and the entries they were built on);
        /// alone, remove every other entry.
        #[arg(long, value_name = "N")]
        keep_last: Option<usize>,
        /// Then remove the oldest entries until what the entries add is at most SIZE
        /// (e.g. 500MB, 20GiB).
        #[arg(long, value_name = "SIZE")]
        max_size: Option<String>,
        /// List what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Prune this registry cache repository too (its manifests are deleted; the registry
        /// must allow deletes), by the same rules; images tagged in the engines protect its
        /// entries as they protect the engines' own.
        #[arg(long, value_name = "REPO")]
        cache_registry: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum ReportCommand {
    /// Join the shards' reports (report folders or report.json files) into one run report:
    /// report.json, report.md and report.html in -o DIR.
    Merge {
        #[arg(required = true, value_name = "REPORT")]
        reports: Vec<PathBuf>,
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
    },
}

/// Which base image connectors move to.
#[derive(Args)]
pub struct BaseImageTarget {
    /// The digest-pinned image reference to set. Default: each connector's family's
    /// newest published release that is not a pre-release, read from the registry.
    #[arg(long, value_name = "REFERENCE")]
    pub to: Option<String>,
    /// Registry the families are published to (without --to). Default: `registry` in
    /// connector-build.toml, else 127.0.0.1:5000.
    #[arg(long, value_name = "REGISTRY", conflicts_with = "to")]
    pub registry: Option<String>,
    /// Base image declarations folder (without --to). Default: the built-in ones.
    #[arg(long, value_name = "DIR", conflicts_with = "to")]
    pub declarations: Option<PathBuf>,
}

#[derive(Args)]
pub struct PlanArgs {
    /// Tag for the built image: `name:tag`, or a tag for the connector's repository.
    #[arg(long)]
    pub tag: Option<String>,
    /// Accept a baseImage without a @sha256: digest (builds are then not reproducible).
    #[arg(long)]
    pub allow_unpinned: bool,
    /// Pull images of REGISTRY from MIRROR instead, e.g. docker.io=127.0.0.1:5000 (repeatable).
    #[arg(long, value_name = "REGISTRY=MIRROR", value_parser = parse_mirror)]
    pub mirror: Vec<(String, String)>,
    /// CA bundle given to install steps. Default: $SSL_CERT_FILE when set.
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
    /// Ignore build_customization.py (hooks are code from the repository and run with your
    /// rights, like any build script).
    #[arg(long)]
    pub no_hooks: bool,
    /// Stop a build customization whose Python code runs longer than this between two
    /// requests (evaluating its container does not count).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub hook_timeout: u64,
    /// The dependency installer: uv (several times faster; needs the uv program, which the
    /// set-up installs) or pip. Default: uv when found, else pip.
    #[arg(long, value_enum)]
    pub installer: Option<InstallerArg>,
    /// The uv program to mount into install steps. Default: $CONNECTOR_BUILD_UV, the set-up's
    /// copy, then PATH.
    #[arg(long, value_name = "FILE")]
    pub uv: Option<PathBuf>,
    /// A secret for install steps and build customization commands, at /run/secrets/NAME
    /// (BuildKit's syntax; repeatable): id=NAME,src=FILE or id=NAME,env=VARIABLE. Never in
    /// the image, a cache key, a log or a report.
    #[arg(long, value_name = "id=NAME,src=FILE")]
    pub secret: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InstallerArg {
    Uv,
    Pip,
}

/// Which connectors a command works on. Every criterion given narrows the set.
#[derive(Args, Clone, Default)]
pub struct SelectionArgs {
    /// Connector names or folders.
    pub connectors: Vec<String>,
    /// A connector name or folder (repeatable; same as a positional name).
    #[arg(long = "name", value_name = "NAME")]
    pub names: Vec<String>,
    /// Connectors with this `language:` tag (repeatable).
    #[arg(long, value_enum)]
    pub language: Vec<Language>,
    /// Connectors with this `supportLevel` (repeatable).
    #[arg(long, value_enum)]
    pub support_level: Vec<SupportLevel>,
    /// Connectors whose folder changed against --diff-base (committed, uncommitted or new).
    #[arg(long)]
    pub modified: bool,
    /// Base for --modified (implies it). Default: the merge base of HEAD with origin/master,
    /// origin/main, master or main, the first that exists.
    #[arg(long, value_name = "REF")]
    pub diff_base: Option<String>,
    /// A Python expression over `data` (the metadata's `data:` mapping), as airbyte-ci took,
    /// e.g. "data.connectorBuildOptions.baseImage is not None".
    #[arg(long, value_name = "EXPR")]
    pub metadata_query: Option<String>,
    /// Keep share INDEX of COUNT (1-based, e.g. 2/4) of what the rest selects, for a CI job
    /// matrix: the same connectors for the same selection, each in exactly one share.
    #[arg(long, value_name = "INDEX/COUNT", value_parser = clap::value_parser!(Shard))]
    pub shard: Option<Shard>,
    /// Balance the shares by the durations in this report (a report.json or its folder)
    /// instead of by count.
    #[arg(long, value_name = "REPORT", requires = "shard")]
    pub balance_from: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Language {
    Python,
    LowCode,
    ManifestOnly,
    Java,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SupportLevel {
    Certified,
    Community,
    Archived,
}

/// The cache shared through a registry.
#[derive(Args)]
pub struct CacheArgs {
    /// Repository of a cache shared through a registry (e.g. ghcr.io/acme/build-cache):
    /// entries missing from the engine are pulled from REPO:<key>, completed ones pushed.
    /// Default: `cache_registry` in connector-build.toml.
    #[arg(long, value_name = "REPO")]
    pub cache_registry: Option<String>,
    /// `read` pulls entries and pushes none (pull requests from forks); `readwrite` (the
    /// default) also pushes what this run completes.
    #[arg(long, value_enum, value_name = "MODE")]
    pub cache_mode: Option<CacheModeArg>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CacheModeArg {
    Read,
    Readwrite,
}

#[derive(Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,
    #[command(flatten)]
    pub plan: PlanArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Platforms to build, comma-separated (linux/amd64,linux/arm64). Default: the engine's.
    /// The engine's platform is tagged as usual (`:dev`), another with `-linux-<arch>`
    /// (`:dev-linux-arm64`); its commands and `spec` run under QEMU.
    #[arg(long, value_name = "PLATFORMS", value_delimiter = ',')]
    pub platform: Vec<connector_build::platform::Platform>,
    /// How many connectors to build at once on each engine. Default: the number of cores.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Start no new build after the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// After a base image bump, reuse a connector's dependency layer on the new base when it
    /// may (same platform and Python, wheels only) instead of reinstalling. Off by default:
    /// on Docker 20.10's overlay2 it measured slower than a warm reinstall (README).
    #[arg(long)]
    pub rebase: bool,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Where to write report.json, report.md and report.html. Default:
    /// <repository>/.connector-build/reports/<UTC timestamp>/.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// Write the built images' metadata to FILE as `docker buildx bake --metadata-file`
    /// does (per connector: `image.name`, `containerimage.digest`, ...).
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Registry to push to (`host[:port]`). Default: `registry` in connector-build.toml,
    /// else 127.0.0.1:5000.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub registry: Option<String>,
    /// Publish `<version>-dev.<short git commit>` instead of the version.
    #[arg(long)]
    pub pre_release: bool,
    /// Also move the `latest` tag to the published image.
    #[arg(long)]
    pub latest: bool,
}

pub fn parse_mirror(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_string(), b.to_string())),
        _ => Err(format!(
            "`{s}`: expected REGISTRY=MIRROR, e.g. docker.io=127.0.0.1:5000"
        )),
    }
}

const SUBCOMMANDS: &[&str] = &[
    "build",
    "publish",
    "cache",
    "list",
    "plan",
    "upgrade-base-image",
    "base-images",
    "migrate-to-base-image",
    "bump-version",
    "analyze-dockerfiles",
    "report",
    "help",
];

/// Global options that take a value, so their value is not read as a subcommand.
const VALUE_OPTIONS: &[&str] = &["--connectors-dir", "--engine", "--progress"];

/// A word within two edits of a subcommand that names no folder here.
fn looks_like_subcommand(word: &str) -> bool {
    word.len() >= 3
        && !word.contains('/')
        && !std::path::Path::new(word).exists()
        && SUBCOMMANDS
            .iter()
            .any(|s| strsim::damerau_levenshtein(word, s) <= 2)
}

/// `connector-build source-foo` means `connector-build build source-foo`.
pub fn with_default_subcommand(mut args: Vec<String>) -> Vec<String> {
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].as_str();
        if VALUE_OPTIONS.contains(&arg) {
            i += 2;
            continue;
        }
        if arg.starts_with('-') {
            i += 1;
            continue;
        }
        // A near miss of a subcommand (`biuld`) is left for clap to refuse with a suggestion,
        // rather than looked for as a connector of that name.
        if !SUBCOMMANDS.contains(&arg) && !looks_like_subcommand(arg) {
            args.insert(i, "build".to_string());
        }
        break;
    }
    args
}

#[derive(Args)]
pub struct BaseImagesArgs {
    /// A folder of declarations (roots.toml and one <family>.toml per family) instead of the
    /// built-in ones. Default: `base_images` in connector-build.toml.
    #[arg(long, global = true, value_name = "DIR")]
    pub declarations: Option<PathBuf>,
    /// Registry (host[:port]) to publish to and read published state from. Default:
    /// `registry` in connector-build.toml, else 127.0.0.1:5000.
    #[arg(long, global = true, value_name = "REGISTRY")]
    pub registry: Option<String>,
    /// Platforms to build, check or publish, comma-separated (linux/amd64,linux/arm64; one
    /// that is not the engine's runs under QEMU). linux/arm64 images are tagged
    /// `<version>-linux-arm64`; publishing several also puts one index over them under
    /// `<version>` (and `root build`, under the root's tag).
    #[arg(
        long,
        global = true,
        value_name = "PLATFORMS",
        value_delimiter = ',',
        default_value = "linux/amd64"
    )]
    pub platform: Vec<connector_build::platform::Platform>,
    #[command(subcommand)]
    pub command: BaseImagesCommand,
}

#[derive(Args)]
pub struct NetArgs {
    /// CA bundle given to the download steps. Default: $SSL_CERT_FILE when set.
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
    /// Pull a registry's root images from a mirror, e.g. docker.io=127.0.0.1:5000 (repeatable).
    #[arg(long, value_name = "REGISTRY=MIRROR", value_parser = parse_mirror)]
    pub mirror: Vec<(String, String)>,
}

#[derive(Subcommand)]
pub enum BaseImagesCommand {
    /// Build a version (default: the newest) on its root image; tags it `<repository>:<version>`.
    Build {
        family: String,
        version: Option<String>,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Check a built version against its declaration and print a report; fails if any check does.
    Check {
        family: String,
        version: Option<String>,
        /// Check this image instead of the version's local tag.
        #[arg(long, value_name = "REFERENCE")]
        image: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build, check and push a version (default: the newest); prints its digest-pinned address.
    Publish {
        family: String,
        version: Option<String>,
        /// Overwrite the tag when the registry has another image under it.
        #[arg(long)]
        force: bool,
        /// First publish every older declared version the registry lacks, oldest first.
        #[arg(long)]
        with_older: bool,
        #[command(flatten)]
        net: NetArgs,
    },
    /// List declared versions with their published state, read from the registry.
    List {
        /// One family; default: all.
        family: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Regenerate the documentation: changelog JSON, versions table and Dockerfiles.
    Docs {
        /// Compare with the files instead of writing them; fails when they differ.
        #[arg(long)]
        check: bool,
        /// Write here instead of `<declarations>/generated` (base-images/generated).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Fill the Published columns from the registry (machine-specific; use with --out).
        #[arg(long)]
        from_registry: bool,
    },
    /// Root images the families build on.
    Root {
        #[command(subcommand)]
        command: RootCommand,
    },
}

#[derive(Subcommand)]
pub enum RootCommand {
    /// Build debootstrap roots from Debian packages (unless the registry already has the
    /// current recipe's image), push them and record their digests; prints their addresses.
    Build {
        /// Root names; default: every debootstrap root a declared version uses.
        names: Vec<String>,
    },
}

#[derive(Args)]
pub struct MigrateArgs {
    /// Which connectors; default: every connector found that has a Dockerfile.
    #[command(flatten)]
    pub selection: SelectionArgs,
    #[command(flatten)]
    pub target: BaseImageTarget,
    /// Pull request number for the changelog row's link.
    #[arg(long, value_name = "N", value_parser = parse_pr)]
    pub pr: Option<String>,
    /// The changelog row's subject.
    #[arg(long, value_name = "TEXT", default_value = migrate::DEFAULT_MESSAGE)]
    pub message: String,
    /// Build and compare, then print the changes as a diff instead of writing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub plan: PlanArgs,
}

#[derive(Args)]
pub struct BumpArgs {
    /// major, minor, patch, rc (1.2.3 -> 1.2.4-rc.1 -> 1.2.4-rc.2) or version:X.Y.Z.
    #[arg(value_parser = parse_bump)]
    pub bump: Bump,
    /// The changelog row's subject.
    pub entry: String,
    /// Which connectors (at least one name or selection flag).
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Pull request number for the changelog row's link.
    #[arg(long, value_name = "N", value_parser = parse_pr)]
    pub pr: Option<String>,
    /// Print the changes as a diff instead of writing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct AnalyzeArgs {
    /// Which connectors; default: every connector found. `--metadata-query
    /// "data.supportLevel == 'certified'"` narrows the progress listing too.
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Write dockerfile-analysis.md and dockerfile-analysis.json into DIR (else Markdown on
    /// stdout).
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Print the JSON report on stdout instead of Markdown.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub plan: PlanArgs,
}

fn parse_pr(s: &str) -> Result<String, String> {
    let n = s.trim_start_matches('#');
    if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
        Ok(n.to_string())
    } else {
        Err(format!("`{s}`: expected a pull request number, e.g. 31234"))
    }
}

fn parse_bump(s: &str) -> Result<Bump, String> {
    s.parse().map_err(|e: BumpParseError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(args: &[&str]) -> Vec<String> {
        with_default_subcommand(args.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn a_connector_name_means_build() {
        assert_eq!(
            words(&["cb", "-v", "source-foo"]),
            ["cb", "-v", "build", "source-foo"]
        );
        assert_eq!(
            words(&["cb", "--engine", "unix:///x", "list"]),
            ["cb", "--engine", "unix:///x", "list"]
        );
    }

    #[test]
    fn biuld_is_a_misspelt_subcommand_not_a_connector() {
        assert_eq!(
            words(&["cb", "biuld", "source-foo"]),
            ["cb", "biuld", "source-foo"]
        );
        let err = Cli::try_parse_from(words(&["cb", "biuld", "source-foo"]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("similar subcommand exists: 'build'"), "{err}");
    }
}
