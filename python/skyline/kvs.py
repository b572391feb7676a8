"""KVSSkyLine: stream OpenCV frames to AWS Kinesis Video Streams.

The engine speaks PutMedia natively (no kvssink or C++ producer SDK needed);
``backend="kvssink"`` uses the kvssink GStreamer element instead. The three
credential handlers of the original say how the credentials reach the engine:

* :class:`KVSInlineCredentialsHandler`: static keys handed to the engine
  (kvssink: its access-key/secret-key properties); temporary credentials refused.
* :class:`KVSEnvironmentCredentialsHandler`: exported as ``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``); the engine, started
  afterwards, reads them with the standard AWS chain.
* :class:`KVSFileCredentialsHandler`: written to kvssink's ``credential-path``
  file, which the engine reads on every (re)connection; temporary credentials
  are rewritten 2 minutes before they expire.

Credentials: the keyword arguments, else ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, else the shared
credentials file (``~/.aws/credentials``, profile ``$AWS_PROFILE`` or
default). A ``credentials_provider`` callable returning
``(access_key, secret_key, token, expiry_datetime)`` makes them refreshable.
"""

import configparser
import datetime
import logging
import os
import tempfile
import threading
import weakref
from abc import ABC
from typing import Any, Callable, Optional

from ._engine import Engine
from .skyline import SkyLine


def _format_time(t):
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


class Credentials:
    """AWS credentials (never printed: repr masks them)."""

    def __init__(self, access_key, secret_key, token=None, expiry=None):
        self.access_key, self.secret_key, self.token, self.expiry = access_key, secret_key, token or None, expiry

    @property
    def refreshable(self):
        return self.token is not None

    def __repr__(self):
        return "<Credentials access_key=%s... temporary=%s>" % ((self.access_key or "")[:4], self.refreshable)


class KVSCredentialsHandler(ABC):
    """Abstract base of the credential handlers.

    Args:
        aws_access_key_id, aws_secret_access_key: static credentials (for tests).
        aws_session_token, expiry: temporary credentials (expiry: a datetime).
        credentials_provider: a callable returning ``(access_key, secret_key,
            token, expiry)``; called again :attr:`REFRESH_BEFORE_EXPIRATION` before expiry.
        executor: ignored (the original refreshed through it).
        parent_logger: the handler logs through a child of this logger.

    Raises:
        RuntimeError: a handler that needs credentials found none.
    """

    REFRESH_BEFORE_EXPIRATION = datetime.timedelta(seconds=2 * 60)
    """Temporary credentials are refreshed this long before they expire."""

    handler = "environment"

    def __init__(self, aws_access_key_id: Optional[str] = None, aws_secret_access_key: Optional[str] = None,
                 aws_session_token: Optional[str] = None, expiry: Optional[datetime.datetime] = None,
                 credentials_provider: Optional[Callable] = None, executor: Any = None,
                 parent_logger: Optional[logging.Logger] = None):
        self.logger = (logging.getLogger(self.__class__.__name__) if parent_logger is None
                       else parent_logger.getChild(self.__class__.__name__))
        self._provider = credentials_provider
        self._lock = threading.Lock()
        if aws_access_key_id or aws_secret_access_key:
            self.credentials = Credentials(aws_access_key_id, aws_secret_access_key, aws_session_token, expiry)
        else:
            self.credentials = self._fetch()
        self.next_update = None
        self._refresh(initial=True)

    def _fetch(self):
        if self._provider is not None:
            ak, sk, token, expiry = self._provider()
            return Credentials(ak, sk, token, expiry)
        env = os.environ
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            return Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN"))
        path = env.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.expanduser("~/.aws/credentials")
        cp = configparser.ConfigParser()
        try:
            cp.read(path)
        except configparser.Error:
            return None
        sec = env.get("AWS_PROFILE", "default")
        if cp.has_section(sec) and cp.has_option(sec, "aws_access_key_id"):
            return Credentials(cp.get(sec, "aws_access_key_id"), cp.get(sec, "aws_secret_access_key", fallback=""),
                               cp.get(sec, "aws_session_token", fallback=None))
        return None

    def _refresh(self, initial=False):
        if not initial and self._provider is not None:
            self.credentials = self._fetch()
        c = self.credentials
        if c is not None and c.refreshable and c.expiry is not None:
            self.next_update = c.expiry - self.REFRESH_BEFORE_EXPIRATION
            if self.next_update < _now():
                self.logger.warning("Next credentials update time %s is in the past (expiry %s)",
                                    _format_time(self.next_update), _format_time(c.expiry))
        else:
            self.next_update = None
        self._save_credentials(c, self.next_update)

    def check_refresh(self) -> None:
        """Refreshes temporary credentials when due. Cheap: called on every put."""
        nu = self.next_update
        if nu is None or _now() < nu or self._provider is None:
            return
        with self._lock:
            if self.next_update is nu:
                self._refresh()

    def _save_credentials(self, credentials, next_update):
        """Hands the credentials over (subclasses)."""

    def engine_fields(self) -> dict:
        """The fields of the engine's kvs request for this handler."""
        return {"handler": self.handler}


class KVSInlineCredentialsHandler(KVSCredentialsHandler):
    """Static credentials given to the engine (kvssink: as properties).

    Raises:
        RuntimeError: the credentials are temporary (they could not be
            refreshed once handed over) or missing.
    """

    handler = "inline"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.credentials is None:
            raise RuntimeError("KVSInlineCredentialsHandler: no AWS credentials found")
        if self.credentials.refreshable or self._provider is not None:
            raise RuntimeError("InlineCredentialsHandler must not be used with refreshable credentials as they "
                               "will not be refreshed once passed to the KVS producer.")

    def engine_fields(self):
        return {"handler": "inline", "access_key": self.credentials.access_key,
                "secret_key": self.credentials.secret_key}


class KVSEnvironmentCredentialsHandler(KVSCredentialsHandler):
    """Exports the credentials as AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
    (and AWS_SESSION_TOKEN) for the engine. Temporary credentials are not
    refreshed in a running engine: use it with static credentials."""

    handler = "environment"

    def _save_credentials(self, credentials, next_update):
        if credentials is None:
            return
        os.environ["AWS_ACCESS_KEY_ID"] = credentials.access_key
        os.environ["AWS_SECRET_ACCESS_KEY"] = credentials.secret_key
        if credentials.token:
            os.environ["AWS_SESSION_TOKEN"] = credentials.token
        else:
            os.environ.pop("AWS_SESSION_TOKEN", None)


class KVSFileCredentialsHandler(KVSCredentialsHandler):
    """Writes the credentials into kvssink's ``credential-path`` file, tab
    separated: ``CREDENTIALS akid expiry secret token`` (temporary; expiry
    ``YYYY-MM-DDTHH:MM:SSZ``, :attr:`FILE_REFRESH_GRACE_PERIOD` after the
    planned refresh) or ``CREDENTIALS akid secret`` (static). The engine reads
    it at every connection.

    Args:
        credentials_path: the file (default ``<tmp>/credentials.txt``), written mode 0600.
    """

    handler = "file"
    FILE_REFRESH_GRACE_PERIOD = datetime.timedelta(seconds=60)
    """The file's declared expiry is the planned refresh plus this."""

    def __init__(self, credentials_path: str = os.path.join(tempfile.gettempdir(), "credentials.txt"),
                 *args: Any, **kwargs: Any):
        self.credentials_path = credentials_path
        super().__init__(*args, **kwargs)
        if self.credentials is None:
            raise RuntimeError("KVSFileCredentialsHandler: no AWS credentials found")

    def _save_credentials(self, credentials, next_update):
        if credentials is None:
            return
        if next_update is not None:
            fields = ["CREDENTIALS", credentials.access_key, _format_time(next_update + self.FILE_REFRESH_GRACE_PERIOD),
                      credentials.secret_key, credentials.token]
        else:
            fields = ["CREDENTIALS", credentials.access_key, credentials.secret_key]
        tmp = self.credentials_path + ".tmp"
        try:
            os.unlink(tmp)  # a file left there (or planted: the default is in /tmp) keeps its owner and mode
        except FileNotFoundError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\t".join(fields) + "\n")
        os.replace(tmp, self.credentials_path)
        self.logger.info("Updated %s (access key %s..., expiry %s)", self.credentials_path,
                         credentials.access_key[:4], _format_time(next_update) if next_update else "none")

    def engine_fields(self):
        return {"handler": "file", "credential_path": os.path.abspath(self.credentials_path)}


class KVSSkyLine(SkyLine):
    """Sends frames to a Kinesis video stream. One engine per KVSSkyLine.

    Args:
        stream_region: AWS region, e.g. ``"us-east-1"``.
        stream_name: the Kinesis video stream name.
        credentials_handler: a :class:`KVSCredentialsHandler` subclass instance.
        args, kwargs: passed to :class:`~skyline.SkyLine`.

    Keyword-only:
        endpoint: KVS endpoint URL (e.g. ``skyline kvs-local``'s
            ``http://127.0.0.1:4566``). Default: ``$AWS_ENDPOINT_URL_KINESIS_VIDEO``, else AWS.
        backend: ``"native"`` (default) or ``"kvssink"``.
        create_stream: create the stream when it does not exist (default False).

    Raises:
        RuntimeError: the engine refused the destination (bad name, kvssink
            missing: the message says how to install it).
    """

    def __init__(self, stream_region: str, stream_name: str, credentials_handler: KVSCredentialsHandler,
                 *args: Any, endpoint: Optional[str] = None, backend: str = "native", create_stream: bool = False,
                 **kwargs: Any):
        if not isinstance(credentials_handler, KVSCredentialsHandler):
            raise TypeError("credentials_handler: want a KVSCredentialsHandler, got %s"
                            % type(credentials_handler).__name__)
        self.stream_region = stream_region
        self.stream_name = stream_name
        self.credentials_handler = credentials_handler
        self._kvs = {"region": stream_region, "stream": stream_name, "endpoint": endpoint or "",
                     "backend": backend, "create": bool(create_stream)}
        self._kvs.update(credentials_handler.engine_fields())
        self._needs_plugin_path = backend == "kvssink"  # kvssink comes from GST_PLUGIN_PATH
        super().__init__(*args, **kwargs)
        # dropped without close(): the engine ends the stream cleanly and exits
        self._finalizer = weakref.finalize(self, self._engine.close, False)

    def _add_request(self):
        return {"kind": "kvs", "kvs": self._kvs}

    def put(self, frame, capture_time=None) -> bool:
        result = super().put(frame, capture_time)
        self.credentials_handler.check_refresh()
        return result

    def close(self) -> None:
        super().close()
        self._finalizer.detach()
        self._engine.close()
