#!/usr/bin/env python3
"""connector-build against the best hand-written Dockerfiles, side by side, in one run.

On the same engine and the same base image, for real Airbyte connectors fetched from PyPI,
each connector is built three ways:

  connector-build   `connector-build build --installer uv` (its `spec` check included)
  BuildKit + uv     dockerd's BuildKit (`DOCKER_BUILDKIT=1 /usr/bin/docker build`) from a
                    deps-first Dockerfile running uv with a cache mount, then `spec`
  pip (legacy)      the legacy builder from a deps-first Dockerfile running pip, then `spec`

Both Dockerfiles install the requirement set connector-build's own plan installs
(`connector-build plan --installer uv`), so the three install the same pins, and both run the
same `spec` check connector-build runs (airbyte-ci and Airbyte's action verify every image so).
The `spec` check is counted on every side and also shown apart. Runs alternate which tool goes
first. Cases, min/median/max of --runs runs:

  cold         all caches of all tools emptied, one connector
  dep change   one pinned dependency moved
  code edit    one source file changed
  no change    nothing changed
  bulk cold    all N connectors, caches emptied, every tool two builds at a time
  publish      all N connectors (builds warm) to an empty registry of the run's own:
               `connector-build publish` (reproducible image, SBOM, version tag last) against
               `docker build` (cache hit) + `docker push` of the BuildKit images

connector-build only (no Dockerfile does these):
  fleet rebuild  all N connectors after a patch release of the python base (a derived base,
                 one more file, same Python): with rebase (the dependency layers reused) vs a
                 rebuild with warm package caches and no rebase (no dependency-layer records)
  manifest fleet M synthetic manifest-only connectors (--manifest-count, default 300): cold
                 (their images removed) and no change
  registry cache (`--cache-registry`, issue 16), on the private engine with its local cache
                 emptied before every run and a registry cache warmed by an earlier build:
                 "registry no change" (a pull and a tag, no step runs) and "registry code
                 edit" (the install layer comes from the registry); `--registry-cache-only`
                 runs just these

Also connector-build's peak memory planning a synthetic repository of 300 connectors.
Prints a table and writes JSON (--json). Run: python3 bench/bench.py [--connectors 5]

--platforms runs only the platform cases (issue 15), connector-build alone, cold, on one
wheel-only connector: linux/amd64, linux/arm64 (dependencies installed natively for the
target, `spec` under QEMU), and linux/arm64 with the install emulated
(CONNECTOR_BUILD_EMULATE_INSTALL=1). Target: arm64 <= 1.5x amd64. Results go to
bench/platforms.json. Needs the set-up's arm64 base image.
"""

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "connector-build"
UV = Path("/var/lib/connector-build/tools/uv")
# Debian's client: it speaks to dockerd's own BuildKit (RUN --mount) without buildx.
BUILDKIT_DOCKER = "/usr/bin/docker"

# Real connectors that build on Python 3.11 without a compiler, with varied dependency sets.
# (airbyte-source-pokeapi 0.2.15 is not among them: its `airbyte-cdk = "^0"` now resolves to a
# CDK that fails at import on Python 3.11, which connector-build's spec check refuses.)
CONNECTORS = [
    ("airbyte-source-faker", "7.2.1"),
    ("airbyte-source-recharge", "3.0.12"),
    ("airbyte-source-hardcoded-records", "0.0.48"),
    ("airbyte-source-sentry", "0.6.11"),
    ("airbyte-source-gitlab", "4.3.7"),
]

TOOLS = ["cb", "buildkit", "pip"]
TOOL_NAMES = {"cb": "connector-build", "buildkit": "BuildKit + uv", "pip": "pip (legacy)"}

# Ratios of medians against BuildKit + uv + spec (issue 13); seconds where absolute.
TARGETS = {
    "cold": ("ratio", 0.8),
    "dep change": ("ratio", 0.3),
    "code edit": ("outside spec", 0.1),
    "no change": ("seconds", 0.1),
    "bulk cold": ("ratio", 0.8),
}
ALL_CASES = ["cold", "dep change", "code edit", "no change", "bulk cold", "fleet rebuild", "manifest fleet",
             "registry cache", "publish"]


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def run(cmd, check=True, **kw):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check and proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def docker_images(pattern):
    out = run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"]).stdout.split()
    return [i for i in out if re.match(pattern, i)]


def empty_caches(tool):
    """Removes every image and cache `tool` made (the engine is the bench's own); the other
    tools' caches stay, so their images outlive another tool's cold run."""
    victims = docker_images(rf"^bench-{tool}/")
    if tool == "cb":
        victims += docker_images(r"^connector-build-cache:")
    if victims:
        run(["docker", "rmi", "-f", *victims], check=False)
    run(["docker", "image", "prune", "-f"], check=False)
    if tool == "buildkit":
        # BuildKit's layer cache and its cache mounts (uv's cache).
        run([BUILDKIT_DOCKER, "builder", "prune", "-af"], check=False, env={**os.environ, "DOCKER_BUILDKIT": "1"})
    if tool == "cb":
        run(["docker", "volume", "rm", "-f", "connector-build-uv-cache", "connector-build-pip-cache"], check=False)


def install_step(cb_root, name):
    """The install step connector-build plans for this connector, with uv."""
    plan = json.loads(run([str(BIN), "plan", "--installer", "uv", str(cb_root / name)]).stdout)
    plan = plan[0] if isinstance(plan, list) else plan
    return next(s for s in plan["plan"]["steps"] if s["name"] == "install dependencies")["action"]["run"]


def write_requirements(cb_root, roots, name):
    """Gives both Dockerfiles the requirement set connector-build installs, from its plan."""
    step = install_step(cb_root, name)
    reqs = next(f["contents"] for f in step["scratch_files"] if f["name"] == "requirements.txt")
    for root in roots:
        (root / name / "requirements.txt").write_text(reqs)
    return step


def dockerfile(tool, base_ref, name, step):
    package = name.replace("-", "_")
    if tool == "buildkit":
        # uv as connector-build runs it: the same arguments and settings, the package cache a
        # BuildKit cache mount, uv itself and the CA bundle bind-mounted (never in a layer).
        args = ["/opt/uv/uv" if a.endswith("/uv") else a for a in step["args"]]
        args = ["requirements.txt" if a.endswith("/requirements.txt") else a for a in args]
        env = " ".join(f"{k}={v}" for k, v in step["build_env"] if k != "UV_CACHE_DIR")
        install = (
            "RUN --mount=type=bind,source=uv,target=/opt/uv/uv "
            "--mount=type=bind,source=ca.pem,target=/etc/ssl/certs/bench-ca.pem "
            "--mount=type=cache,target=/root/.cache/uv \\\n"
            f"    SSL_CERT_FILE=/etc/ssl/certs/bench-ca.pem UV_CACHE_DIR=/root/.cache/uv {env} {' '.join(args)}"
        )
        head = ""
    else:
        install = ("RUN PIP_CERT=/etc/ssl/certs/bench-ca.pem pip install --disable-pip-version-check "
                   "--root-user-action=ignore --compile -r requirements.txt")
        head = "COPY ca.pem /etc/ssl/certs/bench-ca.pem\n"
    return f"""FROM {base_ref}
WORKDIR /airbyte/integration_code
{head}COPY requirements.txt ./
{install}
COPY main.py ./
COPY {package} ./{package}
ENV AIRBYTE_ENTRYPOINT "python /airbyte/integration_code/main.py"
ENTRYPOINT ["python", "/airbyte/integration_code/main.py"]
"""


def lay_out(work, base_ref, count):
    roots = {t: work / t for t in TOOLS}
    names = []
    for pypi, version in CONNECTORS[:count]:
        folder = run(["bash", str(ROOT / "scripts/fetch-pypi-connector.sh"), pypi, version, str(roots["cb"]), base_ref]).stdout.strip()
        names.append(Path(folder).name)
    ca = os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    for name in names:
        src = roots["cb"] / name
        version = re.search(r"dockerImageTag: (\S+)", (src / "metadata.yaml").read_text()).group(1)
        for tool in ("buildkit", "pip"):
            dst = roots[tool] / name
            shutil.copytree(src, dst)
            shutil.copy(ca, dst / "ca.pem")
            (dst / ".dockerignore").write_text("secrets\n.venv\n**/__pycache__\nbuild\n*.egg-info\n.git\n")
        for tool in ("buildkit", "pip"):
            (roots[tool] / name / "version").write_text(version)
        try:
            os.link(UV, roots["buildkit"] / name / "uv")
        except OSError:
            shutil.copy(UV, roots["buildkit"] / name / "uv")
        relayout(roots, base_ref, name)
    return roots, names


def relayout(roots, base_ref, name):
    """(Re)writes both Dockerfiles and their requirements from connector-build's plan."""
    step = write_requirements(roots["cb"], [roots["buildkit"], roots["pip"]], name)
    for tool in ("buildkit", "pip"):
        dst = roots[tool] / name
        version = (dst / "version").read_text()
        (dst / "Dockerfile").write_text(dockerfile(tool, base_ref, name, step)
                                        + f"LABEL io.airbyte.version={version}\nLABEL io.airbyte.name=airbyte/{name}\n")


# Where connector-build's time went in each run, by step name (from --json).
STEPS = []


def cb_build(roots, names, concurrency=1):
    """Wall-clock seconds and the `spec` check's share (its `smoke test` steps)."""
    cmd = [str(BIN), "build", "--json", "--installer", "uv", "--concurrency", str(concurrency)]
    cmd += [str(roots["cb"] / n) for n in names]
    if len(names) == 1:
        cmd += ["--tag", f"bench-cb/{names[0]}:dev"]
    start = time.monotonic()
    out = run(cmd).stdout
    elapsed = time.monotonic() - start
    steps = {}
    for result in json.loads(out)["connectors"]:
        if result.get("dependency_layer"):
            log(f"connector-build {result['connector']}: dependency layer: {result['dependency_layer']}")
        for step in result.get("steps") or []:
            steps[step["name"]] = steps.get(step["name"], 0.0) + step["seconds"]
    STEPS.append(steps)
    return elapsed, steps.get("smoke test", 0.0)


def spec_of(image):
    out = run(["docker", "run", "--rm", "--network", "none", image, "spec"]).stdout
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("type") == "SPEC":
            return msg
    raise SystemExit(f"bench: {image} printed no SPEC")


def docker_one(tool, roots, name):
    """One Dockerfile build, then the `spec` check: (total seconds, spec seconds)."""
    image = f"bench-{tool}/{name}:dev"
    client = BUILDKIT_DOCKER if tool == "buildkit" else "docker"
    env = {**os.environ, "DOCKER_BUILDKIT": "1" if tool == "buildkit" else "0"}
    start = time.monotonic()
    run([client, "build", "-q", "-t", image, str(roots[tool] / name)], env=env)
    built = time.monotonic()
    spec_of(image)
    done = time.monotonic()
    return done - start, done - built


def build(tool, roots, names):
    """Builds `names` with `tool`, two at a time when several: (seconds, spec seconds)."""
    if tool == "cb":
        return cb_build(roots, names, concurrency=2 if len(names) > 1 else 1)
    if len(names) == 1:
        return docker_one(tool, roots, names[0])
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        specs = sum(s for _, s in pool.map(lambda n: docker_one(tool, roots, n), names))
    return time.monotonic() - start, specs


def touch_code(roots, name, i):
    package = name.replace("-", "_")
    for root in roots.values():
        init = root / name / package / "__init__.py"
        init.write_text(init.read_text() + f"\n# bench edit {time.time()} {i}\n")


def move_pin(roots, base_ref, name, version):
    """Pins `six` at `version` in connector-build's pyproject; the Dockerfiles follow its plan."""
    py = roots["cb"] / name / "pyproject.toml"
    text = re.sub(r'\nsix = "[^"]*"', "", py.read_text())
    text = text.replace("[tool.poetry.dependencies]\n", f'[tool.poetry.dependencies]\nsix = "{version}"\n', 1)
    py.write_text(text)
    relayout(roots, base_ref, name)


def cb_registry_build(roots, name, cache):
    """One build with the registry cache: (seconds, containers started, steps that ran)."""
    cmd = [str(BIN), "build", "--json", "--installer", "uv", "--cache-registry", cache,
           "--tag", f"bench-cb/{name}:dev", "--progress", "plain", str(roots["cb"] / name)]
    start = time.monotonic()
    proc = run(cmd)
    elapsed = time.monotonic() - start
    if "registry cache" in proc.stderr:
        raise SystemExit(f"bench: the registry cache was not used:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout)["connectors"][0]
    ran = [s["name"] for s in result["steps"] if not s["cached"]]
    return elapsed, result["containers_started"], ran


def registry_cache_cases(roots, first, runs, results):
    """The registry cache's cases: each run starts from an empty local cache."""
    cache = f"127.0.0.1:5000/connector-build-bench-cache/r{int(time.time())}"
    empty_caches("cb")
    cb_registry_build(roots, first, cache)  # warms the registry cache
    rows = {"registry no change": ([], [], []), "registry code edit": ([], [], [])}
    for i in range(runs):
        for label in rows:
            empty_caches("cb")
            if label == "registry code edit":
                touch_code(roots, first, 1000 + i)
            t, containers, ran = cb_registry_build(roots, first, cache)
            rows[label][0].append(t)
            rows[label][1].append(containers)
            rows[label][2].append(ran)
    for label, (times, containers, ran) in rows.items():
        results[label] = {"cb": {"total_s": stats(times), "runs_s": [round(x, 3) for x in times]},
                          "containers_started": containers, "steps_run": ran}
        log(f"{label}: {stats(times)['median']:.2f}s, containers {containers}, steps run {ran[-1]}")
    return cache


def print_registry_table(results):
    if not results:
        return
    print(f"\n{'case':<19} {'connector-build':>24} {'containers':>11}  steps that ran (last run)")
    for label in ("registry no change", "registry code edit"):
        r = results.get(label)
        if not r:
            continue
        s = r["cb"]["total_s"]
        cell = f"{s['median']:.2f}s ({s['min']:.2f}-{s['max']:.2f})"
        print(f"{label:<19} {cell:>24} {max(r['containers_started']):>11}  {', '.join(r['steps_run'][-1]) or 'none'}")
    no_change, edit = results.get("registry no change"), results.get("registry code edit")
    if no_change and edit:
        print("target: no change runs no step: " + ("yes" if all(not r for r in no_change["steps_run"]) else "NO")
              + "; code edit installs nothing: "
              + ("yes" if all("install dependencies" not in r for r in edit["steps_run"]) else "NO"))


def peak_memory(work, base_ref, count=300):
    repo = work / "synthetic"
    template = ROOT / "connectors-fixtures" / "source-fixture-requirements"
    names = []
    for i in range(count):
        name = f"source-synthetic-{i:03d}"
        dst = repo / name
        shutil.copytree(template, dst)
        (dst / "source_fixture_requirements").rename(dst / name.replace("-", "_"))
        meta = (dst / "metadata.yaml").read_text()
        meta = re.sub(r"baseImage: \S+", f"baseImage: {base_ref}", meta)
        (dst / "metadata.yaml").write_text(meta.replace("source-fixture-requirements", name))
        names.append(name)
    proc = run(["/usr/bin/time", "-f", "%M", str(BIN), "--connectors-dir", str(repo), "plan", *names])
    plan_kb = int(proc.stderr.strip().splitlines()[-1])
    listing = run(["/usr/bin/time", "-f", "%M", str(BIN), "--connectors-dir", str(repo), "list", "--json"], check=False)
    list_kb = int(listing.stderr.strip().splitlines()[-1]) if listing.returncode == 0 else None
    return plan_kb, list_kb


# BENCH_CB_ENGINE_NAME (and _BRIDGE, _NET) override these, so two benchmarks can run at once.
BENCH_ENGINE = {k: os.environ.get(f"BENCH_{k}", v) for k, v in
                {"CB_ENGINE_NAME": "cb-bench-docker", "CB_ENGINE_BRIDGE": "cb-bench-br", "CB_ENGINE_NET": "172.31.253"}.items()}


def registry_start(folder):
    """A `docker-registry` of the bench's own on a free port, empty: (process, address)."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                      f"    rootdirectory: {folder / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("bench: the registry did not start")
            time.sleep(0.05)
    return proc, f"127.0.0.1:{port}"


def publish_case(runs, roots, names, work):
    """Seconds to publish `names` to an empty registry: connector-build vs build + push."""
    times = {"cb": [], "buildkit": []}
    for i in range(runs):
        for tool in (["cb", "buildkit"] if i % 2 == 0 else ["buildkit", "cb"]):
            proc, address = registry_start(work / f"registry-{tool}-{i}")
            try:
                start = time.monotonic()
                if tool == "cb":
                    # One platform, as the `docker build` + `docker push` it is compared with.
                    run([str(BIN), "publish", "--json", "--installer", "uv", "--registry", address,
                         "--platform", "linux/amd64"]
                        + [str(roots["cb"] / n) for n in names],
                        env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"})
                else:
                    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
                    for n in names:
                        image = f"{address}/bench/{n}:{(roots['buildkit'] / n / 'version').read_text()}"
                        run([BUILDKIT_DOCKER, "build", "-q", "-t", image, str(roots["buildkit"] / n)], env=env)
                        run(["docker", "push", "-q", image])
                        run(["docker", "image", "rm", image], check=False)
                times[tool].append(time.monotonic() - start)
            finally:
                proc.kill()
                proc.wait()
                shutil.rmtree(work / f"registry-{tool}-{i}", ignore_errors=True)
    return {"connector-build publish": stats(times["cb"]), "docker build + push": stats(times["buildkit"]),
            "connectors": len(names)}


def own_engine(action):
    """Starts or stops the benchmark's private engine (scripts/second-engine.sh)."""
    env = {**os.environ, **BENCH_ENGINE}
    return run(["bash", str(ROOT / "scripts/second-engine.sh"), action], env=env).stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connectors", type=int, default=5, help="how many real connectors (default 5)")
    ap.add_argument("--runs", type=int, default=3, help="runs per case (default 3); min/median/max reported")
    ap.add_argument("--json", default=str(ROOT / "bench" / "results.json"), help="where to write the results")
    ap.add_argument("--shared-engine", action="store_true",
                    help="use DOCKER_HOST's engine instead of a private one (its caches get emptied)")
    ap.add_argument("--bin", help="connector-build program to measure (default: a release build made here)")
    ap.add_argument("--registry-cache-only", action="store_true", help="run only the registry cache cases (--cases \"registry cache\")")
    ap.add_argument("--cases", default=",".join(ALL_CASES),
                    help=f"comma-separated cases to run (default all: {', '.join(ALL_CASES)})")
    ap.add_argument("--manifest-count", type=int, default=300, help="manifest-only connectors in the manifest fleet case")
    ap.add_argument("--platforms", action="store_true",
                    help="only the platform cases: amd64 and arm64 cold, arm64 with emulation forced")
    args = ap.parse_args()
    count = max(1, min(args.connectors, len(CONNECTORS)))
    global BIN

    log("set-up and release build")
    base_ref = run(["bash", str(ROOT / "scripts/setup.sh")]).stdout.strip().splitlines()[-1]
    if args.bin:
        BIN = Path(args.bin).resolve()
    else:
        run(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
    if args.platforms:
        # Its own private engine, so it can run beside the main benchmark.
        BENCH_ENGINE.update(PLATFORM_ENGINE)
    if not args.shared_engine:
        # A private engine: emptying caches between cases must not touch anyone's builds,
        # and all tools still share one engine.
        os.environ["DOCKER_HOST"] = own_engine("start").splitlines()[-1]
        log(f"private engine {os.environ['DOCKER_HOST']}")
    try:
        if args.platforms:
            measure_platforms(args, base_ref)
        else:
            measure(args, count, base_ref)
    finally:
        if not args.shared_engine:
            own_engine("stop")


def order(i):
    """Which tool goes first changes every run."""
    return TOOLS[i % len(TOOLS):] + TOOLS[:i % len(TOOLS)]


def stats(xs):
    return {"min": round(min(xs), 3), "median": round(statistics.median(xs), 3), "max": round(max(xs), 3)}


def measure(args, count, base_ref):
    work = Path(tempfile.mkdtemp(prefix="connector-build-bench-"))
    # Pulled by digest the base image has no tag, and `docker image prune` (which empties
    # docker build's cache) would remove it: a tag keeps every tool from re-pulling it.
    run(["docker", "tag", base_ref, "bench-base:keep"])
    roots, names = lay_out(work, base_ref, count)
    first = names[0]
    results = {}
    def case(label, runs, prepare=None, cold=False, which=None):
        """`runs` rounds; each tool once per round, in rotating order."""
        which = which or [first]
        times = {t: [] for t in TOOLS}
        specs = {t: [] for t in TOOLS}
        for i in range(runs):
            if prepare:
                prepare(i)
            for tool in order(i):
                if cold:
                    empty_caches(tool)
                total, spec = build(tool, roots, which)
                times[tool].append(total)
                specs[tool].append(spec)
        r = {t: {"total_s": stats(times[t]), "spec_s": stats(specs[t]),
                 "outside_spec_s": stats([a - b for a, b in zip(times[t], specs[t])]),
                 "runs_s": [round(x, 3) for x in times[t]]} for t in TOOLS}
        r["cb_steps_s"] = {k: round(v, 3) for k, v in STEPS[-1].items()} if STEPS else {}
        results[label] = r
        log(f"{label}: " + ", ".join(f"{TOOL_NAMES[t]} {r[t]['total_s']['median']:.2f}s (spec {r[t]['spec_s']['median']:.2f}s)"
                                     for t in TOOLS) + f"; connector-build steps {r['cb_steps_s']}")

    wanted = {c.strip() for c in args.cases.split(",")}
    if args.registry_cache_only:
        wanted = {"registry cache"}
    same_spec = None
    if "cold" in wanted:
        log(f"cold, {first}")
        case("cold", args.runs, cold=True)
        # All warm now; the images must answer spec the same.
        same_spec = spec_of(f"bench-buildkit/{first}:dev") == spec_of(f"bench-cb/{first}:dev") == spec_of(f"bench-pip/{first}:dev")
    if "dep change" in wanted:
        dep_change(args, case, roots, base_ref, first)
    if "code edit" in wanted:
        log("code edit")
        case("code edit", args.runs, prepare=lambda i: touch_code(roots, first, i))
    if "no change" in wanted:
        log("no change")
        case("no change", args.runs)
    if "bulk cold" in wanted:
        log(f"bulk cold, {count} connectors, two builds at a time")
        case("bulk cold", args.runs, cold=True, which=names)
    extra = {}
    if "fleet rebuild" in wanted:
        extra["fleet rebuild"] = fleet_rebuild(args, roots, names, base_ref, work)
    if "manifest fleet" in wanted:
        extra["manifest fleet"] = manifest_fleet(args, work)
    registry = {}
    if "registry cache" in wanted:
        log(f"registry cache, {first}")
        registry_cache_cases(roots, first, args.runs, registry)
    published = None
    if "publish" in wanted:
        log(f"publish, {count} connectors, to an empty registry")
        published = publish_case(args.runs, roots, names, work)
        log(f"publish: {published}")

    log("peak memory, 300 connectors")
    plan_kb, list_kb = peak_memory(work, base_ref)
    shutil.rmtree(work, ignore_errors=True)

    print_table(results)
    print_extra(extra)
    print_registry_table(registry)
    if published:
        cbp, push = published["connector-build publish"], published["docker build + push"]
        print(f"\npublish {count} connectors to an empty registry: connector-build {cbp['median']:.2f}s "
              f"({cbp['min']:.2f}-{cbp['max']:.2f}), docker build + push {push['median']:.2f}s "
              f"({push['min']:.2f}-{push['max']:.2f}), {cbp['median'] / push['median']:.2f}x")
        results["publish"] = published
    results.update(extra)
    results.update(registry)
    finish(args, results, plan_kb, list_kb, same_spec, names)


def dep_change(args, case, roots, base_ref, first):
    log("dependency change")
    # A version no tool has built with before, every run, so no run is a cache hit.
    versions = ["1.10.0", "1.11.0", "1.12.0", "1.13.0", "1.14.0", "1.15.0", "1.16.0", "1.17.0"]
    move_pin(roots, base_ref, first, versions[0])
    for tool in TOOLS:
        build(tool, roots, [first])
    case("dep change", args.runs, prepare=lambda i: move_pin(roots, base_ref, first, versions[1 + i % (len(versions) - 1)]))


def finish(args, results, plan_kb, list_kb, same_spec, names):
    mem = {"plan_300_kb": plan_kb, "list_300_kb": list_kb}
    peak = max(v for v in mem.values() if v)
    print(f"\npeak memory planning 300 connectors: {peak / 1024:.1f} MB (target <= 100 MB: {'yes' if peak <= 100 * 1024 else 'NO'})")
    print(f"spec identical (connector-build, BuildKit + uv, pip): {same_spec}")
    engine = run(["docker", "version", "--format", "{{.Server.Version}}"]).stdout.strip()
    cpus, mem_kb = os.cpu_count(), int(open("/proc/meminfo").read().split()[1])
    machine = f"{cpus} cores, {mem_kb / 1024 / 1024:.0f} GiB, engine {engine}"
    print(f"connectors: {', '.join(names)}; runs per case: {args.runs}; installer: uv; {machine}")
    Path(args.json).write_text(json.dumps({"cases": results, "memory": mem, "spec_identical": same_spec,
                                           "connectors": names, "runs": args.runs, "machine": machine}, indent=2) + "\n")
    log(f"results written to {args.json}")


def derived_base(base_ref, name):
    """A patch release of the python base: one more file, the same Python (labelled)."""
    d = Path(tempfile.mkdtemp(prefix="bench-base-"))
    (d / "Dockerfile").write_text(f"FROM {base_ref}\nRUN echo {name} > /etc/base-release\n"
                                  "LABEL org.connector-build.python=3.11.2\n")
    tag = f"127.0.0.1:5000/bench/python-connector-base:{name}"
    run(["docker", "build", "-q", "-t", tag, str(d)], env={**os.environ, "DOCKER_BUILDKIT": "0"})
    run(["docker", "push", "-q", tag])
    digest = run(["docker", "image", "inspect", "--format", "{{index .RepoDigests 0}}", tag]).stdout.strip()
    shutil.rmtree(d, ignore_errors=True)
    return f"{tag}@{digest.rsplit('@', 1)[1]}"


def set_base(root, names, ref):
    for n in names:
        meta = root / n / "metadata.yaml"
        meta.write_text(re.sub(r"baseImage: \S+", f"baseImage: {ref}", meta.read_text()))


def timed_build(root, names, env=None, rebase=False):
    cmd = [str(BIN), "build", "--json", "--installer", "uv", "--concurrency", "2",
           *(["--rebase"] if rebase else []), *[str(root / n) for n in names]]
    start = time.monotonic()
    out = run(cmd, env={**os.environ, **(env or {})}).stdout
    elapsed = time.monotonic() - start
    steps, hows = {}, []
    for r in json.loads(out)["connectors"]:
        own = {st["name"]: st["seconds"] for st in r.get("steps") or []}
        hows.append(f"{r['connector']}: {r.get('dependency_layer') or 'cached'} "
                    f"(install step {own.get('install dependencies', 0):.2f}s, total {r['seconds']:.2f}s)")
        for name, sec in own.items():
            steps[name] = round(steps.get(name, 0.0) + sec, 3)
    return elapsed, steps, hows


def fleet_rebuild(args, roots, names, base_ref, work):
    """N connectors after a python base patch release: rebase vs warm rebuild, no rebase."""
    log(f"fleet rebuild, {len(names)} connectors")
    root = roots["cb"]
    xdg = work / "xdg-fleet"
    env = {"XDG_CACHE_HOME": str(xdg)}
    set_base(root, names, base_ref)
    timed_build(root, names, env)  # warm; records of the dependency layers
    rebase, warm = [], []
    for i in range(args.runs):
        new = derived_base(base_ref, f"patch-{os.getpid()}-{i}")
        set_base(root, names, new)
        t, steps, hows = timed_build(root, names, env, rebase=True)
        rebase.append(t)
        log(f"fleet rebuild with rebase: {t:.2f}s {hows} {steps}")
        # The same kind of release, with no dependency-layer records: reinstalls, caches warm.
        other = derived_base(base_ref, f"patch-{os.getpid()}-{i}-norebase")
        set_base(root, names, other)
        t, steps, hows = timed_build(root, names, {"XDG_CACHE_HOME": str(work / f"xdg-none-{i}")})
        warm.append(t)
        log(f"fleet rebuild without rebase: {t:.2f}s {hows} {steps}")
        set_base(root, names, new)
    set_base(root, names, base_ref)
    return {"rebase_s": stats(rebase), "warm_rebuild_s": stats(warm),
            "ratio": round(statistics.median(rebase) / statistics.median(warm), 3), "target": "<= 0.3x"}


def manifest_fleet(args, work):
    """M synthetic manifest-only connectors: cold (images and entries removed), no change."""
    count = args.manifest_count
    log(f"manifest fleet, {count} manifest-only connectors")
    repo = work / "manifest-fleet"
    template = ROOT / "connectors-fixtures" / "source-fixture-manifest"
    declarative = Path("/var/lib/connector-build/declarative-base-image.ref").read_text().strip()
    names = []
    stamp = f"{os.getpid()}-{time.time_ns()}"
    for i in range(count):
        name = f"source-manifest-synthetic-{i:03d}"
        dst = repo / name
        shutil.copytree(template, dst)
        meta = (dst / "metadata.yaml").read_text().replace("source-fixture-manifest", name)
        meta = re.sub(r"baseImage: \S+", f"baseImage: {declarative}", meta)
        (dst / "metadata.yaml").write_text(meta)
        # Unique manifests: a cold run really builds.
        (dst / "manifest.yaml").write_text((dst / "manifest.yaml").read_text() + f"\n# {stamp} {i}\n")
        names.append(name)
    cmd = [str(BIN), "--connectors-dir", str(repo), "build", "--json", "--concurrency", "2", *names]
    start = time.monotonic()
    run(cmd)
    cold = time.monotonic() - start
    start = time.monotonic()
    run(cmd)
    nochange = time.monotonic() - start
    tags = [f"airbyte/{n}:dev" for n in names]
    run(["docker", "rmi", "-f", *tags], check=False)
    log(f"manifest fleet: cold {cold:.2f}s, no change {nochange:.2f}s")
    return {"connectors": count, "cold_s": round(cold, 3), "no_change_s": round(nochange, 3)}


def print_extra(extra):
    if "fleet rebuild" in extra:
        f = extra["fleet rebuild"]
        print(f"\nfleet rebuild: rebase {f['rebase_s']['median']:.2f}s vs warm rebuild without rebase "
              f"{f['warm_rebuild_s']['median']:.2f}s = {f['ratio']:.2f}x (target <= 0.3x: {'yes' if f['ratio'] <= 0.3 else 'NO'})")
    if "manifest fleet" in extra:
        m = extra["manifest fleet"]
        print(f"manifest fleet ({m['connectors']} manifest-only): cold {m['cold_s']:.2f}s, no change {m['no_change_s']:.2f}s")
PLATFORM_ENGINE = {"CB_ENGINE_NAME": "cb-bench-arm64-docker", "CB_ENGINE_BRIDGE": "cb-bench-br64",
                   "CB_ENGINE_NET": "172.31.249"}
# Wheel-only on linux/aarch64 with Python 3.11 (every locked distribution has a wheel there).
PLATFORM_CONNECTOR = ("airbyte-source-faker", "7.2.1")
ARM64_REF_FILE = Path("/var/lib/connector-build/arm64-base-image.ref")


def measure_platforms(args, base_ref):
    """Cold builds of one connector for linux/amd64, linux/arm64 and linux/arm64 with the
    install emulated, each after emptying connector-build's caches; rounds rotate the order."""
    if not ARM64_REF_FILE.is_file():
        raise SystemExit(f"bench: {ARM64_REF_FILE} is missing; run SETUP_ARM64=wait bash scripts/setup.sh")
    work = Path(tempfile.mkdtemp(prefix="connector-build-bench-platforms-"))
    # Both base images tagged, so emptying caches (`image prune`) keeps them.
    run(["docker", "tag", base_ref, "bench-base:keep"])
    arm64_ref = ARM64_REF_FILE.read_text().strip()
    run(["docker", "pull", "--platform", "linux/arm64", arm64_ref])
    run(["docker", "tag", arm64_ref, "bench-base:keep-arm64"])
    pypi, version = PLATFORM_CONNECTOR
    folder = Path(run(["bash", str(ROOT / "scripts/fetch-pypi-connector.sh"), pypi, version, str(work), base_ref]).stdout.strip())
    name = folder.name
    cases = {"amd64": ("linux/amd64", {}), "arm64": ("linux/arm64", {}),
             "arm64 emulated": ("linux/arm64", {"CONNECTOR_BUILD_EMULATE_INSTALL": "1"})}
    times = {c: [] for c in cases}
    steps = {c: {} for c in cases}
    cross = {}
    labels = list(cases)
    for i in range(args.runs):
        for label in labels[i % len(labels):] + labels[:i % len(labels)]:
            platform, env = cases[label]
            empty_caches("cb")
            cmd = [str(BIN), "build", "--json", "--installer", "uv", "--platform", platform,
                   "--tag", f"bench-cb/{name}:dev", str(folder)]
            start = time.monotonic()
            out = run(cmd, env={**os.environ, **env}).stdout
            times[label].append(time.monotonic() - start)
            log(f"{label}: {times[label][-1]:.1f}s")
            result = json.loads(out)["connectors"][0]
            steps[label] = {s["name"]: s["seconds"] for s in result.get("steps") or []}
            if result.get("platforms"):
                cross[label] = result["platforms"][0].get("cross", [])
    log("platform cases done")
    results = {c: {"total_s": stats(times[c]), "runs_s": [round(x, 3) for x in times[c]],
                   "steps_s": steps[c], "cross": cross.get(c, [])} for c in cases}
    amd, arm, emu = (results[c]["total_s"]["median"] for c in cases)
    print(f"\n{'case':<16} {'median (min-max)':>26}  vs amd64")
    for c in cases:
        t = results[c]["total_s"]
        print(f"{c:<16} {t['median']:>9.2f}s ({t['min']:.2f}-{t['max']:.2f}){'':>6} {t['median'] / amd:>5.2f}x")
    met = arm / amd <= 1.5
    print(f"arm64 / amd64 cold: {arm / amd:.2f}x (target <= 1.5x: {'yes' if met else 'NO'}); "
          f"emulated install: {emu / amd:.2f}x")
    print(f"arm64 install: {cross.get('arm64')}")
    engine = run(["docker", "version", "--format", "{{.Server.Version}}"]).stdout.strip()
    cpus, mem_kb = os.cpu_count(), int(open("/proc/meminfo").read().split()[1])
    machine = f"{cpus} cores, {mem_kb / 1024 / 1024:.0f} GiB, engine {engine}"
    print(f"connector: {name}; runs per case: {args.runs}; {machine}")
    out = ROOT / "bench" / "platforms.json"
    out.write_text(json.dumps({"cases": results, "arm64_ratio": round(arm / amd, 3),
                               "emulated_ratio": round(emu / amd, 3), "target_met": met,
                               "connector": name,
                               "runs": args.runs, "machine": machine}, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    log(f"results written to {out}")


def print_table(results):
    """Medians with (min–max); ratios of medians against each baseline; the target's verdict."""
    def cell(r, key="total_s"):
        s = r[key]
        return f"{s['median']:.2f}s ({s['min']:.2f}-{s['max']:.2f})"

    head = (f"\n{'case':<11} {'connector-build':>24} {'BuildKit + uv':>24} {'pip (legacy)':>24} "
            f"{'vs BK':>6} {'vs pip':>6}  {'target':<22} ok   spec: cb / BK")
    print(head)
    for label, r in results.items():
        cb, bk, pip = (r[t]["total_s"]["median"] for t in TOOLS)
        kind, limit = TARGETS[label]
        if kind == "ratio":
            met, tgt = cb / bk <= limit, f"<= {limit}x BK"
        elif kind == "seconds":
            met, tgt = cb <= limit, f"<= {limit}s"
        else:
            met, tgt = r["cb"]["outside_spec_s"]["median"] <= limit, f"<= {limit}s outside spec"
        r["target"], r["met"] = tgt, met
        print(f"{label:<11} {cell(r['cb']):>24} {cell(r['buildkit']):>24} {cell(r['pip']):>24} "
              f"{cb / bk:>5.2f}x {cb / pip:>5.2f}x  {tgt:<22} {'yes' if met else 'NO ':<4} "
              f"{r['cb']['spec_s']['median']:.2f}s / {r['buildkit']['spec_s']['median']:.2f}s")


if __name__ == "__main__":
    main()
