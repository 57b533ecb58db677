"""Runs one connector's build_customization.py for connector-build.

Executed by the connector-build-hooks binary (embedded Python). Messages to and from
connector-build are JSON lines through `_connector_build.send/recv`; the hook's own `print`
output goes to stderr so it can never be mistaken for a message.
"""

import asyncio
import inspect
import importlib.util
import json
import os
import sys
import traceback

import _connector_build as cb
import dagger


def send(message):
    cb.send(json.dumps(message))


def receive():
    line = cb.recv()
    return json.loads(line) if line else None


def failure(kind, exc, path, hook=None):
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
    line = frames[-1].lineno if frames else getattr(exc, "lineno", None)
    # The connector's own frames only: the runner's, asyncio's and the shim's say nothing to
    # the hook's author (and change from one Python to the next).
    folder = os.path.dirname(path) + os.sep
    own = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(folder)]
    text = ""
    if own:
        text = "Traceback (most recent call last):\n" + "".join(traceback.StackSummary.from_list(own).format())
    text += "".join(traceback.format_exception_only(type(exc), exc))
    return {"failed": {
        "kind": kind,
        "hook": hook,
        "message": f"{type(exc).__name__}: {exc}",
        "line": line,
        "traceback": text,
    }}


async def _await(value):
    return await value


def load(path):
    folder = os.path.dirname(path)
    sys.path.insert(0, folder)
    os.chdir(folder)
    spec = importlib.util.spec_from_file_location("build_customization", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_customization"] = module
    spec.loader.exec_module(module)
    return module


def main():
    sys.stdout = sys.stderr
    request = receive()
    path = os.path.abspath(request["load"]["path"])
    try:
        module = load(path)
    except SyntaxError as e:
        send({"failed": {
            "kind": "syntax",
            "hook": None,
            "message": f"SyntaxError: {e.msg}",
            "line": e.lineno,
            "traceback": "".join(traceback.format_exception_only(type(e), e)),
        }})
        return
    except BaseException as e:  # a hook module may raise anything, even SystemExit
        send(failure("import", e, path))
        return

    main_file = getattr(module, "MAIN_FILE_NAME", None)
    if main_file is not None and (not isinstance(main_file, str) or not main_file or "/" in main_file):
        send({"failed": {
            "kind": "main_file",
            "hook": None,
            "message": f"MAIN_FILE_NAME must be a file name like 'main.py', got {main_file!r}",
            "line": None,
            "traceback": "",
        }})
        return
    hooks = {name: callable(getattr(module, name, None)) for name in ("pre_connector_install", "post_connector_install")}
    send({"loaded": {"main_file": main_file, "hooks": [n for n, present in hooks.items() if present]}})

    while True:
        request = receive()
        if request is None:
            return
        name = request["call"]["hook"]
        base = request["call"]["base"]
        try:
            result = getattr(module, name)(dagger.Container(base, ()))
            # An async hook's coroutine; a Container is awaitable too, but awaiting it would
            # build it here instead of as steps of the plan.
            if inspect.isawaitable(result) and not isinstance(result, dagger.Container):
                result = asyncio.run(_await(result))
        except BaseException as e:
            send(failure("exception", e, path, name))
            continue
        if not isinstance(result, dagger.Container):
            send({"failed": {
                "kind": "return",
                "hook": name,
                "message": f"{name} returned {type(result).__name__} ({result!r:.80}), expected a Container: return the container it was given, with your changes",
                "line": None,
                "traceback": "",
            }})
            continue
        if result._base != base:
            send({"failed": {
                "kind": "return",
                "hook": name,
                "message": f"{name} returned a container that does not derive from the one it was given (built from {result._base!r})",
                "line": None,
                "traceback": "",
            }})
            continue
        send({"returned": {"ops": list(result._ops)}})


main()
