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


BENCH_ENGINE = {"CB_ENGINE_NAME": "cb-bench-docker", "CB_ENGINE_BRIDGE": "cb-bench-br", "CB_ENGINE_NET": "172.31.253"}


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

    log(f"cold, {first}")
    case("cold", args.runs, cold=True)
    # All warm now; the images must answer spec the same.
    same_spec = spec_of(f"bench-buildkit/{first}:dev") == spec_of(f"bench-cb/{first}:dev") == spec_of(f"bench-pip/{first}:dev")

    log("dependency change")
    # A version no tool has built with before, every run, so no run is a cache hit.
    versions = ["1.10.0", "1.11.0", "1.12.0", "1.13.0", "1.14.0", "1.15.0", "1.16.0", "1.17.0"]
    move_pin(roots, base_ref, first, versions[0])
    for tool in TOOLS:
        build(tool, roots, [first])
    case("dep change", args.runs, prepare=lambda i: move_pin(roots, base_ref, first, versions[1 + i % (len(versions) - 1)]))

    log("code edit")
    case("code edit", args.runs, prepare=lambda i: touch_code(roots, first, i))

    log("no change")
    case("no change", args.runs)

    log(f"bulk cold, {count} connectors, two builds at a time")
    case("bulk cold", args.runs, cold=True, which=names)

    log("peak memory, 300 connectors")
    plan_kb, list_kb = peak_memory(work, base_ref)
    shutil.rmtree(work, ignore_errors=True)

    print_table(results)
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
