"""A stand-in for the Dagger Python SDK, for build_customization.py hooks.

Hooks written against `dagger.Container` run unchanged: the same method names, argument
names and return types. Builder methods record an operation and return a new Container
(containers are immutable, as in Dagger); evaluating methods (`stdout()`, `env_variable()`,
`await container`, ...) ask connector-build to run what was recorded so far on the Docker
engine and return real values. connector-build turns the recorded operations into steps of
its build plan, so they are cached like every other step.
"""

from __future__ import annotations

import enum
import json
import os
from typing import Any, Optional, Sequence

import _connector_build  # provided by the connector-build-hooks runner


class DaggerError(Exception):
    """Base of the errors hooks may catch, as in the Dagger SDK."""


class QueryError(DaggerError):
    pass


class ExecError(QueryError):
    """A `with_exec` exited with an unexpected code (raised by evaluating methods)."""

    def __init__(self, message: str, cmd: Sequence[str], exit_code: int, stdout: str, stderr: str):
        super().__init__(message)
        self.message = message
        self.cmd = list(cmd)
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    def __str__(self) -> str:
        return self.message


class ReturnType(enum.Enum):
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    ANY = "ANY"


class CacheSharingMode(enum.Enum):
    SHARED = "SHARED"
    PRIVATE = "PRIVATE"
    LOCKED = "LOCKED"


class NetworkProtocol(enum.Enum):
    TCP = "TCP"
    UDP = "UDP"


class Platform(str):
    pass


class CacheVolume:
    def __init__(self, key: str):
        self._key = key

    def __repr__(self) -> str:
        return f"CacheVolume({self._key!r})"


class Secret:
    """A secret from `dag.set_secret`: its plaintext reaches the commands it is given to
    (`with_mounted_secret`, `with_secret_variable`) and nothing else: not a layer, the image
    config, a cache key, a log or a report."""

    __slots__ = ("_name", "_plaintext")

    def __init__(self, name: str, plaintext: str):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_plaintext", plaintext)

    def __setattr__(self, name, value):
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return f"Secret({self._name!r})"

    async def name(self) -> str:
        return self._name

    async def plaintext(self) -> str:
        return self._plaintext

    async def id(self) -> str:
        return self._name

    async def sync(self) -> "Secret":
        return self


def _secret(method: str, secret: Any) -> "Secret":
    if not isinstance(secret, Secret):
        raise TypeError(f"{method} expects a Secret (from dag.set_secret(...)), got {type(secret).__name__}")
    return secret


class _Awaitable:
    """Lets `await x` work on values that are already known."""

    def __await__(self):
        return self._evaluate().__await__()

    async def _evaluate(self):
        return self


class File(_Awaitable):
    def __init__(self, source: dict):
        self._source = source

    async def contents(self) -> str:
        if "container_file" in self._source:
            src = self._source["container_file"]
            return src["container"]._query({"file_contents": src["path"]})
        if "host" in self._source:
            with open(self._source["host"], encoding="utf-8") as f:
                return f.read()
        return self._source.get("inline", "")

    async def size(self) -> int:
        return len((await self.contents()).encode())

    async def sync(self) -> "File":
        return self


class Directory(_Awaitable):
    def __init__(self, source: dict, new_files: Optional[list] = None):
        self._source = source
        self._new_files = list(new_files or [])

    def with_new_file(self, path: str, contents: str = "", permissions: Optional[int] = None) -> "Directory":
        files = self._new_files + [{"path": path, "contents": contents, "permissions": permissions}]
        return Directory(self._source, files)

    def file(self, path: str) -> File:
        if "host" in self._source:
            return File({"host": os.path.join(self._source["host"], path)})
        for f in self._new_files:
            if f["path"] == path:
                return File({"inline": f["contents"]})
        raise QueryError(f"{path}: no such file in this directory")

    async def entries(self, path: Optional[str] = None) -> list:
        if "host" in self._source:
            return sorted(os.listdir(os.path.join(self._source["host"], path or ".")))
        return sorted(f["path"] for f in self._new_files)

    async def sync(self) -> "Directory":
        return self


class Host:
    def directory(self, path: str, exclude: Optional[Sequence[str]] = None, include: Optional[Sequence[str]] = None) -> Directory:
        return Directory({"host": _host_path(path), "exclude": list(exclude or []), "include": list(include or [])})

    def file(self, path: str) -> File:
        return File({"host": _host_path(path)})

    def env_variable(self, name: str) -> "_HostEnv":
        return _HostEnv(name)


class _HostEnv:
    def __init__(self, name: str):
        self._name = name

    async def value(self) -> str:
        return os.environ.get(self._name, "")


def _host_path(path: str) -> str:
    # Relative host paths are taken from the connector folder, which is the working
    # directory of the hook.
    return os.path.abspath(path)


def _argv(args: Any) -> list:
    if isinstance(args, str) or not isinstance(args, (list, tuple)):
        raise TypeError(f"with_exec expects a list of strings, got {type(args).__name__}: {args!r}")
    out = []
    for a in args:
        if not isinstance(a, str):
            raise TypeError(f"with_exec arguments must be strings, got {type(a).__name__}: {a!r}")
        out.append(a)
    if not out:
        raise ValueError("with_exec needs at least one argument")
    return out


def _enum_value(v: Any) -> Any:
    return v.value if isinstance(v, enum.Enum) else v


_SUPPORTED = [
    "with_exec", "with_env_variable", "without_env_variable", "with_new_file", "with_file",
    "with_directory", "with_workdir", "with_user", "with_label", "with_entrypoint",
    "with_mounted_secret", "with_secret_variable",
    "without_entrypoint", "with_default_args", "with_mounted_cache", "with_exposed_port",
    "from_", "file", "directory",
    "stdout", "stderr", "exit_code", "sync", "env_variable", "env_variables", "user", "workdir",
    "entrypoint", "default_args", "label",
]


class Container(_Awaitable):
    """The Dagger `Container` API, recorded as build plan operations."""

    __slots__ = ("_base", "_ops")

    def __init__(self, _base: str = "scratch", _ops: tuple = ()):
        object.__setattr__(self, "_base", _base)
        object.__setattr__(self, "_ops", tuple(_ops))

    def __setattr__(self, name, value):
        raise AttributeError("Container is immutable: every with_* method returns a new Container")

    def __getattr__(self, name: str):
        raise AttributeError(
            f"Container.{name} is not supported by connector-build; supported: {', '.join(_SUPPORTED)}"
        )

    def __repr__(self) -> str:
        return f"Container(base={self._base!r}, operations={len(self._ops)})"

    def _with(self, op: dict) -> "Container":
        return Container(self._base, self._ops + (op,))

    # --- builder methods -------------------------------------------------------------
    def from_(self, address: str) -> "Container":
        if not isinstance(address, str) or not address:
            raise TypeError("from_ expects an image address")
        return Container("image:" + address, ())

    def with_exec(
        self,
        args: Sequence[str],
        *,
        skip_entrypoint: Optional[bool] = None,
        use_entrypoint: Optional[bool] = None,
        stdin: Optional[str] = None,
        redirect_stdout: Optional[str] = None,
        redirect_stderr: Optional[str] = None,
        expect: Optional[ReturnType] = None,
        experimental_privileged_nesting: Optional[bool] = None,
        insecure_root_capabilities: Optional[bool] = None,
        expand: Optional[bool] = None,
        no_init: Optional[bool] = None,
    ) -> "Container":
        # Current Dagger runs without the entrypoint unless use_entrypoint=True; the older
        # skip_entrypoint=False spelling asks for it too.
        use = bool(use_entrypoint) or (skip_entrypoint is False)
        if insecure_root_capabilities or experimental_privileged_nesting:
            raise NotImplementedError("privileged execution is not supported by connector-build")
        return self._with({
            "op": "exec",
            "args": _argv(args),
            "use_entrypoint": use,
            "stdin": stdin,
            "redirect_stdout": redirect_stdout,
            "redirect_stderr": redirect_stderr,
            "expect": _enum_value(expect) if expect is not None else "SUCCESS",
        })

    def with_env_variable(self, name: str, value: str, expand: Optional[bool] = None) -> "Container":
        return self._with({"op": "env", "name": str(name), "value": str(value), "expand": bool(expand)})

    def without_env_variable(self, name: str) -> "Container":
        return self._with({"op": "unset_env", "name": str(name)})

    def with_new_file(
        self,
        path: str,
        contents: Optional[str] = None,
        permissions: Optional[int] = None,
        owner: Optional[str] = None,
        expand: Optional[bool] = None,
    ) -> "Container":
        return self._with({
            "op": "new_file", "path": str(path), "contents": contents or "",
            "permissions": permissions, "owner": owner,
        })

    def with_file(self, path: str, source: File, permissions: Optional[int] = None, owner: Optional[str] = None, expand: Optional[bool] = None) -> "Container":
        if not isinstance(source, File):
            raise TypeError(f"with_file expects a File (e.g. dag.host().file(...)), got {type(source).__name__}")
        if "container_file" in source._source:
            contents = source._source["container_file"]["container"]._query({"file_contents": source._source["container_file"]["path"]})
            return self.with_new_file(path, contents, permissions, owner)
        if "inline" in source._source:
            return self.with_new_file(path, source._source["inline"], permissions, owner)
        return self._with({"op": "host_file", "path": str(path), "source": source._source["host"], "permissions": permissions, "owner": owner})

    def with_directory(self, path: str, directory: Directory, exclude: Optional[Sequence[str]] = None, include: Optional[Sequence[str]] = None, owner: Optional[str] = None, expand: Optional[bool] = None) -> "Container":
        if not isinstance(directory, Directory):
            raise TypeError(f"with_directory expects a Directory (e.g. dag.host().directory(...)), got {type(directory).__name__}")
        c = self
        if "host" in directory._source:
            c = c._with({
                "op": "host_directory", "path": str(path), "source": directory._source["host"],
                "exclude": list(exclude or []) + directory._source.get("exclude", []),
                "include": list(include or []) + directory._source.get("include", []),
                "owner": owner,
            })
        for f in directory._new_files:
            c = c.with_new_file(path.rstrip("/") + "/" + f["path"], f["contents"], f["permissions"], owner)
        return c

    def with_workdir(self, path: str, expand: Optional[bool] = None) -> "Container":
        return self._with({"op": "workdir", "path": str(path)})

    def with_user(self, name: str) -> "Container":
        return self._with({"op": "user", "name": str(name)})

    def with_label(self, name: str, value: str) -> "Container":
        return self._with({"op": "label", "name": str(name), "value": str(value)})

    def with_entrypoint(self, args: Sequence[str], keep_default_args: Optional[bool] = None) -> "Container":
        return self._with({"op": "entrypoint", "args": list(args), "keep_default_args": bool(keep_default_args)})

    def without_entrypoint(self, keep_default_args: Optional[bool] = None) -> "Container":
        return self.with_entrypoint([], keep_default_args)

    def with_default_args(self, args: Sequence[str]) -> "Container":
        return self._with({"op": "default_args", "args": list(args)})

    def with_mounted_cache(self, path: str, cache: CacheVolume, source: Optional[Directory] = None, sharing: Optional[CacheSharingMode] = None, owner: Optional[str] = None, expand: Optional[bool] = None) -> "Container":
        if not isinstance(cache, CacheVolume):
            raise TypeError(f"with_mounted_cache expects dag.cache_volume(...), got {type(cache).__name__}")
        return self._with({"op": "cache", "path": str(path), "volume": cache._key})

    def with_mounted_secret(self, path: str, source: Secret, owner: Optional[str] = None, mode: Optional[int] = None, expand: Optional[bool] = None) -> "Container":
        secret = _secret("with_mounted_secret", source)
        if owner is not None or (mode is not None and mode != 0o400):
            raise NotImplementedError("with_mounted_secret: owner and mode are not supported by connector-build (the file is the command user's, mode 0400)")
        return self._with({"op": "secret_file", "path": str(path), "secret": secret._name, "plaintext": secret._plaintext})

    def with_secret_variable(self, name: str, secret: Secret) -> "Container":
        s = _secret("with_secret_variable", secret)
        return self._with({"op": "secret_env", "name": str(name), "secret": s._name, "plaintext": s._plaintext})

    def with_exposed_port(self, port: int, protocol: Optional[NetworkProtocol] = None, description: Optional[str] = None, experimental_skip_healthcheck: Optional[bool] = None) -> "Container":
        proto = _enum_value(protocol) if protocol is not None else "TCP"
        return self._with({"op": "expose", "port": int(port), "protocol": str(proto).lower()})

    def file(self, path: str) -> File:
        return File({"container_file": {"container": self, "path": path}})

    # --- evaluating methods ----------------------------------------------------------
    def _query(self, query: Any) -> Any:
        request = json.dumps({"base": self._base, "ops": list(self._ops), "query": query})
        reply = json.loads(_connector_build.evaluate(request))
        if "exec_error" in reply:
            e = reply["exec_error"]
            raise ExecError(e["message"], e["cmd"], e["exit_code"], e["stdout"], e["stderr"])
        if "error" in reply:
            raise QueryError(reply["error"])
        return reply["value"]

    async def sync(self) -> "Container":
        self._query("sync")
        return self

    async def _evaluate(self):
        return await self.sync()

    async def stdout(self) -> str:
        return self._query("stdout")

    async def stderr(self) -> str:
        return self._query("stderr")

    async def exit_code(self) -> int:
        return self._query("exit_code")

    async def env_variable(self, name: str) -> Optional[str]:
        return self._query({"env_variable": name})

    async def env_variables(self) -> list:
        return [EnvVariable(k, v) for k, v in self._query("env_variables")]

    async def user(self) -> str:
        return self._query("user")

    async def workdir(self) -> str:
        return self._query("workdir")

    async def entrypoint(self) -> list:
        return self._query("entrypoint")

    async def default_args(self) -> list:
        return self._query("default_args")

    async def label(self, name: str) -> Optional[str]:
        return self._query({"label": name})


class EnvVariable:
    def __init__(self, name: str, value: str):
        self._name, self._value = name, value

    async def name(self) -> str:
        return self._name

    async def value(self) -> str:
        return self._value


class Client:
    """`dag` and the `dagger.Client` of older SDKs."""

    def container(self, platform: Optional[Platform] = None) -> Container:
        return Container("scratch", ())

    def cache_volume(self, key: str) -> CacheVolume:
        return CacheVolume(key)

    def host(self) -> Host:
        return Host()

    def directory(self) -> Directory:
        return Directory({"inline": True})

    def set_secret(self, name: str, plaintext: str) -> Secret:
        if not isinstance(name, str) or not name:
            raise TypeError("set_secret expects a name")
        if not isinstance(plaintext, str):
            raise TypeError(f"set_secret expects the plaintext as a str, got {type(plaintext).__name__}")
        return Secret(name, plaintext)


dag = Client()
Config = dict
