"""Take a PNG screenshot of a registered model's page in the MLflow UI.

Starts a throwaway ``mlflow server`` on 127.0.0.1 against the given backend store, checks
that the registered model exists, then lets headless Chromium render the model page (its
versions table with tags and aliases such as ``champion``/``challenger``) and writes the
screenshot atomically. The server is always stopped again, on error too.

Usage::

    .venv/bin/python scripts/mlflow_ui_screenshot.py \\
        --backend-store-uri sqlite:///mlflow.db \\
        --model digits-cnn.onnxruntime-cpu --out docs/mlflow-registry.png

Exit codes: 0 on success, 2 on a handled error (one line on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

DEFAULT_CHROMIUM = "/usr/bin/chromium"
# A ``*.localhost`` name resolves to loopback inside Chromium without DNS. Using it instead of
# 127.0.0.1 keeps the MLflow UI from treating the page as a local server, which would open its
# "Assistant" side panel on first load and squeeze the versions table.
UI_HOSTNAME = "mlflow-ui.localhost"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The model page lists 25 versions per page, newest first.
UI_PAGE_SIZE = 25
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}
SERVER_ENV = {
    **QUIET_ENV,
    # No background job runner (huey consumers): not needed to browse the registry.
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


class ScreenshotError(Exception):
    """A handled failure, reported as one line on stderr with exit code 2."""


@dataclass(frozen=True)
class ModelSummary:
    """What the page should show: the newest version numbers and their aliases."""

    name: str
    versions: tuple[int, ...]
    aliases: dict[str, int]

    def expected_texts(self) -> list[str]:
        """Strings that must appear in the rendered page's DOM."""
        shown = sorted(self.versions, reverse=True)[:UI_PAGE_SIZE]
        texts = [self.name, *(f"Version {v}" for v in shown)]
        texts += [alias for alias, version in sorted(self.aliases.items()) if version in shown]
        return texts

    def describe(self) -> str:
        """One human-readable line, e.g. ``2 versions; aliases champion=v2, previous=v1``."""
        aliases = ", ".join(f"{a}=v{v}" for a, v in sorted(self.aliases.items())) or "none"
        count = len(self.versions)
        return f"{count} version{'' if count == 1 else 's'}; aliases {aliases}"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend-store-uri", required=True, help="e.g. sqlite:///mlflow.db")
    parser.add_argument(
        "--registry-store-uri", default=None, help="defaults to --backend-store-uri"
    )
    parser.add_argument("--model", required=True, help="registered model name")
    parser.add_argument("--out", required=True, type=Path, help="PNG file to write")
    parser.add_argument(
        "--artifacts-destination",
        type=Path,
        default=None,
        help="artifact folder for the server (default: a temporary folder)",
    )
    parser.add_argument("--chromium", default=DEFAULT_CHROMIUM, help="Chromium executable")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument(
        "--budget-ms",
        type=int,
        default=15000,
        help="Chromium virtual time budget for the single-page app to render",
    )
    parser.add_argument(
        "--startup-timeout", type=float, default=90.0, help="seconds to wait for /health"
    )
    return parser.parse_args(argv)


def mlflow_executable() -> Path:
    """Return the ``mlflow`` console script that sits next to this interpreter."""
    exe = Path(sys.executable).parent / "mlflow"
    if not exe.is_file():
        raise ScreenshotError(f"mlflow executable not found next to the interpreter: {exe}")
    return exe


def check_chromium(path: str) -> Path:
    """Return the Chromium executable, or fail if it is missing."""
    exe = Path(path)
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        raise ScreenshotError(f"chromium not found at {exe} (apt-get install -y chromium)")
    return exe


def check_sqlite_store(uri: str) -> None:
    """Refuse a ``sqlite:///`` store whose file is missing (the server would create it)."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not Path(uri[len(prefix) :]).is_file():
        raise ScreenshotError(f"backend store not found: {uri}")


def free_port() -> int:
    """Ask the OS for a free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(args: argparse.Namespace, port: int, artifacts: Path) -> list[str]:
    """Build the ``mlflow server`` command line."""
    origin_host = f"{UI_HOSTNAME}:{port}"
    return [
        str(mlflow_executable()),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        args.backend_store_uri,
        "--registry-store-uri",
        args.registry_store_uri or args.backend_store_uri,
        "--artifacts-destination",
        str(artifacts),
        "--default-artifact-root",
        str(artifacts),
        "--allowed-hosts",
        f"127.0.0.1:{port},localhost:{port},{origin_host}",
        "--cors-allowed-origins",
        f"http://{origin_host}",
    ]


def last_line(path: Path) -> str:
    """Return the last non-empty line of a log file, for error messages."""
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no server log)"
    return lines[-1].strip() if lines else "(no server output)"


def health_ok(base_url: str) -> bool:
    """Return True if ``GET /health`` answers 200 OK."""
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=2) as resp:
            return resp.status == 200 and resp.read().strip() == b"OK"
    except (urllib.error.URLError, OSError):
        return False


def wait_for_health(
    proc: subprocess.Popen[bytes], base_url: str, timeout: float, log: Path
) -> None:
    """Poll ``/health`` until it answers, the server exits, or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ScreenshotError(
                f"mlflow server exited with code {proc.returncode}: {last_line(log)}"
            )
        if health_ok(base_url):
            return
        time.sleep(0.25)
    raise ScreenshotError(
        f"mlflow server did not answer {base_url}/health within {timeout:.0f}s: {last_line(log)}"
    )


def stop_server(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Stop the server's process group: SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)  # the server runs in its own session: pgid == pid
        try:
            proc.wait(timeout=timeout)
            break
        except subprocess.TimeoutExpired:
            continue
    # Reap any worker left in the group after the leader exited.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def running_server(args: argparse.Namespace, workdir: Path) -> Iterator[int]:
    """Start ``mlflow server`` on a free port, yield the port, always stop it afterwards."""
    port = free_port()
    artifacts = args.artifacts_destination or workdir / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    log = workdir / "server.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            server_command(args, port, artifacts),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **SERVER_ENV},
            start_new_session=True,
        )
    try:
        wait_for_health(proc, f"http://127.0.0.1:{port}", args.startup_timeout, log)
        yield port
    finally:
        stop_server(proc)


def fetch_model(tracking_uri: str, name: str) -> ModelSummary:
    """Read the registered model's versions and aliases from the running server."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        model = client.get_registered_model(name)
        quote_char = '"' if "'" in name else "'"
        versions = client.search_model_versions(f"name = {quote_char}{name}{quote_char}")
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise ScreenshotError(f"registered model not found in the store: {name}") from exc
        raise ScreenshotError(f"could not read registered model {name}: {exc.message}") from exc
    aliases = {alias: int(version) for alias, version in (model.aliases or {}).items()}
    numbers = tuple(sorted(int(v.version) for v in versions))
    return ModelSummary(name=name, versions=numbers, aliases=aliases)


def model_page_url(port: int, name: str) -> str:
    """URL of the registered-model page in the MLflow 3.x UI (hash router)."""
    return f"http://{UI_HOSTNAME}:{port}/#/models/{quote(name, safe='')}"


def run_chromium(chromium: Path, url: str, png: Path, args: argparse.Namespace) -> str:
    """Render ``url`` headless, write the screenshot to ``png`` and return the page's DOM."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [
            str(chromium),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={args.width},{args.height}",
            f"--virtual-time-budget={args.budget_ms}",
            "--dump-dom",
            f"--screenshot={png}",
            url,
        ]
        try:
            result = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=args.budget_ms / 1000 + 120,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ScreenshotError(f"chromium timed out rendering {url}") from exc
    if result.returncode != 0:
        tail = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise ScreenshotError(f"chromium failed with code {result.returncode}: {tail[0]}")
    return result.stdout.decode(errors="replace")


def check_rendered(png: Path, dom: str, summary: ModelSummary) -> None:
    """Fail unless a PNG was written and the page shows the model, its versions and aliases."""
    try:
        head = png.read_bytes()[: len(PNG_MAGIC)]
    except OSError:
        head = b""
    if head != PNG_MAGIC:
        raise ScreenshotError(f"chromium did not write a PNG to {png}")
    missing = [text for text in summary.expected_texts() if text not in dom]
    if missing:
        raise ScreenshotError(
            "model page did not render fully (missing: " + ", ".join(missing) + ");"
            " try a larger --budget-ms"
        )


def take_screenshot(args: argparse.Namespace, chromium: Path) -> ModelSummary:
    """Start the server, check the model, render its page and move the PNG into place."""
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlflow-ui-shot-") as tmp:
        workdir = Path(tmp)
        with running_server(args, workdir) as port:
            summary = fetch_model(f"http://127.0.0.1:{port}", args.model)
            fd, name = tempfile.mkstemp(prefix=f".{out.stem}-", suffix=".png", dir=out.parent)
            os.close(fd)
            tmp_png = Path(name)
            try:
                dom = run_chromium(chromium, model_page_url(port, args.model), tmp_png, args)
                check_rendered(tmp_png, dom, summary)
                tmp_png.chmod(0o644)  # mkstemp creates 0600
                os.replace(tmp_png, out)
            finally:
                tmp_png.unlink(missing_ok=True)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: returns 0 on success, 2 on a handled error."""
    args = parse_args(argv)
    os.environ.update(QUIET_ENV)
    started = time.monotonic()
    try:
        chromium = check_chromium(args.chromium)
        check_sqlite_store(args.backend_store_uri)
        summary = take_screenshot(args, chromium)
    except ScreenshotError as exc:
        print(f"mlflow_ui_screenshot: error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.monotonic() - started
    print(f"wrote {args.out} ({args.model}: {summary.describe()}) in {elapsed:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
